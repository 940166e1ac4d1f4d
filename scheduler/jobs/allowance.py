"""What one user may ask for, read in one statement per submission: their quota and the longest time
limit their groups allow (one query per job of a batch was 63% of a 400-job batch POST, BENCHMARKS.md).

On PostgreSQL that statement is written once and prepared: built and compiled by the ORM on every
submission it was 19% of a lone job's POST in-process (cProfile); SQLite keeps the ORM's query."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import DEFAULT_DB_ALIAS, connection
from django.db.models import OuterRef, Subquery

from scheduler.jobs import prepared
from scheduler.jobs.models import GroupLimits, Quota


@dataclass(frozen=True)
class Allowance:
    quota: Quota | None
    longest_time_limit: int  # seconds: the most generous of the user's groups, else JOB_TIME_LIMIT_MAX


def read(user, lock: bool = False) -> Allowance:
    """The user's allowance. With `lock` (inside a transaction) the user's row stays locked until it ends:
    that serialises the user's submissions, so the waiting-jobs quota holds under races."""
    if connection.vendor == "postgresql":
        return _read_prepared(user.pk, lock)
    users = get_user_model().objects.select_related("quota").annotate(longest=_longest_of_groups())
    if lock:
        users = users.select_for_update(of=("self",))
    row = users.get(pk=user.pk)
    return Allowance(getattr(row, "quota", None), row.longest or settings.JOB_TIME_LIMIT_MAX)


def _longest_of_groups() -> Subquery:
    limits = GroupLimits.objects.filter(group__user=OuterRef("pk")).order_by("-max_time_limit")
    return Subquery(limits.values("max_time_limit")[:1])


def _read_prepared(user_id: int, lock: bool) -> Allowance:
    with prepared.cursor() as cur:
        cur.execute(_statement(lock), [user_id])
        row = cur.fetchone()
    if row is None:
        raise get_user_model().DoesNotExist(f"no user {user_id}")
    *quota, longest = row
    names = [f.attname for f in Quota._meta.concrete_fields]
    found = Quota.from_db(DEFAULT_DB_ALIAS, names, quota) if quota[0] is not None else None
    return Allowance(found, longest or settings.JOB_TIME_LIMIT_MAX)


@cache
def _statement(lock: bool) -> str:
    """`read`'s query in SQL: the user's row (locked with `lock`), their quota row or NULLs, the largest
    time limit of their groups."""
    users = get_user_model()._meta
    member = users.get_field("groups").remote_field.through._meta
    quota = ", ".join(f'q."{f.column}"' for f in Quota._meta.concrete_fields)
    return (
        f'SELECT {quota}, (SELECT max(g."max_time_limit") FROM "{GroupLimits._meta.db_table}" g '
        f'JOIN "{member.db_table}" m ON m."group_id" = g."group_id" WHERE m."user_id" = u."id") '
        f'FROM "{users.db_table}" u LEFT JOIN "{Quota._meta.db_table}" q ON q."user_id" = u."id" '
        f'WHERE u."id" = %s' + (" FOR UPDATE OF u" if lock else "")
    )
