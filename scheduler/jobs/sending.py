"""How released jobs become Celery messages: short jobs released to one GPU in one round share one.

The worker claims a bundle's jobs in one statement and runs them back to back (workers/tasks.py), so a
no-op job costs a share of one message and one commit instead of its own. Only jobs whose expected work
is under JOB_BUNDLE_SECONDS (a bundle's total too), on one GPU, never tried before (a job whose attempt
was lost runs alone, so a job that kills its worker cannot use up its neighbours' attempts) and of
kinds that a cancel stops by killing the process (Stop.KILL) are bundled; the rest go one a message.
The worker keeps each job's own time limits (workers/job_limit.py).
"""

from __future__ import annotations

from functools import cache

from django.conf import settings

from gpu_tasks.base import Stop
from gpu_tasks.registry import KINDS, get_kind
from scheduler.dispatch import celery_app
from scheduler.jobs.models import Job


def send_all(released: list[tuple[str, int]], by_id: dict[int, Job]) -> None:
    """Send the jobs released to each queue, in the order given, bundling short ones."""
    for queue, bundle in bundles(released, by_id, settings.JOB_BUNDLE_SECONDS, settings.JOB_BUNDLE_MAX):
        celery_app.send_job(bundle, queue, by_id[bundle[0]].kind)


def bundles(
    released: list[tuple[str, int]], by_id: dict[int, Job], seconds: float, most: int
) -> list[tuple[str, list[int]]]:
    """(queue, job ids) for each message: consecutive short jobs to one queue share one, up to
    `seconds` of expected work and `most` jobs; each queue keeps the order its jobs were released in."""
    out: list[tuple[str, list[int]]] = []
    open_bundle: dict[str, tuple[list[int], float]] = {}  # per queue: the bundle still taking jobs
    for queue, job_id in released:
        job = by_id[job_id]
        ids, work = open_bundle.pop(queue, ([], 0.0))
        if ids and bundleable(job, seconds) and work + job.work_estimate <= seconds and len(ids) < most:
            ids.append(job_id)
            open_bundle[queue] = ids, work + job.work_estimate
            continue
        if bundleable(job, seconds):
            ids = [job_id]
            out.append((queue, ids))
            open_bundle[queue] = ids, job.work_estimate
        else:
            out.append((queue, [job_id]))
    return out


@cache
def killable_kinds() -> list[str]:
    """The kinds a cancel stops by killing the process: the only ones a bundle carries."""
    return sorted(kind.name for kind in KINDS.values() if kind.runner.stop is Stop.KILL)


def bundleable(job: Job, seconds: float) -> bool:
    return (
        seconds > 0
        and job.gpus == 1
        and job.attempts == 0
        and job.work_estimate <= seconds
        and get_kind(job.kind).runner.stop is Stop.KILL
    )
