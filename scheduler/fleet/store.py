"""The fleet in Redis: live GPU snapshots, every GPU ever seen, histories, drain and health flags.

The keys are named in scheduler/dispatch/keys.py. A GPU's static facts are STATIC_FIELDS of its
snapshot; a history point is its time `t` and HISTORY_FIELDS, one a snapshot for the last minutes;
the hours behind them are kept as minute points (scheduler/fleet/rollup.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from scheduler.dispatch import keys
from scheduler.dispatch.connections import as_text
from scheduler.fleet import rollup
from scheduler.fleet.rollup import HISTORY_FIELDS
from scheduler.fleet.router import GpuState
from scheduler.fleet.snapshot import Snapshot

KNOWN = keys.KNOWN_GPUS
DRAINING = keys.DRAINING
UNHEALTHY = keys.UNHEALTHY
HISTORY_POINTS = 600  # ten minutes at one snapshot a second: enough for the GPU page's charts
POINTS_READ_BACK = 240  # a minute's points at up to four snapshots a second, and the next one's first
STATIC_FIELDS = ("uuid", "name", "host", "queue", "memory_total", "kind")

Redis = Any  # a redis.Redis client, with or without decode_responses


def publish(r: Redis, snap: Snapshot, ttl: float) -> None:
    """Store one snapshot for `ttl` seconds, remember the GPU, and append a history point; the first
    point of a new minute folds the minute before into the GPU's minute points."""
    uuid, data = snap.uuid, snap.to_dict()
    point = {"t": snap.last_seen, **{k: data[k] for k in HISTORY_FIELDS}}
    pipe = r.pipeline(transaction=False)
    pipe.set(keys.live_gpu(uuid), json.dumps(data), px=max(1, round(ttl * 1000)))
    pipe.hset(KNOWN, uuid, json.dumps({k: data[k] for k in STATIC_FIELDS}))
    pipe.rpush(keys.gpu_history(uuid), json.dumps(point))
    pipe.lindex(keys.gpu_history(uuid), -2)
    pipe.ltrim(keys.gpu_history(uuid), -HISTORY_POINTS, -1)
    before = pipe.execute()[3]
    if before is not None and rollup.minute(json.loads(before)["t"]) < rollup.minute(point["t"]):
        _fold_minute(r, uuid, rollup.minute(json.loads(before)["t"]))


def _fold_minute(r: Redis, uuid: str, start: float) -> None:
    # The minute's one-second points are still in the short history (it keeps ten minutes at the default
    # TELEMETRY_INTERVAL), so the fold needs no state in the worker and survives its restart. Read from
    # the end: the minute that just ended is the last but one there.
    recent = [json.loads(raw) for raw in r.lrange(keys.gpu_history(uuid), -POINTS_READ_BACK, -1)]
    points = [p for p in recent if rollup.minute(p["t"]) == start]
    pipe = r.pipeline(transaction=False)
    pipe.rpush(keys.gpu_minutes(uuid), json.dumps(rollup.fold(points)))
    pipe.ltrim(keys.gpu_minutes(uuid), -minute_points_kept(), -1)
    pipe.execute()


def minute_points_kept() -> int:
    """How many minute points a GPU keeps: TELEMETRY_HISTORY_HOURS of them."""
    return max(1, round(settings.TELEMETRY_HISTORY_HOURS * 3600 / rollup.STEP))


def known_gpus(r: Redis) -> list[dict]:
    """Static facts of every GPU the fleet has seen, live or not, by host then queue."""
    return _ordered(json.loads(raw) for raw in r.hgetall(KNOWN).values())


def live_snapshots(r: Redis) -> list[Snapshot]:
    """The snapshots of GPUs whose worker published within its TTL, by host then queue."""
    return _live(r, r.hkeys(KNOWN))


@dataclass(frozen=True)
class Fleet:
    """What a submission reads of the fleet: every GPU ever seen (known_gpus), the live snapshots,
    and staff's drain and health flags (uuid -> reason)."""

    known: list[dict]
    live: list[Snapshot]
    draining: dict[str, str]
    unhealthy: dict[str, str]


def read(r: Redis) -> Fleet:
    """The whole Fleet, in two round trips."""
    with r.pipeline(transaction=False) as pipe:
        then = read_on(r, pipe)
        return then(pipe.execute())


