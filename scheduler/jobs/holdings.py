"""What each GPU holds, as the router needs it: jobs, work, memory, the multi-GPU job holding it whole,
and when what it holds is expected to end (by work estimates) and sure to (by time limits)."""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass

from django.db.models import Q

from scheduler.jobs.models import HELD, Job, Status

# The worker's hard limit is the job's time limit plus this (release._send): the latest a job can end.
HARD_KILL_MARGIN_S = 15


@dataclass
class Holding:
    jobs: int = 0
    work: float = 0.0
    memory: int = 0
    gang_job: int = 0
    free_at: float = 0.0
    free_by: float = 0.0


FIELDS = ("id", "queue", "status", "started_at", "queued_at", "work_estimate", "memory_estimate", "time_limit", "gang")


def held_rows(queues: list[str]) -> list[dict]:
    """The jobs held by these GPUs (as leader or as a multi-GPU job's other GPUs), oldest release first."""
    held = Job.objects.filter(status__in=HELD).filter(Q(queue__in=queues) | Q(gpus__gt=1))
    return list(held.order_by("queued_at", "id").values(*FIELDS))


def holdings(rows: list[dict], concurrency: int, now: float | None = None) -> dict[str, Holding]:
    """queue -> Holding, from `held_rows`: jobs on one GPU run one after another (concurrency 1) or side by
    side; a multi-GPU job holds each of its GPUs whole."""
    now = time.time() if now is None else now
    out: dict[str, Holding] = defaultdict(Holding)
    for row in rows:
        members = [m["queue"] for m in row["gang"]] or [row["queue"]]
        for queue in members:
            _add(out[queue], row, now, concurrency, whole=len(members) > 1)
    return out


def _add(h: Holding, row: dict, now: float, concurrency: int, whole: bool) -> None:
    limit = row["time_limit"] + HARD_KILL_MARGIN_S
    if row["status"] == Status.RUNNING and row["started_at"]:
        begun = row["started_at"].timestamp()
        expected, latest = max(now, begun + row["work_estimate"]), begun + limit
    elif concurrency > 1 or whole:
        expected, latest = now + row["work_estimate"], now + limit
    else:  # waits in the GPU's queue behind what it already holds
        expected = max(now, h.free_at) + row["work_estimate"]
        latest = max(now, h.free_by) + limit
    h.jobs += 1
    h.work += row["work_estimate"]
    h.memory += row["memory_estimate"]
    h.free_at, h.free_by = max(h.free_at, expected), max(h.free_by, latest)
    if whole:
        h.gang_job = row["id"]
