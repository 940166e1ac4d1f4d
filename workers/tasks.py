"""The one Celery task: run a job by id. Thin: claim the row, run it with its kind's runner, record the outcome."""

from __future__ import annotations

import logging
import os
from functools import partial

from celery.signals import task_received
from django.utils import timezone

from scheduler import stages
from scheduler.dispatch import lease
from scheduler.dispatch.celery_app import RUN_JOB, app
from scheduler.dispatch.connections import redis_client
from scheduler.fleet import health
from scheduler.jobs import lifecycle
from scheduler.jobs.models import Job, Status
from scheduler.jobs.release import nudge
from workers import background, early_claim, finishing, heartbeat, identity, job_limit, pool, runners
from workers.outcome import Outcome
from workers.persist import persist

log = logging.getLogger(__name__)


class JobFailed(Exception):
    """Raised after a failed job is recorded, so that Celery (and Flower) count the task as failed too;
    declared in `throws`, so the worker logs it in one line, without a traceback."""


@app.task(name=RUN_JOB, throws=(JobFailed,), bind=True)
def run_job(self, job_id: int, also: list[int] | None = None) -> None:
    """Run a job, or several short ones sent together (`also`: scheduler/jobs/release.py), claimed in one
    statement and run back to back. Then, while this worker's queue holds more, claim and run its head
    too (a job, or the short ones one message would carry), in the statement that records the last
    successes: the GPU does not wait for a message and a second commit (the message, when it comes, finds
    its jobs taken and is dropped)."""
    stages.mark("worker.started")
    ids = [job_id, *(also or [])]
    jobs, token, beat = finishing.claim(ids, pool.describe(), self.request.id)
    stages.mark("worker.claimed")
    if lost := set(ids) - {job.id for job in jobs}:
        persist(_recover_redelivery, lost)
    r = redis_client()
    while jobs and beat is not None:
        early_claim.schedule(jobs, self.request.id)  # the next job, claimed before this one ends
        try:
            done, failed = _run_all(r, jobs, token, beat)
        except BaseException:
            beat.__exit__(None, None, None)
            early_claim.give_back()
            raise
        if failed:
            early_claim.give_back()
            finishing.record(done, beat)
            nudge()
            raise JobFailed(f"job {failed[0]}" + (f" (and {len(failed) - 1} more of its bundle)" if failed[1:] else ""))
        if (early := early_claim.take()) is not None:
            jobs, token, beat = finishing.begin(done, beat, early, pool.describe(), self.request.id)
            continue
        # Short jobs at the queue's head are claimed as a bundle's message would carry them, with these
        # successes, without waiting for that message (it finds them taken): the wait was the GPU's
        # longest idle between jobs (docs/BENCHMARKS.md).
        jobs, token, beat = finishing.chain(done, beat, pool.describe(), self.request.id)


@task_received.connect
def _received(**_) -> None:
    stages.mark("worker.received")  # in the worker's main process, before the pool has the task


def _run_all(r, jobs: list[Job], token: str, beat: heartbeat.Heartbeat) -> tuple[list[lifecycle.Done], list[str]]:
    """Run the claimed jobs in order: (the successes to record, the failures recorded)."""
    done: list[lifecycle.Done] = []
    failed: list[str] = []
    for i, job in enumerate(jobs):
        began = timezone.now() if i else None  # the first began when it was claimed
        # Retried like claim and finish: a database blip must not stop an attempt that runs on.
        with job_limit.limits(job.time_limit, partial(lifecycle.fail_timed_out, job)):
            outcome = runners.run(job, partial(_still_ours, job.id, token))
        if outcome.status == Status.SUCCEEDED:
            stages.mark("worker.ended")
            done.append(lifecycle.Done(job, token, outcome.result, _note(outcome), timezone.now(), began))
            continue
        if done:  # a success since the last failure breaks the GPU's run of CUDA errors
            _count_for_health(r, Outcome(Status.SUCCEEDED))
        if _fail(r, job, token, outcome, began):
            failed.append(f"{job.id} failed: {(outcome.error or '')[:500]}")
        if outcome.error_kind == "sticky":
            # A sticky CUDA error poisons this process's context: exit so a clean process replaces it,
            # with the successes recorded and the jobs not yet run back to waiting.
            early_claim.give_back()
            finishing.record(done, beat, gpu_healthy=False)  # this failure was counted after them
            background.drain()  # the successes of the bundle before, recorded beside this claim
            for rest in jobs[i + 1 :]:
                persist(lifecycle.requeue, rest.id, "its worker restarted after a CUDA error poisoned the context")
            nudge()
            os._exit(70)
    return done, failed


def _still_ours(job_id: int, token: str) -> bool:
    finishing.settle()  # a job begun early holds its lease in the database once recorded as begun
    return persist(lifecycle.holds, job_id, token)


def _fail(r, job: Job, token: str, outcome: Outcome, began) -> bool:
    finishing.settle()
    recorded = persist(
        lifecycle.finish,
        job,
        token,
        outcome.status,
        result=outcome.result,
        error=outcome.error,
        error_kind=outcome.error_kind,
        note=_note(outcome),
        began=began,
    )
    if recorded:
        _count_for_health(r, outcome)
    return recorded


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


def _recover_redelivery(job_ids: set[int]) -> None:
    """A delivery that could not claim its jobs: a duplicate, a message whose jobs its worker took from
    the queue's head without it (finished by now, or running), or a redelivery after this worker's pool
    process died mid-job; in the last case the job goes back to waiting at once. One query for them all."""
    me = identity.current()
    for job_id in Job.objects.filter(id__in=job_ids, status=Status.RUNNING, queue=me.queue).values_list(
        "id", flat=True
    ):
        entry = lease.holder(redis_client(), job_id)
        if entry is None or not heartbeat.alive_on_this_host(entry, me.host):
            lifecycle.requeue(job_id, "its worker process died during the attempt")
            nudge()
