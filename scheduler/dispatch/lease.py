"""Reading an attempt's lease in Redis: whether the attempt that runs a job is still alive.

The database's `Job.lease` decides which attempt may record a result; this Redis key, renewed every
LEASE_RENEW seconds by the attempt's worker (workers/heartbeat.py), tells the releaser whether that
attempt still runs. A worker killed mid-job stops renewing it, the key expires after LEASE_TTL, and the
job goes back to waiting.
"""

from __future__ import annotations

import json

import redis

from scheduler.dispatch import keys


def holder(r: redis.Redis, job_id: int) -> dict | None:
    raw = r.get(keys.lease(job_id))
    return json.loads(raw) if raw else None


# A job claimed early (workers/early_claim.py): its worker and a cancel race on this key, each setting
# its state and reading the one before; whichever comes first wins.
CLAIMED, BEGUN, CANCELLED = "claimed", "begun", "cancelled"
EARLY_TTL_S = 7 * 24 * 3600  # outlives any wait for the job before it; its worker deletes it once recorded


def mark_early(r: redis.Redis, job_id: int, state: str) -> str | None:
    """Set the early key's state; the state it had (None: none yet)."""
    was = r.set(keys.early(job_id), state, ex=EARLY_TTL_S, get=True)
    return was.decode() if isinstance(was, bytes) else str(was) if was else None
