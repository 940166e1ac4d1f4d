"""A waiting job's place in the release order, counted the way release rounds take jobs."""

from __future__ import annotations

from scheduler.dispatch.connections import redis_client
from scheduler.jobs.models import Job
from scheduler.jobs.release import release_order


def ahead_of(job: Job) -> dict[str, int] | None:
    order = release_order(redis_client(), None)
    index = next((i for i, other in enumerate(order) if other.id == job.id), None)
    if index is None:
        return None
    ahead = order[:index]
    return {"jobs": index, "higher_priority": sum(1 for other in ahead if other.priority > job.priority)}
