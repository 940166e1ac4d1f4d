"""Who sees which jobs: their owner, and staff. Everyone else gets 404, not 403, and no GPU row gives their ids."""

from dataclasses import replace

from django.db.models import QuerySet

from scheduler.jobs import position
from scheduler.jobs.models import FINAL, Job, JobArray


def visible_jobs(user) -> QuerySet[Job]:
    return Job.objects.all() if user.is_staff else Job.objects.filter(owner=user)


def visible_arrays(user) -> QuerySet[JobArray]:
    return JobArray.objects.all() if user.is_staff else JobArray.objects.filter(owner=user)


def ahead_of(job: Job) -> dict[str, int] | None:
    """How many waiting jobs the release order (priority, fair share, age) puts before a waiting
    one, and how many of those are of higher priority; None when it cannot be released yet (it waits
    for other jobs or for its owner's GPU quota: its wait reason says which)."""
    if job.status != "waiting":
        return None
    return position.ahead_of(job)


def fleet_seen_by(user, rows: list[dict]) -> list[dict]:
    """The fleet view as `user` may see it: another user's job on a GPU (running, holding it for a
    multi-GPU job, or reserved) is not named, and the GPU's process ids are for staff only."""
    if user.is_staff:
        return rows
    own = set(Job.objects.filter(owner=user).exclude(status__in=FINAL).values_list("id", flat=True))
    return [_redacted(row, own) for row in rows]


def _redacted(row: dict, own: set[int]) -> dict:
    snap = row["snapshot"]
    if snap is not None:
        snap = replace(snap, processes=(), running_job=snap.running_job if snap.running_job in own else None)
    named = {k: row[k] if row.get(k) in own else None for k in ("running_job", "held_by", "reserved_for") if k in row}
    return {**row, **named, "snapshot": snap}
