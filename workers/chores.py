"""What a worker does beside its jobs, each on its own thread: stand in for a hung releaser, sweep
containers left behind.

A worker stands in for a releaser that stopped making rounds (hung, SIGSTOPped, dead). The releaser
loop renews its heartbeat (`release.ALIVE_KEY`) every round; each worker looks at it once an interval,
and while it is missing runs a release round itself. Rounds are serialised by the release lock, so any
number of stand-ins and a releaser that comes back cannot release a job twice; they only cost a round.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from django.db import close_old_connections

from scheduler.dispatch.connections import redis_client
from scheduler.jobs.release import ALIVE_KEY, release

log = logging.getLogger(__name__)


def releaser_alive() -> bool:
    return bool(redis_client().exists(ALIVE_KEY))


def stand_in_once() -> int:
    """One look at the releaser's heartbeat; a release round when it is stale. Jobs released."""
    if releaser_alive():
        return 0
    released = release()
    if released:
        log.warning("the releaser's heartbeat is stale: released %d jobs in its place", released)
    return released


class Every(threading.Thread):
    """Calls `chore` every `interval` seconds (first at once) until stopped; a failure is logged."""

    def __init__(self, name: str, interval: float, chore: Callable[[], object]) -> None:
        super().__init__(name=f"gpuq-{name}", daemon=True)
        self.interval, self.chore = interval, chore
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                close_old_connections()
                self.chore()
            except Exception:  # Redis, the database or the engine away: the next interval tries again
                log.exception("%s failed", self.name)
            self.stopped.wait(self.interval)

    def stop(self) -> None:
        self.stopped.set()
