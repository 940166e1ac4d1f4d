"""Who sees which jobs: their owner, and staff. Everyone else gets 404, not 403, and no GPU row names them."""

from dataclasses import replace

from django.db.models import QuerySet

from scheduler.jobs.models import Job, JobArray


def visible_jobs(user) -> QuerySet[Job]:
    return Job.objects.all() if user.is_staff else Job.objects.filter(owner=user)


def visible_arrays(user) -> QuerySet[JobArray]:
    return JobArray.objects.all() if user.is_staff else JobArray.objects.filter(owner=user)


def ahead_of(job: Job) -> dict[str, int] | None:
    """How many waiting jobs go before a waiting one: all of them, and those of higher priority."""
    if job.status != "waiting":
        return None
    waiting = Job.objects.filter(status="waiting")
    higher = waiting.filter(priority__gt=job.priority).count()
    same = waiting.filter(priority=job.priority, created_at__lt=job.created_at).count()
    return {"jobs": higher + same, "higher_priority": higher}


def fleet_seen_by(user, rows: list[dict]) -> list[dict]:
    """The fleet view as `user` may see it: another user's running job is not named, and the GPU's
    process ids (which tell whose jobs run where) are for staff only."""
    if user.is_staff:
        return rows
    own = set(Job.objects.filter(owner=user, status="running").values_list("id", flat=True))
    return [_redacted(row, own) for row in rows]


def _redacted(row: dict, own: set[int]) -> dict:
    snap = row["snapshot"]
    if snap is not None:
        snap = replace(snap, processes=(), running_job=snap.running_job if snap.running_job in own else None)
    return {**row, "running_job": row["running_job"] if row["running_job"] in own else None, "snapshot": snap}
