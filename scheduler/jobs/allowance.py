"""What one user may ask for, read in one statement per submission: their quota and the longest time
limit their groups allow (one query per job of a batch was 63% of a 400-job batch POST, BENCHMARKS.md)."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import OuterRef, Subquery

from scheduler.jobs.models import GroupLimits, Quota


@dataclass(frozen=True)
class Allowance:
    quota: Quota | None
    longest_time_limit: int  # seconds: the most generous of the user's groups, else JOB_TIME_LIMIT_MAX


def read(user, lock: bool = False) -> Allowance:
    """The user's allowance. With `lock` (inside a transaction) the user's row stays locked until it ends:
    that serialises the user's submissions, so the waiting-jobs quota holds under races."""
    users = get_user_model().objects.select_related("quota").annotate(longest=_longest_of_groups())
    if lock:
        users = users.select_for_update(of=("self",))
    row = users.get(pk=user.pk)
    return Allowance(getattr(row, "quota", None), row.longest or settings.JOB_TIME_LIMIT_MAX)


def _longest_of_groups() -> Subquery:
    limits = GroupLimits.objects.filter(group__user=OuterRef("pk")).order_by("-max_time_limit")
    return Subquery(limits.values("max_time_limit")[:1])
