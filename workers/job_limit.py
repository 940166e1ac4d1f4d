"""Each job's own time limits, kept in the pool process that runs it: a Celery message may run several
jobs (a bundle, or the jobs its worker claims after it: workers/tasks.py), so it carries no limits.

The soft limit: SIGALRM raises Celery's SoftTimeLimitExceeded in the pool process's main thread, where
the job runs, as Celery's own soft limit did; like it, it cannot interrupt a CUDA call.
The hard limit, HARD_KILL_MARGIN_S later: a watchdog thread records the job as timed out (`on_hard`) and
SIGKILLs the process, as Celery's hard limit did; the worker starts a clean pool process, and the
message's redelivery finds the job ended.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from celery.exceptions import SoftTimeLimitExceeded

from scheduler.jobs.holdings import HARD_KILL_MARGIN_S

log = logging.getLogger(__name__)

_cond = threading.Condition()
_armed: tuple[float, Callable[[], object]] | None = None  # (monotonic deadline, on_hard) of the job running
_watchdog_pid = 0


@contextmanager
def limits(seconds: float, on_hard: Callable[[], object], margin: float = HARD_KILL_MARGIN_S) -> Iterator[None]:
    """The soft limit after `seconds`, the hard one `margin` later."""
    with soft_limit(seconds):
        _arm(time.monotonic() + seconds + margin, on_hard)
        try:
            yield
        finally:
            _arm(None, None)


@contextmanager
def soft_limit(seconds: float) -> Iterator[None]:
    def expired(*_) -> None:
        raise SoftTimeLimitExceeded(f"over its time limit of {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _arm(deadline: float | None, on_hard: Callable[[], object] | None) -> None:
    global _armed, _watchdog_pid
    with _cond:
        if deadline is not None and _watchdog_pid != os.getpid():  # a forked pool process starts its own
            _watchdog_pid = os.getpid()
            threading.Thread(target=_watch, name="hard-limit", daemon=True).start()
        _armed = None if deadline is None or on_hard is None else (deadline, on_hard)
        _cond.notify()


def _watch() -> None:
    with _cond:  # held while the job is recorded: the job cannot disarm its limit and go on meanwhile
        while True:
            if _armed is None:
                _cond.wait()
                continue
            deadline, on_hard = _armed
            left = deadline - time.monotonic()
            if left > 0:
                _cond.wait(left)
                continue
            log.error("a job ran past its hard time limit: recording it as timed out and stopping this process")
            try:
                on_hard()
            except Exception:  # the database away: the lease lapses and the reaper fails the job instead
                log.exception("could not record the timed-out job")
            finally:
                os.kill(os.getpid(), signal.SIGKILL)
