"""The fleet in Redis: live GPU snapshots, every GPU ever seen, short histories, drain and health flags.

All of this module's Redis keys are built here:

    gpuq:gpu:<uuid>     string, the live snapshot (JSON), expires after the publisher's TTL
    gpuq:gpus           hash uuid -> static facts (JSON: uuid, name, host, queue, memory_total, kind), no TTL
    gpuq:hist:<uuid>    list of history points (JSON: t, memory_used, utilization, temperature), capped
    gpuq:draining       hash uuid -> reason, set by staff
    gpuq:unhealthy      hash uuid -> reason, set by the task code when a GPU keeps failing jobs
"""

from __future__ import annotations

import json
from typing import Any

from workers.gpu import as_text
from workers.router import GpuState

PREFIX = "gpuq:"
KNOWN = f"{PREFIX}gpus"
DRAINING = f"{PREFIX}draining"
UNHEALTHY = f"{PREFIX}unhealthy"
HISTORY_POINTS = 600  # ten minutes at one snapshot a second: enough for the GPU page's charts
STATIC_FIELDS = ("uuid", "name", "host", "queue", "memory_total", "kind")
HISTORY_FIELDS = ("memory_used", "utilization", "temperature")

Redis = Any  # a redis.Redis client, with or without decode_responses


def live_key(uuid: str) -> str:
    return f"{PREFIX}gpu:{uuid}"


def history_key(uuid: str) -> str:
    return f"{PREFIX}hist:{uuid}"


def publish(r: Redis, snap: dict, ttl: float) -> None:
    """Store one snapshot for `ttl` seconds, remember the GPU, and append a history point."""
    uuid = snap["uuid"]
    point = {"t": snap.get("last_seen"), **{k: snap.get(k) for k in HISTORY_FIELDS}}
    pipe = r.pipeline(transaction=False)
    pipe.set(live_key(uuid), json.dumps(snap), px=max(1, round(ttl * 1000)))
    pipe.hset(KNOWN, uuid, json.dumps({k: snap.get(k) for k in STATIC_FIELDS}))
    pipe.rpush(history_key(uuid), json.dumps(point))
    pipe.ltrim(history_key(uuid), -HISTORY_POINTS, -1)
    pipe.execute()


def known_gpus(r: Redis) -> list[dict]:
    """Static facts of every GPU the fleet has seen, live or not, by host then queue."""
    return _ordered(json.loads(raw) for raw in r.hgetall(KNOWN).values())


def live_snapshots(r: Redis) -> list[dict]:
    """The snapshots of GPUs whose worker published within its TTL, by host then queue."""
    uuids = [as_text(u) for u in r.hkeys(KNOWN)]
    if not uuids:
        return []
    return _ordered(json.loads(raw) for raw in r.mget([live_key(u) for u in uuids]) if raw is not None)


def _ordered(gpus: Any) -> list[dict]:
    return sorted(gpus, key=lambda g: (g.get("host") or "", g.get("queue") or "", g["uuid"]))


def history(r: Redis, uuid: str) -> list[dict]:
    """The GPU's recent points, oldest first."""
    return [json.loads(raw) for raw in r.lrange(history_key(uuid), 0, -1)]


def largest_gpu_memory(r: Redis) -> int | None:
    """Total memory of the largest GPU ever seen (None: none seen yet), for admission."""
    return max((g.get("memory_total") or 0 for g in known_gpus(r)), default=None)


def placeable(r: Redis) -> list[tuple[str, int]]:
    """(host, memory_total) of every GPU seen that is neither draining nor unhealthy, for admission."""
    out = set(draining(r)) | set(unhealthy(r))
    sick = {s["uuid"] for s in live_snapshots(r) if not s.get("healthy", True)}
    return [(g.get("host") or "", g.get("memory_total") or 0) for g in known_gpus(r) if g["uuid"] not in out | sick]


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
    return {as_text(k): as_text(v) for k, v in r.hgetall(key).items()}


def to_gpu_state(
    snap: dict,
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
        queue=snap["queue"],
        uuid=snap["uuid"],
        host=snap["host"],
        memory_total=int(snap["memory_total"]),
        memory_usable=int(snap["memory_usable"]),
        utilization=float(snap.get("utilization") or 0.0),
        healthy=bool(snap.get("healthy", True)),
        draining=bool(snap.get("draining")),
        last_seen=float(snap["last_seen"]),
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
