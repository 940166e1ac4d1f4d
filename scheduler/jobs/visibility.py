"""Who sees which jobs: their owner, and staff. Everyone else gets 404, not 403."""

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
