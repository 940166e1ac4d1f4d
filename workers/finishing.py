"""Recording what a worker's jobs did and claiming what comes next, in one statement and one commit.

A job's success is recorded by the statement that claims this worker's next job (the head of its
queue, or the run of short jobs there that one message would carry: lifecycle.claim_next), so the GPU
waits for one commit between jobs, not for a message as well; a commit costs more than a no-op job
(~4.6 ms of fsync on the CPU machine, BENCHMARKS.md). What follows the commit in Redis goes in one
pipeline, sent while the next job runs. The attempt's leases stay alive in Redis until its successes
are recorded; a process that dies meanwhile loses only those outcomes: the jobs are still `running` in
the database, their leases expire, and the reaper gives them to a new attempt (at-least-once, never
twice at the same time).
"""

from __future__ import annotations

import logging
from concurrent.futures import Future
from dataclasses import dataclass

import redis
from celery.signals import worker_process_shutdown
from django.utils import timezone

from scheduler import stages
from scheduler.dispatch.connections import redis_client
from scheduler.fleet import health
from scheduler.jobs import lifecycle
from scheduler.jobs.models import Job
from scheduler.jobs.release import nudge_on
from workers import background, early_claim, heartbeat, identity
from workers.early_claim import Early
from workers.persist import persist

log = logging.getLogger(__name__)


@dataclass
class Held:
    """Successes to record, the heartbeat keeping their leases until then."""

    done: list[lifecycle.Done]
    beat: heartbeat.Heartbeat
    gpu_healthy: bool = True


Claimed = tuple[list[Job], str, heartbeat.Heartbeat | None]


def claim(job_ids: list[int], where: str, task: str) -> Claimed:
    """Claim the jobs `job_ids`: (the jobs claimed, their attempt's lease, the heartbeat that keeps their
    leases, naming the Celery `task` that runs them)."""
    return _record(None, job_ids, where, task)


def chain(done: list[lifecycle.Done], beat: heartbeat.Heartbeat, where: str, task: str) -> Claimed:
    """Record successes and claim the head of this worker's queue in one statement: a job its worker
    may run without its message, or the short jobs one message would carry (lifecycle.claim_next); as
    `claim` answers. A bundle's successes are recorded on the background thread instead, beside the
    claim: recording 64 and claiming 64 in one statement was 8-16 ms of GPU idle here, the claim alone half."""
    if len(done) > 1:
        settle()
        background.submit(_record_quietly, Held(done, beat))
        return _record(None, None, where, task)
    return _record(Held(done, beat), None, where, task)


def record(done: list[lifecycle.Done], beat: heartbeat.Heartbeat, gpu_healthy: bool = True) -> None:
    """Record successes now, in one statement (`gpu_healthy` False: they do not reset the GPU's count of
    CUDA errors in a row, which a failure after them has added to)."""
    _record(Held(done, beat, gpu_healthy), [], "", "")


def begin(done: list[lifecycle.Done], beat: heartbeat.Heartbeat, early: Early, where: str, task: str) -> Claimed:
    """Start the job claimed early (workers/early_claim.py) at once, its lease already set: the successes
    and its start are recorded in one statement on the background thread while it runs. Where a cancel
    came first, claim the head of the queue instead, as `chain` does."""
    global _begun
    settle()
    began = timezone.now()
    if not early_claim.begin(early):
        early.beat.__exit__(None, None, None)
        early_claim.forget(early)
        return chain(done, beat, where, task)
    early.job.started_at, early.job.lease = began, early.lease
    _begun = background.submit(_record_begun, Held(done, beat), early, where)
    return [early.job], early.lease, early.beat


def settle() -> None:
    """Until the last job begun early is recorded as begun: from then on the database names its
    attempt's lease, which its finish, a failure and `still_ours` are checked against."""
    global _begun
    if _begun is not None:
        _begun.result()
        _begun = None


_begun: Future | None = None


def _record_begun(held: Held, early: Early, where: str) -> None:
    pipe = redis_client().pipeline(transaction=False)
    try:
        begun, recorded = persist(
            lifecycle.begin_early, held.done, early.job, early.lease, where, early.job.started_at, pipe
        )
    except Exception:  # the database away past persist's patience: the reaper re-runs the jobs
        log.exception("could not record jobs %s ended and job %s begun", [d.job.id for d in held.done], early.job.id)
        held.beat.__exit__(None, None, None)
        return
    if not begun:  # cancelled between its Redis mark and this statement: the cancel stops this process
        log.warning("job %s was cancelled as it began", early.job.id)
    early_claim.forget(early, pipe)
    _tell(pipe, _ended(held, recorded, pipe, identity.current()))


def _record_quietly(held: Held) -> None:
    """`record` on the background thread, where it must not wait for itself (`settle`)."""
    try:
        _record(held, [], "", "", settled=True)
    except Exception:  # the database away past persist's patience: the reaper re-runs the jobs
        log.exception("could not record finished jobs %s", [d.job.id for d in held.done])


def _record(held: Held | None, job_ids: list[int] | None, where: str, task: str, settled: bool = False) -> Claimed:
    """`job_ids` None: the head of this worker's queue. What follows the commit in Redis (the waiters
    told, the GPU time charged, the old leases dropped, the GPU's CUDA error count reset, the releaser
    woken) goes in one pipeline, sent while the next job runs where one was claimed: each round trip
    here would be GPU idle between jobs. Only the new leases are set before it starts."""
    if not settled:
        settle()
    me = identity.current()
    if held and not held.done and job_ids == []:  # nothing to write
        held.beat.__exit__(None, None, None)
        return [], "", None
    r = redis_client()
    pipe = r.pipeline(transaction=False)
    try:
        jobs, lease, recorded, _ = persist(
            lifecycle.claim_next, held.done if held else [], job_ids, me.host, me.queue, where, pipe
        )
    except BaseException:
        if held:
            held.beat.__exit__(None, None, None)
        raise
    if held and held.done:
        stages.mark("worker.recorded")
    then = _ended(held, recorded, pipe, me) if held else None
    if not jobs:
        _tell(pipe, then)
        return [], lease, None
    # The new leases before the job starts (a cancel finds its task there); the rest while it runs.
    with r.pipeline(transaction=False) as leases:
        beat = heartbeat.Heartbeat(r, [job.id for job in jobs], lease, me.host, task).start_now(leases)
    background.submit(_tell, pipe, then)
    return jobs, lease, beat


def _ended(held: Held, recorded: set[int], pipe, me: identity.WorkerIdentity):
    """On `pipe`: the ended attempt's leases dropped, and where successes were recorded, the releaser
    woken (what `nudge_on` hands back, for `_tell`) and the GPU's run of CUDA errors broken."""
    held.beat.end(pipe)
    if not recorded:
        return None
    if held.gpu_healthy:
        health.succeeded_on(pipe, me.uuid)
    return nudge_on(pipe)


def _tell(pipe, then) -> None:
    try:
        results = pipe.execute()
    except redis.RedisError as exc:  # the waiters see it at their recheck, the releaser within a second
        log.warning("could not tell Redis of finished and started jobs: %s", exc)
        results = None
    if then is not None:
        stages.mark("worker.told")
        then(results)


@worker_process_shutdown.connect
def _on_shutdown(**_) -> None:
    background.drain()  # a bundle's successes recorded beside the next claim are written before it goes
