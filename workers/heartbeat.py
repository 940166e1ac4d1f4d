"""Keeping an attempt's lease alive in Redis while its job runs (the reads are scheduler/dispatch/lease.py)."""

from __future__ import annotations

import json
import logging
import os
import threading
import time

import redis
from django.conf import settings

from scheduler.dispatch import keys

log = logging.getLogger(__name__)

# Every key in KEYS set to ARGV[1] for ARGV[2] seconds: one command for an attempt's leases, where a
# pipeline of a SET per job cost 2-6 ms of Python here for a bundle of 64, all of it GPU idle.
SET_ALL = "for _, key in ipairs(KEYS) do redis.call('SET', key, ARGV[1], 'EX', ARGV[2]) end"


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
    """Keeps the leases of an attempt's jobs alive while they run (several where they were claimed
    together), each set and deleted in one round trip. One renewer thread per process serves every
    attempt in it: starting a thread per job cost more than a millisecond job. `task` names the Celery
    task that runs them, for a cancel to stop (scheduler/jobs/control.py)."""

    _active: dict[int, tuple[redis.Redis, str]] = {}
    _lock = threading.Lock()
    _renewer: threading.Thread | None = None
    _renewer_pid = 0

    def __init__(self, r: redis.Redis, job_ids: list[int], token: str, host: str, task: str = ""):
        self.r, self.job_ids = r, job_ids
        self.value = json.dumps({"token": token, "host": host, "pid": os.getpid(), "task": task})

    def __enter__(self) -> Heartbeat:
        with self.r.pipeline(transaction=False) as pipe:
            self.start(pipe)
            pipe.execute()
        return self

    def start(self, pipe) -> Heartbeat:
        """Set the leases on `pipe` (the caller executes it; a lost write is made by the next renewal)."""
        _set_all(pipe, self.job_ids, self.value)
        with Heartbeat._lock:
            Heartbeat._active.update({job_id: (self.r, self.value) for job_id in self.job_ids})
            Heartbeat._ensure_renewer()
        return self

    def start_now(self, pipe) -> Heartbeat:
        """`start`, and execute `pipe` (with what the caller queued on it) at once; a write Redis loses
        is made by the next renewal, well within the reaper's grace."""
        self.start(pipe)
        try:
            pipe.execute()
        except redis.RedisError as exc:
            log.warning("could not set the leases of jobs %s: %s", self.job_ids, exc)
        return self

    def __exit__(self, *exc) -> None:
        try:
            with self.r.pipeline(transaction=False) as pipe:
                self.end(pipe)
                pipe.execute()
        except redis.RedisError:
            pass  # they expire by themselves

    def end(self, pipe) -> None:
        """Stop renewing, and delete the leases on `pipe`."""
        with Heartbeat._lock:
            for job_id in self.job_ids:
                Heartbeat._active.pop(job_id, None)
        pipe.delete(*(keys.lease(job_id) for job_id in self.job_ids))

    @classmethod
    def _ensure_renewer(cls) -> None:
        # A forked pool process inherits the class but not the thread: start one per process.
        if cls._renewer is None or cls._renewer_pid != os.getpid() or not cls._renewer.is_alive():
            cls._renewer_pid = os.getpid()
            cls._renewer = threading.Thread(target=cls._renew_forever, daemon=True, name="lease-renewer")
            cls._renewer.start()

    @classmethod
    def _renew_forever(cls) -> None:
        while True:
            time.sleep(settings.LEASE_RENEW)
            attempts: dict[tuple[redis.Redis, str], list[int]] = {}
            with cls._lock:
                for job_id, (r, value) in cls._active.items():
                    attempts.setdefault((r, value), []).append(job_id)
            for (r, value), job_ids in attempts.items():
                try:
                    # A lease that has just ended may be set once more here; it names a finished
                    # attempt, which the reaper ignores, and expires within LEASE_TTL.
                    _set_all(r, job_ids, value)
                except redis.RedisError:
                    pass  # Redis restarting: renew on the next beat


def _set_all(client, job_ids: list[int], value: str) -> None:
    """The leases of `job_ids` set to `value`, in one command on `client` (a pipeline, or a connection)."""
    client.eval(SET_ALL, len(job_ids), *(keys.lease(job_id) for job_id in job_ids), value, settings.LEASE_TTL)
