"""When waiting jobs are expected to start (Slurm's `squeue --start`), and which GPUs are reserved.

Computed once a round by the releaser loop from the work estimates and the time limits of what the GPUs
hold (scheduler/fleet/reservation.py), kept in Redis for a few rounds, read by the API, the pages and the CLI.
(`keys.FORECAST`: at, jobs {id: {position, starts_at, queues}}, reservation, labels).
"""

from __future__ import annotations

import json
import time

from django.conf import settings

from scheduler.dispatch import keys
from scheduler.dispatch.connections import redis_client
from scheduler.fleet.reservation import Reservation, forecast, gpu_labels, reserve, starts_in
from scheduler.jobs.models import Job, Status
from scheduler.jobs.release import candidates, demand, gpu_states, live_routable

KEY = keys.FORECAST
TTL_S = 10
DEPTH = 200  # waiting jobs given a position and an estimate; the rest are "further back"


def update(r) -> None:
    """Estimate the start of the first DEPTH waiting jobs and store it (or forget it when none waits)."""
    snaps = live_routable(r)
    jobs = candidates(r, DEPTH) if snaps else []
    if not jobs:
        r.delete(KEY)
        return
    now = time.time()
    gpus = [g for g in gpu_states(snaps) if g.healthy and not g.draining]
    demands = [demand(j) for j in jobs]
    held = reserve(demands[0], gpus, now) if settings.GPU_RESERVATIONS else None
    payload = {
        "at": now,
        "jobs": {str(job_id): f.__dict__ for job_id, f in forecast(demands, gpus, now).items()},
        "reservation": held.__dict__ if held else None,
        "labels": {s.queue: f"{s.host}:{s.index}" for s in snaps if s.index >= 0},
    }
    r.set(KEY, json.dumps(payload), ex=TTL_S)


def stored(r=None) -> dict:
    raw = (r or redis_client()).get(KEY)
    return json.loads(raw) if raw else {}


def of(job: Job) -> dict | None:
    """A waiting job's position in release order and its estimated start, with a sentence saying so."""
    if job.status != Status.WAITING:
        return None
    data = stored()
    entry = data.get("jobs", {}).get(str(job.id))
    if entry is None:
        return {"position": None, "starts_at": None, "gpus": [], "text": _unknown(job, data)}
    now, labels, held = time.time(), data["labels"], data.get("reservation") or {}
    gpus = gpu_labels(entry["queues"], labels)
    if held.get("job_id") == job.id:
        text = Reservation(**held).describe(now, labels)
    else:
        text = f"position {entry['position']}; expected to start {starts_in(entry['starts_at'] - now)} on {gpus}"
    return {"position": entry["position"], "starts_at": entry["starts_at"], "gpus": entry["queues"], "text": text}


def _unknown(job: Job, data: dict) -> str:
    if not data:
        return "no estimate yet (the releaser has not run, or no GPU can take it now)"
    return f"further back than the first {DEPTH} waiting jobs, or blocked: {job.wait_reason}"


def reserved_queues(r=None) -> dict[str, int]:
    """queue -> the job its GPU is reserved for."""
    held = stored(r).get("reservation") or {}
    return {q: held["job_id"] for q in held.get("queues", [])}
