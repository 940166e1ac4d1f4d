"""A worker stands in for a releaser that stopped making rounds (hung, SIGSTOPped, dead).

The releaser loop renews its heartbeat (`release.ALIVE_KEY`) every round. Each worker looks at it
once an interval; while it is missing, the worker runs a release round itself. Rounds are
serialised by the release lock, so any number of stand-ins and a releaser that comes back cannot
release a job twice; they only cost a round each.
"""

from __future__ import annotations

import logging
import threading

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
    close_old_connections()
    released = release()
    if released:
        log.warning("the releaser's heartbeat is stale: released %d jobs in its place", released)
    return released


class StandIn(threading.Thread):
    def __init__(self, interval: float) -> None:
        super().__init__(name="gpuq-release-stand-in", daemon=True)
        self.interval = interval
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                stand_in_once()
            except Exception:  # Redis or the database away: the next interval tries again
                log.exception("stand-in release round failed")

    def stop(self) -> None:
        self.stopped.set()
