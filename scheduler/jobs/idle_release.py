"""The common case released by the submission itself: one job while nothing else waits, and a GPU holds nothing.

A release round costs the releaser's wake and ~8 statements (24 ms of the H200's 42.7 ms from POST to
running, docs/BENCHMARKS.md); here the router picks among the GPUs as if none held anything, and one
conditional statement (lifecycle.release_to_idle) checks that this is so: no other job waits (so no
priority, fair share or reservation can be passed over), the chosen GPU holds nothing, the owner has
no GPU quota, and no release round runs now. Where any of that fails, the releaser loop decides as usual.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.db import connection

from scheduler.dispatch.connections import redis_client
from scheduler.fleet.router import route
from scheduler.jobs import dependencies, lifecycle, sending
from scheduler.jobs.holdings import Holding
from scheduler.jobs.models import Job
from scheduler.jobs.release import RELEASE_LOCK_ID, demand, gpu_state, live_routable, nudge


def release_or_nudge(jobs: list[Job]) -> None:
    """After a submission commits: release a lone job to an idle GPU at once, else wake the releaser."""
    try:
        released = len(jobs) == 1 and release_to_idle(jobs[0])
    except Exception:  # Redis or the database away for a moment: the round decides, as without this path
        released = False
    if not released:
        nudge()


def release_to_idle(job: Job) -> bool:
    """Release `job` to an idle GPU in one statement, and send it; False where a round must decide."""
    if connection.vendor != "postgresql" or job.gpus != 1 or job.wait_reason != dependencies.ROOM:
        return False
    snaps = live_routable(redis_client())
    gpus = [gpu_state(s, Holding()) for s in snaps]
    [decision] = route(
        [demand(job)],
        gpus,
        now=time.time(),
        policy=settings.ROUTER_POLICY,
        stale_after=settings.GPU_STALE_AFTER,
        reserve_head=False,
    )
    if decision.queue is None:
        return False
    uuid = next(s.uuid for s in snaps if s.queue == decision.queue)
    if not lifecycle.release_to_idle(job.id, decision.queue, uuid, decision.reason, RELEASE_LOCK_ID):
        return False
    sending.send_all([(decision.queue, job.id)], {job.id: job})
    return True
