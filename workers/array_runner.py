"""The arrays runner: a kind's `run(xp, **params)` on this pool process's array module (CuPy or NumPy)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import ModuleType

from celery.exceptions import SoftTimeLimitExceeded

from gpu_tasks import runtime
from scheduler.jobs.models import Job, Status
from workers import gang, pool, results
from workers.outcome import Outcome

log = logging.getLogger(__name__)
GiB = 1024**3


def run(job: Job, still_ours: Callable[[], bool]) -> Outcome:
    """Run the job's kind and describe what happened. A cancelled attempt is SIGKILLed (Stop.KILL), so
    `still_ours` is not polled: no Python runs while a CUDA call does."""
    if job.gpus > 1:
        return gang.run_attempt(job)
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


def _failure(job: Job, xp: ModuleType, exc: Exception) -> Outcome:
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
