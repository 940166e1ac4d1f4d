"""Nothing waits forever: jobs of dead GPUs, lost attempts and lost messages are noticed here.

Run every second by the releaser loop. Each fix is a conditional update, so two loops racing
move a job once.
"""

from __future__ import annotations

import time
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from scheduler.dispatch import lease
from scheduler.dispatch.connections import redis_client
from scheduler.fleet import store as fleet
from scheduler.jobs import lifecycle
from scheduler.jobs.models import HELD, Job, Status
from scheduler.jobs.release import resend


class Reaper:
    """Remembers since when each GPU queue has been silent, across rounds of the loop."""

    def __init__(self) -> None:
        self.silent_since: dict[str, float] = {}

    def run(self) -> int:
        r = redis_client()
        live = {s.queue for s in fleet.live_snapshots(r)}
        return (
            self.requeue_dead_gpus(live)
            + reap_lost_attempts(r)
            + resend_lost_messages(live)
            + fail_orphaned_dependents()
            + reroute_from_unhealthy(r)
        )

    def requeue_dead_gpus(self, live: set[str]) -> int:
        now, moved = time.time(), 0
        held = set(Job.objects.filter(status__in=HELD).values_list("queue", flat=True).distinct())
        for queue in held - live:
            since = self.silent_since.setdefault(queue, now)
            if now - since >= settings.DEAD_GPU_REQUEUE_AFTER:
                for job_id in Job.objects.filter(queue=queue, status__in=HELD).values_list("id", flat=True):
                    moved += lifecycle.requeue(job_id, f"GPU queue {queue} stopped publishing telemetry")
        for queue in live:
            self.silent_since.pop(queue, None)
        return moved


def reroute_from_unhealthy(r) -> int:
    """Jobs queued on a GPU marked unhealthy go back to waiting, to be routed to a healthy one; its
    message, when the worker takes it, no longer matches the row and is dropped by the claim."""
    sick = fleet.unhealthy(r)
    moved = 0
    for job_id, uuid in Job.objects.filter(status=Status.QUEUED, gpu_uuid__in=list(sick)).values_list("id", "gpu_uuid"):
        moved += lifecycle.requeue(job_id, f"GPU {uuid} is unhealthy: {sick[uuid]}")
    return moved


def reap_lost_attempts(r) -> int:
    """Running jobs whose attempt stopped renewing its lease: timed out, or lost with its process."""
    grace = timezone.now() - timedelta(seconds=settings.LEASE_TTL + 5)
    moved = 0
    for job in Job.objects.filter(status=Status.RUNNING, started_at__lt=grace):
        if lease.holder(r, job.id) is not None:
            continue
        elapsed = (timezone.now() - job.started_at).total_seconds()
        if elapsed >= job.time_limit:
            moved += lifecycle.fail_timed_out(job)
        else:
            moved += lifecycle.requeue(job.id, "its attempt stopped renewing its lease (worker lost)")
    return moved


def fail_orphaned_dependents() -> int:
    """Waiting jobs after one that ended without success (it ended while they were being stored, so
    `fail_dependents` did not see them): they can never run, so they fail, naming the dependency."""
    ended = (Status.FAILED, Status.CANCELLED)
    rows = Job.objects.filter(status=Status.WAITING, after__status__in=ended).values_list(
        "id", "after__id", "after__status"
    )
    failed = 0
    for job_id, dep_id, dep_status in rows:
        failed += lifecycle.fail_waiting(job_id, f"dependency failed: job {dep_id} is {dep_status}")
    return failed


def resend_lost_messages(live: set[str]) -> int:
    """Released jobs that nobody started for a while on a live, idle GPU: Redis may have lost the
    message (a restart without AOF); send it again: a duplicate is dropped by the claim."""
    stale = timezone.now() - timedelta(seconds=settings.RESEND_AFTER)
    busy = set(Job.objects.filter(status=Status.RUNNING).values_list("queue", flat=True))
    sent = 0
    for job in Job.objects.filter(status=Status.QUEUED, queued_at__lt=stale, queue__in=live - busy):
        if Job.objects.filter(id=job.id, status=Status.QUEUED, queued_at=job.queued_at).update(
            queued_at=timezone.now()
        ):
            resend(job)
            lifecycle.record(
                job.id, f"sent to {job.queue} again: not started for {settings.RESEND_AFTER:.0f} s on an idle GPU"
            )
            sent += 1
    return sent
