"""A bundled job's own soft time limit: Celery's limits are per message, and a bundle's message carries
the sum of its jobs' limits (scheduler/jobs/sending.py), so each job in it is timed here.

SIGALRM raises Celery's SoftTimeLimitExceeded in the pool process's main thread, where the job runs, as
Celery's own soft limit does; like it, it cannot interrupt a CUDA call (the bundle's hard limit can).
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

from celery.exceptions import SoftTimeLimitExceeded


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
