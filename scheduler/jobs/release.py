"""Late binding: jobs wait in the database; a GPU is given its next job only when it has room.

`release()` runs after a submission, in the releaser loop every second, and when a finished job wakes
that loop (`nudge`).
A release is a claim that must happen once: release rounds are serialised (an advisory lock on
PostgreSQL, the write lock on SQLite) and each job moves with a conditional update.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Sum

from scheduler.dispatch import celery_app, keys
from scheduler.dispatch.connections import redis_client
from scheduler.fleet import store as fleet
from scheduler.fleet.router import Decision, GpuState, JobDemand, route
from scheduler.fleet.router import room as router_room
from scheduler.fleet.snapshot import Snapshot
from scheduler.jobs import dependencies, fairshare, lifecycle, quotas, sending
from scheduler.jobs.holdings import HARD_KILL_MARGIN_S, Holding, held_rows, holdings
from scheduler.jobs.models import HELD, Job, Status

log = logging.getLogger(__name__)
RELEASE_LOCK_ID = 0x6770_7571  # "gpuq"


def release() -> int:
    """Release waiting jobs to GPUs with room; returns how many were released."""
    if not Job.objects.filter(status=Status.WAITING).exists():
        return 0  # the common case after a job ends on an idle queue: no lock, no Redis
    r = redis_client()
    snaps = live_routable(r)
    with transaction.atomic():
        _serialise()
        dependencies.explain()
        gpus = gpu_states(snaps)
        room = sum(router_room(g) for g in gpus if not g.draining and g.healthy)
        if not snaps:
            _explain_all_waiting("no GPU worker is alive")
        if room == 0:
            return 0
        jobs = candidates(r, limit=max(room * 4, 16))
        decisions = route(
            [demand(j) for j in jobs],
            gpus,
            now=time.time(),
            policy=settings.ROUTER_POLICY,
            stale_after=settings.GPU_STALE_AFTER,
            reserve_head=settings.GPU_RESERVATIONS,
        )
        return _apply(jobs, decisions, {s.queue: s.uuid for s in snaps})


def demand(job: Job) -> JobDemand:
    """The router's view of a job: its memory on each GPU, work, GPUs and the latest it can run."""
    return JobDemand(
        job.id, job.memory_estimate, job.work_estimate, job.gpus, float(job.time_limit + HARD_KILL_MARGIN_S)
    )


def gpu_states(snaps: list[Snapshot]) -> list[GpuState]:
    """The router's view of the live GPUs, with what the database says each holds."""
    held = holdings(held_rows([s.queue for s in snaps]), settings.GPU_CONCURRENCY)
    return [gpu_state(s, held.get(s.queue, Holding())) for s in snaps]


def release_soon() -> None:
    """Release now, after a submission or a finished job; a failure is logged, not raised, because
    the work that triggered it is already committed and the releaser loop retries within a second."""
    try:
        release()
    except Exception:
        log.exception("release failed; the releaser loop retries")


# The releaser loop says it is alive here each round; a finished job's worker then only wakes it.
ALIVE_KEY = keys.RELEASER_ALIVE
WAKE_KEY = keys.RELEASER_WAKE


def nudge() -> None:
    """After a job is submitted or ends: wake the releaser loop for a round now (one Redis call, and
    the rounds of many such wakes coalesce into one); release here only where no releaser loop is alive."""
    try:
        with redis_client().pipeline(transaction=False) as pipe:
            then = nudge_on(pipe)
            results = pipe.execute()
    except Exception:  # Redis away: no loop can be woken, so release here
        release_soon()
        return
    then(results)


def nudge_on(pipe) -> Callable[[list | None], None]:
    """`nudge`, queued on the caller's pipeline; call what it returns with the pipeline's results
    (None where it failed)."""
    at = len(pipe)
    pipe.exists(ALIVE_KEY)
    pipe.lpush(WAKE_KEY, 1)
    pipe.ltrim(WAKE_KEY, 0, 0)

    def then(results: list | None) -> None:
        if not (results and results[at]):
            release_soon()

    return then


def wait_for_wake(r, seconds: float) -> None:
    """The releaser's pause between rounds: `seconds`, or less when a finished job wakes it."""
    r.set(ALIVE_KEY, 1, ex=max(5, int(3 * seconds) + 1))
    if r.blpop([WAKE_KEY], timeout=seconds):
        r.delete(WAKE_KEY)


def live_routable(r) -> list[Snapshot]:
    """The live GPUs' snapshots, with staff's drains and health marks applied: those take effect now,
    not at the worker's next snapshot."""
    return routable(fleet.read(r))


