"""The common case released by its own submission: one job while nothing else waits, and a GPU holds nothing.

A release round costs the releaser's wake and ~8 statements; here the router picks among the GPUs as if
none held anything, before the job is stored, and the statement that stores it (lifecycle.submitted)
stores it queued there only where that is so: no other job waits (so no priority, fair share or
reservation can be passed over), the chosen GPU holds nothing, and no release round runs now; an owner
with a GPU quota (read with the allowance, in the same transaction) is left to the round. Where any of
that fails the job is stored waiting and the releaser loop decides as usual. From request to released
this is one statement and one commit (two of each when the release followed the commit: 2.59 ms p50
between the row and its release on the H200, docs/BENCHMARKS.md).
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.db import connection

from scheduler import stages
from scheduler.fleet.router import route
from scheduler.fleet.store import Fleet
from scheduler.jobs import dependencies, sending
from scheduler.jobs.holdings import Holding
from scheduler.jobs.models import Job, Quota
from scheduler.jobs.release import RELEASE_LOCK_ID, demand, gpu_state, nudge, routable

log = logging.getLogger(__name__)
LOCK_ID = RELEASE_LOCK_ID  # the release rounds' lock: the storing statement tries it, and holds it to its commit


def idle_gpu(job: Job, quota: Quota | None, seen: Fleet) -> tuple[str, str, str] | None:
    """Where the router would send `job` (not stored yet) if no GPU held anything, `seen` the fleet as
    its submission read it: (queue, GPU uuid, reason), or None where a round must decide."""
    if connection.vendor != "postgresql" or job.gpus != 1 or job.wait_reason != dependencies.ROOM:
        return None
    if quota is not None and quota.max_gpus:
        return None
    snaps = routable(seen)
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
        return None
    return decision.queue, next(s.uuid for s in snaps if s.queue == decision.queue), decision.reason


def send_or_nudge(jobs: list[Job], released: bool) -> None:
    """After the submission commits: send the job it released to its GPU, else wake the releaser."""
    stages.mark("submit.committed")
    if released:
        try:
            sending.send_all([(jobs[0].queue, jobs[0].id)], {jobs[0].id: jobs[0]})
            stages.mark("submit.sent")
            return
        except Exception:  # Redis away: the reaper sends again what the database says is released but lost
            log.exception("sending job %s released by its submission", jobs[0].id)
    nudge()
