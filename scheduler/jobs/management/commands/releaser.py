"""The releaser loop: release waiting jobs to GPUs with room, and keep nothing stuck."""

import logging
import signal
import threading
import time

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections

from scheduler.dispatch.connections import redis_client
from scheduler.jobs import forecast, outputs
from scheduler.jobs.reaper import Reaper
from scheduler.jobs.release import release, wait_for_wake

log = logging.getLogger(__name__)
OUTPUTS_SWEEP_EVERY = 600.0  # seconds; outputs expire after days (OUTPUT_KEEP_DAYS), so this is plenty


class Command(BaseCommand):
    help = "Release waiting jobs to GPUs and re-route jobs of dead GPUs, every RELEASER_INTERVAL seconds."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--once", action="store_true", help="one round, then exit")

    def handle(self, *args, once: bool = False, **options) -> None:
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        reaper = Reaper()
        while not stop.is_set():
            self.round(reaper)
            if once:
                return
            started = time.monotonic()
            try:
                wait_for_wake(redis_client(), settings.RELEASER_INTERVAL)
            except Exception:  # Redis away: the round above logged it; pause and try again
                stop.wait(settings.RELEASER_INTERVAL)
            # Wakes from finished jobs come in bursts: one round every RELEASER_MIN_GAP serves them all
            # (each GPU still holds its ready job meanwhile, so none idles).
            stop.wait(max(0.0, settings.RELEASER_MIN_GAP - (time.monotonic() - started)))

    reaped_at = swept_at = float("-inf")

    def round(self, reaper: Reaper) -> bool:
        """One unit of work; True when it moved any job. The reaper's scans and the start estimates
        run once an interval, not on every wake by a finished job."""
        close_old_connections()
        try:
            reaped, scan = 0, time.monotonic() - self.reaped_at >= settings.RELEASER_INTERVAL
            if scan:
                self.reaped_at = time.monotonic()
                reaped = reaper.run()
            released = release()
            if scan:  # estimates of the waiting jobs' starts, after this round's placements
                forecast.update(redis_client())
            if time.monotonic() - self.swept_at >= OUTPUTS_SWEEP_EVERY:
                self.swept_at = time.monotonic()
                outputs.sweep()
            return bool(reaped + released)
        except Exception:  # Redis or the database away for a moment: next round
            log.exception("releaser round failed")
            return False