def routable(seen: fleet.Fleet) -> list[Snapshot]:
    """`live_routable` of a Fleet already read."""
    drained, sick = seen.draining, seen.unhealthy
    return [
        replace(s, draining=s.draining or s.uuid in drained, healthy=s.healthy and s.uuid not in sick)
        for s in seen.live
    ]


def _explain_all_waiting(reason: str) -> None:
    waiting = Job.objects.filter(status=Status.WAITING).exclude(wait_reason__startswith=dependencies.PREFIX)
    waiting.exclude(wait_reason=reason).update(wait_reason=reason)


def _serialise() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", [RELEASE_LOCK_ID])
    # SQLite: settings open every transaction IMMEDIATE, which takes the database's write lock.


def gpu_state(snap: Snapshot, held: Holding) -> GpuState:
    """The router's view of one live GPU holding `held`."""
    return fleet.to_gpu_state(
        snap,
        slots=settings.GPU_SLOTS,
        concurrency=settings.GPU_CONCURRENCY,
        held_jobs=held.jobs,
        held_work=held.work,
        held_memory=held.memory,
        feed_seconds=settings.GPU_FEED_SECONDS,
        max_held=settings.GPU_MAX_HELD,
        free_at=held.free_at,
        free_by=held.free_by,
        gang_job=held.gang_job,
    )


def candidates(r, limit: int) -> list[Job]:
    """Waiting jobs whose dependencies succeeded, in release order: priority, fair share, age."""
    return release_order(r, limit, explain=True)[:limit]


def ready_jobs():
    """Waiting jobs whose dependencies all succeeded."""
    return Job.objects.filter(status=Status.WAITING).exclude(
        after__status__in=[s for s in Status.values if s != Status.SUCCEEDED]
    )


def release_order(r, limit: int | None, explain: bool = False) -> list[Job]:
    """Ready jobs in the order rounds release them, at most `limit` of each user (None: all of them);
    users at their GPU quota have none released (`explain`: their jobs say so)."""
    ready = ready_jobs()
    owners = list(ready.values_list("owner_id", flat=True).distinct())
    allowance = quotas.gpu_allowance(owners)
    per_user: dict[int, list[Job]] = {}
    for uid in owners:
        mine = list(ready.filter(owner_id=uid).order_by("-priority", "created_at", "id")[:limit])
        if uid in allowance:
            taken, reason = quotas.within(mine, *allowance[uid])
            if explain:
                skipped = [j.id for j in mine[len(taken) :] if j.wait_reason != reason]
                Job.objects.filter(id__in=skipped, status=Status.WAITING).update(wait_reason=reason)
            mine = taken
        if mine:
            per_user[uid] = mine
    used = fairshare.usage(r, per_user)
    for uid, work in _held_work(per_user).items():
        used[uid] = used.get(uid, 0.0) + work
    # A job on N GPUs costs its user N times its work, here as in the charge when it ends.
    return fairshare.interleave(per_user, used, lambda j: j.priority, lambda j: j.work_estimate * j.gpus)


def _held_work(users) -> dict[int, float]:
    rows = (
        Job.objects.filter(owner_id__in=list(users), status__in=HELD)
        .values("owner_id")
        .annotate(w=Sum(F("work_estimate") * F("gpus")))
    )
    return {row["owner_id"]: row["w"] or 0.0 for row in rows}


def _apply(jobs: list[Job], decisions: list[Decision], uuids: dict[str, str]) -> int:
    by_id = {j.id: j for j in jobs}
    waiting_reasons = defaultdict(list)
    to_queue: dict[str, dict[int, str]] = defaultdict(dict)
    gangs = []
    for d in decisions:
        reason = f"{d.reason}; {d.reservation.describe(time.time())}" if d.reservation else d.reason
        if d.gang:
            gangs.append(d)
        elif d.queue is not None:
            to_queue[d.queue][d.job_id] = d.reason
        elif by_id[d.job_id].wait_reason != reason:
            waiting_reasons[reason].append(d.job_id)
    released = [
        (queue, job_id)
        for queue, reasons in to_queue.items()
        for job_id in lifecycle.mark_queued(queue, uuids.get(queue, ""), reasons)
    ]
    released += [
        (d.gang[0], d.job_id)
        for d in gangs
        if lifecycle.mark_gang_queued(d.job_id, [{"queue": q, "uuid": uuids.get(q, "")} for q in d.gang], d.reason)
    ]
    # Messages go out once the release is committed, in the order the router placed the jobs.
    transaction.on_commit(lambda: sending.send_all(released, by_id))
    for reason, ids in waiting_reasons.items():
        Job.objects.filter(id__in=ids, status=Status.WAITING).update(wait_reason=reason)
    return len(released)


def resend(job: Job) -> None:
    """Send a released job's message again (Redis lost it); a duplicate is dropped by the claim."""
    celery_app.send_job([job.id], job.queue, job.kind)
