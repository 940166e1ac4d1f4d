"""Every change of a job's status, each a conditional update so that a change happens once.

    from                        to                     who                                        function
    (new)                       waiting                submission (scheduler/jobs/submission.py)  submitted
    waiting                     queued                 the releaser, for a GPU with room          mark_queued
    (new)                       queued                 the submission, a lone job for an idle GPU submitted
                                                       while nothing else waits
    queued                      running                the worker that receives the job, or the   claim
                                                       one that ran the job before it (claim_next)
    queued                      running, not begun     the worker, while the job before it runs   claim_early
                                                       (begin_early records it begun, unclaim_early
                                                       gives it back: workers/early_claim.py)
    running                     succeeded | failed     that attempt, while it holds the lease     finish
    queued | running            waiting                the reaper (GPU silent, attempt lost),     requeue
                                                       a worker given a job whose attempt died
    running                     failed                 the reaper (over its time limit), requeue  fail_running
                                                       (attempts used up: poisoned), the worker's
                                                       watchdog at the hard limit (fail_timed_out)
    waiting | queued | running  cancelled              a user or staff (scheduler/jobs/control.py) cancel
    waiting                     failed                 finish, cancel, fail_running: a job it     fail_dependents
                                                       waited for did not succeed

Nothing else writes a job's status (tests/test_lifecycle.py checks); on PostgreSQL the hot ones (mark_queued,
claim, a success's finish) are single statements kept in lifecycle_sql.py, which only this module
calls, and `claim_next` is a worker's finish and its next claim in one statement. A worker may receive a job twice
(at-least-once delivery) and two processes may race on a row; `filter(id=..., status=...).update(...)`
returning 0 rows means someone else already moved it.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, CharField, F, Value, When
from django.utils import timezone

from scheduler.dispatch.connections import redis_client
from scheduler.jobs import changes, lifecycle_sql, sending
from scheduler.jobs.fairshare import charge
from scheduler.jobs.models import FINAL, HELD, UNFINISHED, Job, JobEvent, Status
from scheduler.metrics import observe


def record(job_id: int, message: str, status: str = "") -> None:
    JobEvent.objects.create(job_id=job_id, status=status, message=message)
    if status:
        changes.announce([job_id], status)


@dataclass
class Submitted:
    jobs: list[Job]  # stored, with their ids; none where the owner's quota refused them
    pending: int  # the owner's unfinished jobs before these
    released: bool  # the lone job was stored queued on the idle GPU it was meant for


def submitted(
    jobs: list[Job], most_pending: int, idle: tuple[str, str, str] | None = None, lock_id: int = 0
) -> Submitted:
    """Store new jobs (of one owner and array), waiting, each with its `submitted` event, only while the
    owner's unfinished jobs and these stay within `most_pending`: one statement on PostgreSQL
    (lifecycle_sql.submitted), which stores a lone job queued on `idle` (queue, GPU uuid, reason) where
    nothing else waits, that GPU holds nothing and no release round holds `lock_id`; on SQLite a count
    and Django's two bulk inserts."""
    if connection.vendor == "postgresql":
        # Nothing is announced: no one can wait on a job whose id its POST has not answered yet, and
        # the publish cost a Redis round trip before the job's message was sent.
        stored, pending, released = lifecycle_sql.submitted(jobs, timezone.now(), most_pending, idle, lock_id)
        return Submitted(jobs if stored else [], pending, released)
    pending = Job.objects.filter(owner_id=jobs[0].owner_id, status__in=UNFINISHED).count()
    if pending + len(jobs) > most_pending:
        return Submitted([], pending, False)
    stored = Job.objects.bulk_create(jobs)
    JobEvent.objects.bulk_create([JobEvent(job_id=j.id, status=Status.WAITING, message="submitted") for j in stored])
    return Submitted(stored, pending, False)


