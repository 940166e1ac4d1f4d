"""When a GPU is taken out of routing for its health, and how staff bring it back.

Two things mark a GPU unhealthy (`store.mark_unhealthy`, a Redis hash): NVML reporting a fault
(`workers.gpu_health`: Xid, uncorrectable ECC, retired pages or row remaps pending) and jobs failing
there with CUDA errors that poison the context, several in a row. The mark holds until staff resume
the GPU; resuming acknowledges the reason it had, so a fault NVML keeps reporting (a volatile ECC
count stays until the driver reloads) does not mark it again, while a new one does.
"""

from __future__ import annotations

from django.conf import settings

from scheduler.dispatch import keys
from scheduler.dispatch.connections import as_text
from scheduler.fleet import store
from scheduler.fleet.store import Redis


def settle(r: Redis, uuid: str, nvml_reason: str) -> str:
    """The worker's verdict for its snapshot: mark the GPU for a new NVML fault; the mark's reason
    ("" when healthy) is what the snapshot then says."""
    if not nvml_reason:
        r.hdel(keys.HEALTH_ACKNOWLEDGED, uuid)  # healthy again: the next fault is a new one
    elif as_text(r.hget(keys.HEALTH_ACKNOWLEDGED, uuid) or "") != nvml_reason:
        r.hsetnx(keys.UNHEALTHY, uuid, nvml_reason)
    return as_text(r.hget(keys.UNHEALTHY, uuid) or "")


def job_ended(r: Redis, uuid: str, poisoned: bool, error: str = "") -> bool:
    """Count CUDA errors that poisoned the context on this GPU, in a row; at GPU_CUDA_FAILURES_UNHEALTHY
    the GPU is marked. A job that ends otherwise resets the count. True when this marked it."""
    key = keys.cuda_failures(uuid)
    if not poisoned:
        succeeded_on(r, uuid)
        return False
    failures = r.incr(key)
    if failures < settings.GPU_CUDA_FAILURES_UNHEALTHY:
        return False
    reason = f"{failures} jobs in a row failed with CUDA errors here (last: {error[:200]})"
    return bool(r.hsetnx(keys.UNHEALTHY, uuid, reason))


def succeeded_on(pipe, uuid: str) -> None:
    """`job_ended` for a job that did not poison the context, queued on the caller's pipeline."""
    pipe.delete(keys.cuda_failures(uuid))


def clear(r: Redis, uuid: str) -> None:
    """Staff bring the GPU back: its mark goes, its reason is acknowledged, its CUDA count restarts."""
    reason = store.unhealthy(r).get(uuid)
    if reason:
        r.hset(keys.HEALTH_ACKNOWLEDGED, uuid, reason)
    store.clear_unhealthy(r, uuid)
    r.delete(keys.cuda_failures(uuid))
