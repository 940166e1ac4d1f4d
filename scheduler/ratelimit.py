"""Token buckets in Redis: how fast one user (or one address) may submit jobs or try passwords.

A bucket holds up to N tokens and refills at N per period ("600/min"); an action costs what it
does (a batch of 500 jobs costs 500), not one per request. The check and the take are one Lua
script, so web processes racing on one bucket cannot overspend it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from scheduler.dispatch.connections import redis_client

PERIODS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600, "d": 86400}

# KEYS[1] the bucket; ARGV: capacity, refill per second, now, cost. Returns 0, or seconds to wait.
TAKE = """
local cap, rate, now, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local held = redis.call('HMGET', KEYS[1], 'tokens', 't')
local tokens = math.min(cap, (tonumber(held[1]) or cap) + math.max(0, now - (tonumber(held[2]) or now)) * rate)
if tokens < cost then return tostring((cost - tokens) / rate) end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens - cost), 't', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(cap / rate) + 1)
return '0'
"""


def parse(rate: str) -> tuple[int, int]:
    """`"600/min"` -> (600, 60): how many per how many seconds."""
    count, _, period = rate.partition("/")
    if not count.strip().isdigit() or period.strip() not in PERIODS or int(count) < 1:
        raise ValueError(f"rate {rate!r}: write N/s, N/min, N/hour or N/day")
    return int(count), PERIODS[period.strip()]


def take(name: str, rate: str, cost: int = 1) -> float:
    """Spend `cost` tokens of bucket `name`; 0 when allowed, else the seconds until it would be.
    A cost above the bucket's size waits for a full bucket rather than being refused for ever."""
    with redis_client().pipeline(transaction=False) as pipe:
        waited = take_on(pipe, name, rate, cost)
        return waited(pipe.execute())


def take_on(pipe, name: str, rate: str, cost: int = 1) -> Callable[[list], float]:
    """`take`, queued on the caller's pipeline; call what it returns with that pipeline's results."""
    capacity, period = parse(rate)
    at = len(pipe)
    pipe.eval(TAKE, 1, f"gpuq:rate:{name}", capacity, capacity / period, time.time(), min(cost, capacity))
    return lambda results: float(results[at])