def read_on(r: Redis, pipe) -> Callable[[list], Fleet]:
    """`read`, its first round trip queued on the caller's pipeline (a submission's rate check rides
    along); call what it returns with that pipeline's results."""
    at = len(pipe)
    pipe.hgetall(KNOWN)
    pipe.hgetall(DRAINING)
    pipe.hgetall(UNHEALTHY)

    def then(results: list) -> Fleet:
        known, drained, sick = results[at : at + 3]
        gpus = _ordered(json.loads(raw) for raw in known.values())
        return Fleet(gpus, _live(r, list(known)), _as_flags(drained), _as_flags(sick))

    return then


def _live(r: Redis, uuids: list) -> list[Snapshot]:
    if not uuids:
        return []
    raws = r.mget([keys.live_gpu(as_text(u)) for u in uuids])
    return sorted((Snapshot.from_json(raw) for raw in raws if raw is not None), key=lambda s: (s.host, s.queue, s.uuid))


def _ordered(gpus: Any) -> list[dict]:
    return sorted(gpus, key=lambda g: (g.get("host") or "", g.get("queue") or "", g["uuid"]))


def history(r: Redis, uuid: str) -> list[dict]:
    """The GPU's recent points, oldest first."""
    return [json.loads(raw) for raw in r.lrange(keys.gpu_history(uuid), 0, -1)]


def minutes(r: Redis, uuid: str, last: int = 0) -> list[dict]:
    """The GPU's minute points over the last TELEMETRY_HISTORY_HOURS (or only the `last` of them), oldest first."""
    return [json.loads(raw) for raw in r.lrange(keys.gpu_minutes(uuid), -last if last else 0, -1)]


def largest_gpu_memory(known: list[dict]) -> int | None:
    """Total memory of the largest GPU ever seen (None: none seen yet), for admission; `known`: what
    known_gpus read."""
    return max((g.get("memory_total") or 0 for g in known), default=None)


def placeable(fleet: Fleet) -> list[tuple[str, int]]:
    """(host, memory_total) of every GPU seen that is neither draining nor unhealthy, for admission."""
    out = set(fleet.draining) | set(fleet.unhealthy) | {s.uuid for s in fleet.live if not s.healthy}
    return [(g.get("host") or "", g.get("memory_total") or 0) for g in fleet.known if g["uuid"] not in out]


def set_draining(r: Redis, uuid: str, draining: bool, reason: str = "") -> None:
    """Take a GPU out of routing (its worker finishes what it holds), or bring it back."""
    _set_flag(r, DRAINING, uuid, draining, reason or "drained by staff")


def draining(r: Redis) -> dict[str, str]:
    """uuid -> reason for every draining GPU."""
    return _flags(r, DRAINING)


def mark_unhealthy(r: Redis, uuid: str, reason: str) -> None:
    """Override NVML's verdict: the GPU is unhealthy until staff clear it."""
    _set_flag(r, UNHEALTHY, uuid, True, reason)


def clear_unhealthy(r: Redis, uuid: str) -> None:
    _set_flag(r, UNHEALTHY, uuid, False, "")


def unhealthy(r: Redis) -> dict[str, str]:
    """uuid -> reason for every GPU marked unhealthy."""
    return _flags(r, UNHEALTHY)


def _set_flag(r: Redis, key: str, uuid: str, on: bool, reason: str) -> None:
    if on:
        r.hset(key, uuid, reason)
    else:
        r.hdel(key, uuid)


def _flags(r: Redis, key: str) -> dict[str, str]:
    return _as_flags(r.hgetall(key))


def _as_flags(found: dict) -> dict[str, str]:
    return {as_text(k): as_text(v) for k, v in found.items()}


def to_gpu_state(
    snap: Snapshot,
    *,
    slots: int,
    concurrency: int,
    held_jobs: int,
    held_work: float,
    held_memory: int,
    feed_seconds: float = 0.0,
    max_held: int = 0,
    free_at: float = 0.0,
    free_by: float = 0.0,
    gang_job: int = 0,
) -> GpuState:
    """The router's view of one snapshot plus what the database says the GPU holds."""
    return GpuState(
        queue=snap.queue,
        uuid=snap.uuid,
        host=snap.host,
        memory_total=int(snap.memory_total),
        memory_usable=int(snap.memory_usable),
        utilization=float(snap.utilization or 0.0),
        healthy=snap.healthy,
        draining=snap.draining,
        last_seen=float(snap.last_seen),
        slots=slots,
        concurrency=concurrency,
        held_jobs=held_jobs,
        held_work=float(held_work or 0.0),
        held_memory=int(held_memory or 0),
        feed_seconds=feed_seconds,
        max_held=max_held,
        free_at=free_at,
        free_by=free_by,
        gang_job=gang_job,
    )
