"""The one Celery task: run a job by id. Thin: claim the row, run it with its kind's runner, record the outcome."""

from __future__ import annotations

import logging
import os

from django.utils import timezone

from scheduler.dispatch import lease
from scheduler.dispatch.celery_app import RUN_JOB, app
from scheduler.dispatch.connections import redis_client
from scheduler.fleet import health
from scheduler.jobs import lifecycle
from scheduler.jobs.models import Job, Status
from scheduler.jobs.release import nudge
from workers import finishing, heartbeat, identity, pool, runners
from workers.outcome import Outcome
from workers.persist import persist

log = logging.getLogger(__name__)


class JobFailed(Exception):
    """Raised after a failed job is recorded, so that Celery (and Flower) count the task as failed too;
    declared in `throws`, so the worker logs it in one line, without a traceback."""


@app.task(name=RUN_JOB, throws=(JobFailed,))
def run_job(job_id: int) -> None:
    r = redis_client()
    claimed, more = finishing.claim(job_id, identity.current().host, identity.current().queue, pool.describe())
    if claimed is None:
        persist(_recover_redelivery, job_id)
        return
    job, token = claimed
    beat = heartbeat.Heartbeat(r, job_id, token, identity.current().host).__enter__()
    try:
        # Retried like claim and finish: a database blip must not stop an attempt that runs on.
        outcome = runners.run(job, lambda: persist(lifecycle.holds, job.id, token))
    except BaseException:
        beat.__exit__(None, None, None)
        raise
    if more and outcome.status == Status.SUCCEEDED:
        # More jobs wait for this worker: the next claim records this success in its own commit.
        _count_for_health(r, outcome)
        finishing.hold(lifecycle.Done(job, token, outcome.result, _note(outcome), timezone.now()), beat)
        return
    beat.__exit__(None, None, None)
    recorded = persist(
        lifecycle.finish,
        job,
        token,
        outcome.status,
        result=outcome.result,
        error=outcome.error,
        error_kind=outcome.error_kind,
        note=_note(outcome),
    )
    if recorded:
        _count_for_health(r, outcome)
        nudge()
    if outcome.error_kind == "sticky":
        # A sticky CUDA error poisons this process's context: exit so a clean process replaces it.
        os._exit(70)
    if recorded and outcome.status == Status.FAILED:
        raise JobFailed(f"job {job_id} failed: {(outcome.error or '')[:500]}")


def _count_for_health(r, outcome: Outcome) -> None:
    """Jobs failing here in a row with context-poisoning CUDA errors take the GPU out of routing."""
    try:
        if health.job_ended(r, identity.current().uuid, outcome.error_kind == "sticky", outcome.error):
            log.error("GPU %s marked unhealthy: jobs keep failing there with CUDA errors", identity.current().uuid)
    except Exception:  # Redis away: health counting must not fail the recorded job
        log.exception("could not count job %s for the GPU's health", outcome)


def _note(outcome: Outcome) -> str:
    if outcome.result and "gpu_time_s" in outcome.result:
        return f"finished: {outcome.result['gpu_time_s']:.4f} s of GPU time"
    return ""


def _recover_redelivery(job_id: int) -> None:
    """A delivery that could not claim its job: a duplicate, or a redelivery after this worker's
    pool process died mid-job; in the second case the job goes back to waiting at once."""
    job = Job.objects.filter(id=job_id, status=Status.RUNNING, queue=identity.current().queue).first()
    if job is None:
        return
    entry = lease.holder(redis_client(), job_id)
    if entry is None or not heartbeat.alive_on_this_host(entry, identity.current().host):
        lifecycle.requeue(job_id, "its worker process died during the attempt")
        nudge()
