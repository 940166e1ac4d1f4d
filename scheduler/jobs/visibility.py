"""Who sees which jobs: their owner, and staff. Everyone else gets 404, not 403."""

from django.db.models import QuerySet

from scheduler.jobs import position
from scheduler.jobs.models import Job, JobArray


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
