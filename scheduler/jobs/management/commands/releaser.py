"""The releaser loop: release waiting jobs to GPUs with room, and keep nothing stuck."""

import logging
import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections

from scheduler.jobs.reaper import Reaper
from scheduler.jobs.release import release

log = logging.getLogger(__name__)


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
            stop.wait(settings.RELEASER_INTERVAL)

    def round(self, reaper: Reaper) -> bool:
        """One unit of work; True when it moved any job."""
        close_old_connections()
        try:
            return bool(reaper.run() + release())
        except Exception:  # Redis or the database away for a moment: next round
            log.exception("releaser round failed")
            return False
