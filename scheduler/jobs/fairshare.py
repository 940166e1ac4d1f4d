"""Fair share: each user's GPU time, decayed with a half-life (like Slurm's fair-share factor).

Among jobs of equal priority, the user with the least recent usage goes first, so one user's
10,000-job batch does not starve another user's single job.
"""

from __future__ import annotations

import heapq
import json
import time
from collections.abc import Iterable, Mapping, Sequence

import redis
from django.conf import settings

from scheduler.dispatch import keys

USAGE_KEY = keys.USAGE


def decayed(value: float, since: float, now: float) -> float:
    return value * 0.5 ** (max(0.0, now - since) / settings.FAIRSHARE_HALF_LIFE)


def usage(r: redis.Redis, user_ids: Iterable[int], now: float | None = None) -> dict[int, float]:
    """Decayed GPU seconds per user."""
    now = time.time() if now is None else now
    ids = list(user_ids)
    raw = r.hmget(USAGE_KEY, [str(i) for i in ids]) if ids else []
    result = {}
    for uid, item in zip(ids, raw, strict=True):
        value, since = json.loads(item) if item else (0.0, now)
        result[uid] = decayed(value, since, now)
    return result


# Read, decay and add inside Redis: one command on the caller's pipeline (no round trip of its own, a
# worker's finish sends it with the metrics), and two workers charging one user cannot lose an update.
CHARGE_LUA = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
local now, add, half = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local value = 0
if raw then
  local entry = cjson.decode(raw)
  value = entry[1] * 0.5 ^ (math.max(0, now - entry[2]) / half)
end
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode({value + add, now}))
"""


def charge(pipe, user_id: int, gpu_seconds: float, now: float | None = None) -> None:
    """Add a finished attempt's GPU time to its owner's decayed usage, on `pipe` (the caller executes it)."""
    now = time.time() if now is None else now
    pipe.eval(CHARGE_LUA, 1, USAGE_KEY, str(user_id), repr(now), repr(gpu_seconds), repr(settings.FAIRSHARE_HALF_LIFE))


def interleave(queues: Mapping[int, Sequence], usage_by_user: dict[int, float], key_priority, key_work) -> list:
    """Merge per-user queues (each already in the user's own order): highest priority first, then
    the user with the least usage; each pick charges its expected work to its user for this round."""
    heap: list[tuple[float, float, int, int]] = []
    for uid, jobs in queues.items():
        if jobs:
            heapq.heappush(heap, (-key_priority(jobs[0]), usage_by_user.get(uid, 0.0), uid, 0))
    order = []
    while heap:
        _, used, uid, i = heapq.heappop(heap)
        job = queues[uid][i]
        order.append(job)
        if i + 1 < len(queues[uid]):
            nxt = queues[uid][i + 1]
            heapq.heappush(heap, (-key_priority(nxt), used + max(key_work(job), 1e-3), uid, i + 1))
    return order
