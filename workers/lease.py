"""An attempt's lease in Redis: proof, renewed every few seconds, that the attempt is alive.

The database's `Job.lease` decides which attempt may record a result; this Redis key tells the
releaser whether that attempt still runs. A worker killed mid-job stops renewing it, the key
expires, and the job goes back to waiting.
"""

from __future__ import annotations

import json
import os
import threading

import redis

TTL_S = 10
RENEW_S = 2


def key(job_id: int) -> str:
    return f"gpuq:lease:{job_id}"


def holder(r: redis.Redis, job_id: int) -> dict | None:
    raw = r.get(key(job_id))
    return json.loads(raw) if raw else None


def alive_on_this_host(entry: dict, host: str) -> bool:
    """Whether the attempt described by a lease entry is a live process here (for redelivery)."""
    if entry.get("host") != host:
        return True  # another host's attempt: trust its lease until it expires
    try:
        os.kill(int(entry["pid"]), 0)
    except (ProcessLookupError, ValueError):
        return False
    except PermissionError:
        return True
    return True


class Heartbeat:
    """Keeps an attempt's lease alive from a thread while the job runs."""

    def __init__(self, r: redis.Redis, job_id: int, token: str, host: str):
        self.r, self.job_id = r, job_id
        self.value = json.dumps({"token": token, "host": host, "pid": os.getpid()})
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name=f"lease-{job_id}")

    def __enter__(self) -> Heartbeat:
        self.r.set(key(self.job_id), self.value, ex=TTL_S)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        self.thread.join(timeout=1)
        try:
            self.r.delete(key(self.job_id))
        except redis.RedisError:
            pass  # it expires by itself

    def _run(self) -> None:
        while not self.stopped.wait(RENEW_S):
            try:
                self.r.set(key(self.job_id), self.value, ex=TTL_S)
            except redis.RedisError:
                pass  # Redis restarting: renew on the next beat
