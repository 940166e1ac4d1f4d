"""The next job claimed while the one before it runs, so that the GPU waits for no database between them.

Between two jobs sent alone, the worker's one statement recording a success and claiming the next job
(workers/finishing.chain) was most of the GPU's idle gap: 3.5 ms of 3.7 on the H200 (docs/BENCHMARKS.md).
Now, JOB_EARLY_CLAIM_SECONDS before a job's expected end (its kind's work estimate), the pool process's
background thread claims the head of its queue (lifecycle.claim_early: running, its attempt counted,
under an early lease, no event yet) and sets its lease in Redis. When the job ends, the next one starts
after one Redis command (`begin`); the statement recording the success and the next job's start (its
true time and its event: lifecycle.begin_early) follows on the background thread while it runs. A job
that ends before its claim is due calls the claim off and claims at its end as before; one whose
claim is under way waits for it.

A cancel and the start race only in Redis, on the job's early key: whichever sets it first wins. The
worker sets `begun` before it starts the job; a cancel, after committing, sets `cancelled` and stops
the process only where the job had begun (scheduler/jobs/control.py): the process runs the job before
it otherwise. A job whose predecessor failed goes back to the head of its queue (`give_back`); one
whose process died is requeued by the reaper once its lease lapses, as any attempt.

Only where the pool has one process: with several, an early claim would hold back a job that an idle
process of the same GPU could start now. Late binding stays: only a job already released to this GPU
is claimed, one, at most this early.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass

import redis
from django.conf import settings
from django.db import connection

from scheduler.dispatch import keys, lease
from scheduler.dispatch.connections import redis_client
from scheduler.jobs import lifecycle
from scheduler.jobs.models import Job
from workers import background, heartbeat, identity
from workers.persist import persist

log = logging.getLogger(__name__)

enabled = False  # set where the worker's pool has one process (workers/service.py); forked with the pool


@dataclass
class Early:
    """The job claimed early, the lease its attempt holds, the heartbeat keeping that lease."""

    job: Job
    lease: str
    beat: heartbeat.Heartbeat


class _Slot:
    def __init__(self, due: float, task: str) -> None:
        self.due, self.task = due, task
        self.off = threading.Event()
        self.claiming = False
        self.claimed: Future[Early | None] | None = None


_lock = threading.Lock()
_slot: _Slot | None = None


def schedule(jobs: list[Job], task: str) -> None:
    """Before running `jobs`: where they are one job on one GPU expected to run longer than
    JOB_EARLY_CLAIM_SECONDS, claim the next job that long before its expected end (Celery `task` runs
    them; the lease names it). Shorter jobs go in bundles, or alone where nothing follows them."""
    global _slot
    if not _applies(jobs):
        return
    slot = _Slot(time.monotonic() + jobs[0].work_estimate - settings.JOB_EARLY_CLAIM_SECONDS, task)
    slot.claimed = background.submit(_claim_when_due, slot)
    with _lock:
        _slot = slot


def take() -> Early | None:
    """When the job ends: the job claimed early, waiting for a claim under way; a claim not yet due is
    called off (None)."""
    global _slot
    with _lock:
        slot, _slot = _slot, None
        if slot is None:
            return None
        if not slot.claiming:
            slot.off.set()
            return None
    try:
        return slot.claimed.result() if slot.claimed else None
    except Exception:  # the database or Redis away past their patience: the job claims at its end instead
        log.exception("could not claim the next job early")
        return None


def begin(early: Early) -> bool:
    """Whether the job claimed early may start now: not where a cancel came first. Where it may, a
    cancel from now on finds it begun and stops the process."""
    try:
        return lease.mark_early(redis_client(), early.job.id, lease.BEGUN) != lease.CANCELLED
    except redis.RedisError as exc:  # a cancel cannot be told apart: the record's statement decides
        log.warning("could not mark job %s begun: %s", early.job.id, exc)
        return True


def give_back() -> None:
    """The job before it failed, or the process is about to exit: the job claimed early, if any, goes
    back to the head of its queue, where its message claims it as usual."""
    early = take()
    if early is None:
        return
    try:
        persist(lifecycle.unclaim_early, early.job.id, early.lease)
    finally:
        early.beat.__exit__(None, None, None)
        forget(early)


def forget(early: Early, pipe=None) -> None:
    """Delete the job's early key (on `pipe`, where given): begun and recorded, or given back."""
    try:
        (pipe or redis_client()).delete(keys.early(early.job.id))
    except redis.RedisError:
        pass  # it expires by itself, and names a job no longer claimed early


def _applies(jobs: list[Job]) -> bool:
    return (
        enabled
        and settings.JOB_EARLY_CLAIM_SECONDS > 0
        and connection.vendor == "postgresql"
        and len(jobs) == 1
        and jobs[0].gpus == 1
        and jobs[0].work_estimate > settings.JOB_EARLY_CLAIM_SECONDS
    )


def _claim_when_due(slot: _Slot) -> Early | None:
    if slot.off.wait(max(0.0, slot.due - time.monotonic())):
        return None
    with _lock:
        if slot.off.is_set():
            return None
        slot.claiming = True
    me = identity.current()
    claimed = persist(lifecycle.claim_early, me.host, me.queue)
    if claimed is None:
        return None
    job, token = claimed
    r = redis_client()
    with r.pipeline(transaction=False) as pipe:
        pipe.set(keys.early(job.id), lease.CLAIMED, ex=lease.EARLY_TTL_S, nx=True)  # a cancel's mark stays
        beat = heartbeat.Heartbeat(r, [job.id], token, me.host, slot.task).start_now(pipe)
    return Early(job, token, beat)
