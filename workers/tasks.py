"""The one Celery task: run a job by id. Thin: claim the row, run the kind, record the outcome."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from celery.exceptions import SoftTimeLimitExceeded

from gpu_tasks import runtime
from gpu_tasks.registry import get_kind
from scheduler.dispatch import lease
from scheduler.dispatch.celery_app import RUN_JOB, app
from scheduler.dispatch.connections import redis_client
from scheduler.jobs import lifecycle
from scheduler.jobs.models import Job, Status
from scheduler.jobs.release import nudge
from workers import command_runner, containers, heartbeat, identity, pool, results
from workers.persist import persist

log = logging.getLogger(__name__)
GiB = 1024**3
RUNNERS = {"container": containers.run, "command": command_runner.run}  # by JobKind.runs_in


@dataclass
class Outcome:
    status: str
    result: dict | None = None
    error: str = ""
    error_kind: str = ""


@app.task(name=RUN_JOB)
def run_job(job_id: int) -> None:
    r = redis_client()
    claimed = persist(lifecycle.claim, job_id, identity.current().host, identity.current().queue, pool.describe())
    if claimed is None:
        persist(_recover_redelivery, job_id)
        return
    job, token = claimed
    with heartbeat.Heartbeat(r, job_id, token, identity.current().host):
        runs_in = get_kind(job.kind).runs_in
        outcome = execute(job) if runs_in == "array" else in_container(job, token, RUNNERS[runs_in])
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
        nudge()
    if outcome.error_kind == "sticky":
        # A sticky CUDA error poisons this process's context: exit so a clean process replaces it.
        os._exit(70)


def execute(job: Job) -> Outcome:
    """Run the job's kind on this worker's array module and describe what happened."""
    xp = pool.array_module()
    try:
        output = runtime.produce(job.kind, job.params, xp)
        saved = results.save(job.id, output.array, xp)
        return Outcome(Status.SUCCEEDED, result={**output.summary, "pci_bus_id": pool.seen_bus_id(), **saved})
    except SoftTimeLimitExceeded:
        runtime.free_memory_pool(xp)
        return Outcome(
            Status.FAILED, error=f"timed out: over its time limit of {job.time_limit} s", error_kind="timeout"
        )
    except Exception as exc:  # a job's failure is data for its owner, not a worker crash
        return _failure(job, xp, exc)


def in_container(job: Job, token: str, run=containers.run) -> Outcome:
    """Run a container or command job; it stops when the job is cancelled or given to another attempt."""
    try:
        result = run(job, lambda: lifecycle.holds(job.id, token))
        return Outcome(Status.SUCCEEDED, result=result)
    except SoftTimeLimitExceeded:  # the container was killed and removed on the way out
        return Outcome(Status.FAILED, error=str(containers.ContainerTimedOut(job.time_limit)), error_kind="timeout")
    except containers.ContainerFailed as exc:
        return Outcome(Status.FAILED, result=exc.result, error=str(exc), error_kind=exc.kind)
    except Exception as exc:  # the engine's own failures are the job's, not the worker's
        log.exception("%s job %s failed", job.kind, job.id)
        return Outcome(Status.FAILED, error=f"{type(exc).__name__}: {exc}", error_kind="container")


def _failure(job: Job, xp, exc: Exception) -> Outcome:
    kind = runtime.classify_error(exc)
    if kind == "oom":
        runtime.free_memory_pool(xp)
        return Outcome(
            Status.FAILED,
            error_kind="oom",
            error=(
                f"out of GPU memory: the job declared {job.memory_estimate / GiB:.2f} GiB and asked for more than "
                f"{pool.describe()} had free ({exc}). Use a smaller size, or a GPU with more memory."
            ),
        )
    if kind == "sticky":
        return Outcome(
            Status.FAILED,
            error_kind="sticky",
            error=(f"CUDA error that poisons the GPU context: {exc}. The worker restarts with a clean context."),
        )
    log.info("job %s failed: %r", job.id, exc)
    return Outcome(Status.FAILED, error=f"{type(exc).__name__}: {exc}", error_kind="error")


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