def mark_queued(queue: str, gpu_uuid: str, reasons: dict[int, str]) -> list[int]:
    """Release waiting jobs to one GPU's queue, each with its routing reason, in one statement;
    the ids that moved (a job cancelled meanwhile stays cancelled)."""
    now = timezone.now()
    ids = list(reasons)
    if connection.vendor == "postgresql":
        released = lifecycle_sql.mark_queued(ids, queue, gpu_uuid, reasons, now)
        changes.announce(released, Status.QUEUED)
        return released
    changed = Job.objects.filter(id__in=ids, status=Status.WAITING).update(
        status=Status.QUEUED,
        queue=queue,
        gpu_uuid=gpu_uuid,
        route_reason=Case(*(When(id=i, then=Value(r)) for i, r in reasons.items()), output_field=CharField()),
        wait_reason="",
        queued_at=now,
    )
    if changed != len(ids):
        moved = set(
            Job.objects.filter(id__in=ids, status=Status.QUEUED, queue=queue, queued_at=now).values_list(
                "id", flat=True
            )
        )
        ids = [i for i in ids if i in moved]
    JobEvent.objects.bulk_create(
        [JobEvent(job_id=i, status=Status.QUEUED, message=f"routed to {queue}: {reasons[i]}") for i in ids]
    )
    return ids


def mark_gang_queued(job_id: int, gang: list[dict[str, str]], reason: str) -> bool:
    """Release a waiting multi-GPU job to all its GPUs at once (the leader first): one statement sets
    them all, so the job never holds some while waiting for the rest."""
    leader = gang[0]
    changed = Job.objects.filter(id=job_id, status=Status.WAITING).update(
        status=Status.QUEUED,
        queue=leader["queue"],
        gpu_uuid=leader["uuid"],
        gang=gang,
        route_reason=reason,
        wait_reason="",
        queued_at=timezone.now(),
    )
    if changed:
        record(job_id, f"routed to {', '.join(m['queue'] for m in gang)}: {reason}", Status.QUEUED)
    return bool(changed)


def claim(job_id: int, host: str, worker_queue: str, where: str = "", lease: str = "") -> tuple[Job, str] | None:
    """Start an attempt of a queued job; returns the job and the attempt's lease (`lease`, or a new one), or None."""
    lease = lease or uuid.uuid4().hex
    if connection.vendor == "postgresql":
        _, jobs, _ = lifecycle_sql.finish_and_claim(
            [], [job_id], lease, timezone.now(), worker_queue, where or worker_queue
        )
        if not jobs:
            return None
        changes.announce([job_id], Status.RUNNING)
        return jobs[0], lease
    table = Job._meta.db_table
    with transaction.atomic():
        # One statement moves the row and reads it back (UPDATE ... RETURNING: PostgreSQL, SQLite 3.35+).
        claimed = list(
            Job.objects.raw(
                f"UPDATE {table} SET status = %s, lease = %s, started_at = %s, error = '', error_kind = '', "
                f"attempts = attempts + 1 WHERE id = %s AND status = %s AND queue = %s RETURNING *",
                [Status.RUNNING, lease, timezone.now(), job_id, Status.QUEUED, worker_queue],
            )
        )
        if not claimed:
            return None
        job = claimed[0]
        record(job_id, f"attempt {job.attempts} started: {job.kind} on {where or worker_queue}", Status.RUNNING)
    return job, lease


@dataclass
class Done:
    """A succeeded attempt whose outcome a worker records with its next claim, in the same commit."""

    job: Job
    lease: str
    result: dict | None
    note: str
    at: datetime
    began: datetime | None = None  # when it started, where several jobs were claimed together before it


def claim_next(
    done: list[Done],
    job_ids: list[int] | None,
    host: str,
    worker_queue: str,
    where: str = "",
    pipe=None,
) -> tuple[list[Job], str, set[int], bool]:
    """Record the successes `done` and claim the jobs `job_ids` still queued for this worker, or with
    `job_ids` None the head of its queue where its worker may take it without its message (a job run
    alone: lifecycle_sql.finish_and_claim; PostgreSQL only), in one statement on PostgreSQL: (the jobs
    claimed, in order; the lease their attempt holds; the ids of `done` recorded; whether other jobs
    wait queued for this worker); with `job_ids` None, where the head is a short job, the run of them
    that one message would carry, claimed without it (after a bundle, its worker does not wait for the
    next one's message). The waiters are told, and the GPU time charged, on `pipe` where given (the
    caller's pipeline, executed by it), else at once."""
    lease = uuid.uuid4().hex
    if connection.vendor != "postgresql":
        recorded = {d.job.id for d in done if finish(d.job, d.lease, Status.SUCCEEDED, **_outcome(d))}
        claims = [claim(job_id, host, worker_queue, where, lease) for job_id in job_ids or ()]
        return [c[0] for c in claims if c is not None], lease, recorded, False
    previous = [
        _outcome(d) | {"job_id": d.job.id, "lease": d.lease, "message": d.note or Status.SUCCEEDED} for d in done
    ]
    bundle = (settings.JOB_BUNDLE_MAX, sending.killable_kinds())
    recorded, jobs, more = lifecycle_sql.finish_and_claim(
        previous,
        job_ids,
        lease,
        timezone.now(),
        worker_queue,
        where or worker_queue,
        settings.JOB_BUNDLE_SECONDS,
        bundle=bundle,
    )
    _told(done, recorded, [job.id for job in jobs], pipe)
    return jobs, lease, recorded, more


