"""One GPU over a time range, as its chart draws it: telemetry points and the jobs that ran there.

The points come from the fleet store (one a second for the last minutes, one a minute for the hours
before: scheduler/fleet/rollup.py); the jobs from the database. A job is shown to every reader as the
lab queue shows it (kind, owner, state, times: scheduler/jobs/labqueue.py); its id only to its owner
and staff.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from django.db.models import Q

from scheduler.dispatch.connections import redis_client
from scheduler.fleet import rollup
from scheduler.fleet import store as fleet
from scheduler.jobs import control, labqueue
from scheduler.jobs.models import Job

RANGES = {15: "15 min", 180: "3 h", 1440: "24 h"}  # minutes -> what the GPU page's range choice says
FINE_UP_TO = 30  # minutes: a range this short shows the one-second points, a longer one minute points
MARKERS = 200  # jobs on one chart at most, the latest


def chart(uuid: str, reader, minutes: int, now: float | None = None) -> dict:
    """The GPU's facts, its points over the last `minutes` and the jobs that ran on it meanwhile."""
    gpu = control.known(uuid)
    end = time.time() if now is None else now
    start = end - 60 * minutes
    r = redis_client()
    fine = minutes <= FINE_UP_TO
    # A minute more than the range: the last minute point may lie a minute behind the newest reading.
    kept = fleet.minutes(r, uuid, last=minutes + 1)
    points = rollup.window(fleet.history(r, uuid), kept, start, fine=fine)
    return {
        **gpu,
        "start": start,
        "end": end,
        "step": 1 if fine else rollup.STEP,
        "points": points,
        "jobs": jobs_on(gpu.get("queue", ""), start, end, reader),
    }


def jobs_on(queue: str, start: float, end: float, reader) -> list[dict]:
    """The jobs that ran on the GPU of `queue` at some time between `start` and `end` (epoch
    seconds), latest start first, as `reader` may see them."""
    since, until = (datetime.fromtimestamp(t, UTC) for t in (start, end))
    overlapping = Job.objects.filter(started_at__lt=until).filter(
        Q(finished_at__isnull=True) | Q(finished_at__gte=since)
    )
    # A multi-GPU job names its other GPUs in `gang` only; SQLite cannot look into JSON, so they are
    # picked out here (they are few).
    candidates = overlapping.filter(Q(queue=queue) | Q(gpus__gt=1)).select_related("owner").order_by("-started_at")
    ran = (job for job in candidates.iterator() if job.queue == queue or _in_gang(job, queue))
    return [_marker(job, reader) for job, _ in zip(ran, range(MARKERS), strict=False)]


def _in_gang(job: Job, queue: str) -> bool:
    return any(member.get("queue") == queue for member in job.gang)


def _marker(job: Job, reader) -> dict:
    return {
        **labqueue.seen(job, reader),
        "started_at": job.started_at,
        "finished_at": job.finished_at,
    }
