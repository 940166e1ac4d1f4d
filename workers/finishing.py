"""A short job's success is recorded with the worker's next claim: one statement and one commit for
both, where a commit costs more than a no-op job (~4.6 ms of fsync on the CPU machine, BENCHMARKS.md).

Only while more jobs wait queued for this worker (the claim says so), so the next claim comes at
once; a lone job is recorded straight away. A flusher thread records a held success that no claim
took within FLUSH_AFTER_S (the next message was slow or lost). The attempt's lease stays alive in
Redis until its success is recorded; a process that dies meanwhile loses only the held outcome: the
job is still `running` in the database, its lease expires, and the reaper gives it to a new attempt
(at-least-once, never twice at the same time).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass

from celery.signals import worker_process_shutdown

from scheduler.jobs import lifecycle
from scheduler.jobs.release import nudge
from workers import heartbeat
from workers.persist import persist

log = logging.getLogger(__name__)
FLUSH_AFTER_S = 0.02


@dataclass
class Held:
    done: lifecycle.Done
    beat: heartbeat.Heartbeat
    since: float


_lock = threading.Condition()
_held: list[Held] = []  # at most one: the next claim or the flusher takes it
_flusher_pid = 0


def claim(job_id: int, host: str, queue: str, where: str) -> tuple[tuple | None, bool]:
    """Claim `job_id`, recording a held success in the same commit; (the claim, more queued)."""
    held = _take()
    try:
        claimed, recorded, more = persist(lifecycle.claim_next, held.done if held else None, job_id, host, queue, where)
    finally:
        if held:
            held.beat.__exit__(None, None, None)
    if held and recorded:
        nudge()
    return claimed, more


def hold(done: lifecycle.Done, beat: heartbeat.Heartbeat) -> None:
    """Keep a success (its lease still renewed by `beat`) for the next claim to record."""
    global _flusher_pid
    with _lock:
        if _flusher_pid != os.getpid():  # a forked pool process starts its own flusher
            _flusher_pid = os.getpid()
            threading.Thread(target=_flush_forever, name="finish-flusher", daemon=True).start()
        _held.append(Held(done, beat, time.monotonic()))
        _lock.notify()


def flush() -> None:
    """Record a held success now (no claim took it in time, or the process stops)."""
    held = _take()
    if held is None:
        return
    try:
        d = held.done
        recorded = persist(lifecycle.finish, d.job, d.lease, "succeeded", result=d.result, note=d.note, at=d.at)
    finally:
        held.beat.__exit__(None, None, None)
    if recorded:
        nudge()


def _take() -> Held | None:
    with _lock:
        return _held.pop() if _held else None


def _flush_forever() -> None:
    while True:
        with _lock:
            while not _held:
                _lock.wait()
            wait = _held[0].since + FLUSH_AFTER_S - time.monotonic()
        if wait > 0:
            time.sleep(wait)
            with _lock:
                if not _held or _held[0].since + FLUSH_AFTER_S > time.monotonic():
                    continue  # taken by a claim; a newer one has its own deadline
        try:
            flush()
        except Exception:  # the database away past persist's patience: the reaper re-runs the job
            log.exception("could not record a finished job")


@worker_process_shutdown.connect
def _on_shutdown(**_) -> None:
    flush()
