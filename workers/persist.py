"""Database writes from a worker survive a database that is away for a while."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings
from django.db import connection
from django.db.utils import InterfaceError, OperationalError

log = logging.getLogger(__name__)
T = TypeVar("T")


def persist(fn: Callable[..., T], *args, **kwargs) -> T:
    """Call fn, retrying with backoff while the database is unreachable (up to DB_RETRY_FOR seconds)."""
    deadline, delay = time.monotonic() + settings.DB_RETRY_FOR, 0.2
    while True:
        try:
            # No close_old_connections() here: it would add a health-check query to every write; a
            # connection the database dropped fails the first statement, and is replaced below.
            return fn(*args, **kwargs)
        except (OperationalError, InterfaceError) as exc:
            if time.monotonic() + delay > deadline:
                raise
            log.warning("database unreachable (%s); retrying in %.1f s", exc, delay)
            connection.close()
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
