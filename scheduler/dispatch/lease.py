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