EARLY = "early:"  # a lease claimed early: the attempt of the job after the one its worker runs, not begun


def claim_early(host: str, worker_queue: str) -> tuple[Job, str] | None:
    """Claim the head of this worker's queue while the job before it runs (PostgreSQL): running, its
    attempt counted, under the lease EARLY + the lease returned; no event until `begin_early`
    (workers/early_claim.py); `unclaim_early` gives it back."""
    lease = uuid.uuid4().hex
    _, jobs, _ = lifecycle_sql.finish_and_claim(
        [], None, EARLY + lease, timezone.now(), worker_queue, worker_queue, settings.JOB_BUNDLE_SECONDS, early=True
    )
    return (jobs[0], lease) if jobs else None


def begin_early(
    done: list[Done], job: Job, lease: str, where: str, began: datetime, pipe=None
) -> tuple[bool, set[int]]:
    """Record the successes `done` and that the attempt of `job`, claimed early under `lease`, `began`
    (with its event), in one statement: (whether it was still held: not where it was cancelled; the
    ids of `done` recorded). The waiters are told, and the GPU time charged, on `pipe` where given."""
    recorded, attempts = lifecycle_sql.begin_early(
        [_outcome(d) | {"job_id": d.job.id, "lease": d.lease, "message": d.note or Status.SUCCEEDED} for d in done],
        job.id,
        EARLY + lease,
        lease,
        began,
        where,
    )
    _told(done, recorded, [job.id] if attempts else [], pipe)
    return bool(attempts), recorded


def unclaim_early(job_id: int, lease: str) -> bool:
    """Give a job claimed early, never begun, back to the head of its queue (the job before it failed),
    its attempt uncounted: its message, not yet taken, claims it as usual."""
    return bool(
        Job.objects.filter(id=job_id, status=Status.RUNNING, lease=EARLY + lease).update(
            status=Status.QUEUED, lease="", started_at=None, attempts=F("attempts") - 1
        )
    )


def _told(done: list[Done], recorded: set[int], started: list[int], pipe) -> None:
    if recorded:
        ended = [(d.job, d.began or d.job.started_at, d.at) for d in done if d.job.id in recorded]
        _charge(ended, announce=Status.SUCCEEDED, pipe=pipe)
    changes.announce(started, Status.RUNNING, pipe)


def _outcome(d: Done) -> dict:
    return {"result": d.result, "note": d.note, "at": d.at, "began": d.began}


def holds(job_id: int, lease: str) -> bool:
    """Whether the attempt holding `lease` still runs the job (not cancelled, not given to another)."""
    return Job.objects.filter(id=job_id, status=Status.RUNNING, lease=lease).exists()


def finish(
    job: Job,
    lease: str,
    status: str,
    *,
    result: dict | None = None,
    error: str = "",
    error_kind: str = "",
    note: str = "",
    at: datetime | None = None,
    began: datetime | None = None,
) -> bool:
    """Record an attempt's outcome (ended `at`, default now; begun `began`, default when it was claimed);
    only the attempt holding the lease may, and only once."""
    now = at or timezone.now()
    if connection.vendor == "postgresql" and status == Status.SUCCEEDED:
        # The common case in one statement; a failure also fails its dependents, in one transaction below.
        fields = {"result": result, "error": error, "error_kind": error_kind}
        changed = lifecycle_sql.finish(job.id, lease, began, now, status, fields, error or note or status)
        if changed:
            _charge([(job, began or job.started_at, now)], announce=status)
        return changed
    with transaction.atomic():
        changed = Job.objects.filter(id=job.id, status=Status.RUNNING, lease=lease).update(
            status=status,
            result=result,
            error=error,
            error_kind=error_kind,
            started_at=began or job.started_at,
            finished_at=now,
            lease="",
        )
        if changed:
            record(job.id, error or note or status, status)
            if status != Status.SUCCEEDED:
                fail_dependents(job.id)
    if changed:
        _charge([(job, began or job.started_at, now)])
    return bool(changed)


def _charge(ended: list[tuple[Job, datetime, datetime]], announce: str = "", pipe=None) -> None:
    """Count finished attempts' GPU time (each job, its start, its end): the owners' fair share, and the
    metrics, in one round trip; with `announce`, the status they ended in, tell the jobs' waiters in it
    too. On `pipe`, the caller's pipeline, where given."""
    if pipe is not None:
        _charge_on(pipe, ended, announce)
        return
    with redis_client().pipeline(transaction=False) as own:
        _charge_on(own, ended, announce)
        own.execute()


def _charge_on(pipe, ended: list[tuple[Job, datetime, datetime]], announce: str) -> None:
    seconds = {job.id: (end - began).total_seconds() for job, began, end in ended}
    by_owner: dict[int, float] = defaultdict(float)
    for job, _, _ in ended:
        by_owner[job.owner_id] += seconds[job.id] * job.gpus  # N GPUs for this long
    if announce:
        changes.announce(list(seconds), announce, pipe)
    for owner_id, gpu_seconds in by_owner.items():
        charge(pipe, owner_id, gpu_seconds)
    observe(pipe, "duration", seconds.values())
    observe(pipe, "wait", [(began - job.created_at).total_seconds() for job, began, _ in ended])


def requeue(job_id: int, reason: str) -> bool:
    """Send a held job back to waiting (its GPU died or its attempt was lost), or fail it as poisoned."""
    job = Job.objects.filter(id=job_id).first()
    if job is None or job.status not in HELD:
        return False
    if job.status == Status.RUNNING and job.attempts >= settings.JOB_MAX_ATTEMPTS:
        return fail_running(job, f"poisoned: {job.attempts} attempts ended without a result ({reason})", "poisoned")
    changed = Job.objects.filter(id=job_id, status=job.status, lease=job.lease).update(
        status=Status.WAITING,
        queue="",
        gpu_uuid="",
        gang=[],
        lease="",
        started_at=None,
        queued_at=None,
    )
    if changed:
        record(job_id, f"back to waiting: {reason}", Status.WAITING)
    return bool(changed)


def fail_timed_out(job: Job) -> bool:
    """Fail a running job stopped at its hard limit (its worker's watchdog, or the reaper after its lease lapsed)."""
    return fail_running(job, f"timed out: over its time limit of {job.time_limit} s (the worker stopped it)", "timeout")


def fail_running(job: Job, message: str, error_kind: str) -> bool:
    """Fail a running job from outside its attempt (its process is gone)."""
    changed = Job.objects.filter(id=job.id, status=Status.RUNNING, lease=job.lease).update(
        status=Status.FAILED,
        error=message,
        error_kind=error_kind,
        finished_at=timezone.now(),
        lease="",
    )
    if changed:
        record(job.id, message, Status.FAILED)
        fail_dependents(job.id)
    return bool(changed)


def cancel(job: Job, by: str) -> tuple[str, str] | None:
    """Cancel a job that has not finished: (the status and lease it had, read under the row's lock: a
    running attempt may still be beginning, lease EARLY...), None where it had ended. The caller stops
    a running attempt."""
    with transaction.atomic():
        was = Job.objects.select_for_update().filter(id=job.id).exclude(status__in=FINAL).values_list("status", "lease")
        if not (held := was.first()):
            return None
        Job.objects.filter(id=job.id).update(
            status=Status.CANCELLED, finished_at=timezone.now(), lease="", error=f"cancelled by {by}"
        )
        record(job.id, f"cancelled by {by}", Status.CANCELLED)
        fail_dependents(job.id)
    return held


def fail_dependents(job_id: int) -> None:
    """A job waiting on one that did not succeed can never run: fail it, and its own dependents."""
    pending = list(Job.objects.filter(after__id=job_id, status=Status.WAITING).values_list("id", flat=True))
    for dep_id in pending:
        fail_waiting(dep_id, f"dependency failed: job {job_id} did not succeed")


def fail_waiting(job_id: int, message: str) -> bool:
    """Fail a waiting job that can never run (a dependency ended without success), and its dependents."""
    changed = Job.objects.filter(id=job_id, status=Status.WAITING).update(
        status=Status.FAILED, error=message, error_kind="dependency", finished_at=timezone.now()
    )
    if changed:
        record(job_id, message, Status.FAILED)
        fail_dependents(job_id)
    return bool(changed)
