"""Counting database work per process, for the benchmark: statements and explicit commits, exact.

On only where COUNT_QUERIES is set (benchmarks/stack.py sets it): each process adds its counts to one
Redis hash (keys.QUERY_COUNTS, fields `<role>:statements` and `<role>:commits`) a few times a second,
so the benchmark reads the work of the web, releaser and worker processes per job from before/after
deltas. A statement is one round trip; an explicit transaction adds two (BEGIN and COMMIT, each its
own round trip with psycopg); a statement outside one is committed by itself.
"""

from __future__ import annotations

import os
import sys
import threading
from collections import Counter

from django.db.backends.signals import connection_created

from scheduler.dispatch import keys
from scheduler.dispatch.connections import redis_client

FLUSH_EVERY_S = 0.1
_counts: Counter[str] = Counter()
_lock = threading.Lock()
_flusher_pid = 0  # the flushing thread is per process: a forked pool child starts its own


def role() -> str:
    """Which of the system's processes this is, from its command line."""
    line = " ".join(sys.argv)
    for name, marker in (("web", "gunicorn"), ("releaser", "releaser"), ("worker", "workers"), ("worker", "celery")):
        if marker in line:
            return name
    return "other"


def install() -> None:
    """Count every statement and commit of every database connection this process opens."""
    connection_created.connect(_on_connection, weak=False)


def _add(what: str) -> None:
    global _flusher_pid
    with _lock:
        if _flusher_pid != os.getpid():
            _flusher_pid = os.getpid()
            _counts.clear()  # a parent's counts, copied by fork, are the parent's to flush
            threading.Thread(target=_flush_forever, name="querycount", daemon=True).start()
        _counts[what] += 1


def _on_connection(sender, connection, **kwargs) -> None:
    if getattr(connection, "_gpuq_counted", False):
        return
    connection._gpuq_counted = True
    connection.execute_wrappers.append(_count_statement)
    commit = connection._commit

    def counted_commit():
        _add("commits")
        return commit()

    connection._commit = counted_commit


def _count_statement(execute, sql, params, many, context):
    _add("statements")
    return execute(sql, params, many, context)


def _flush_forever() -> None:
    prefix = role()
    stop = threading.Event()
    while not stop.wait(FLUSH_EVERY_S):
        with _lock:
            pending = dict(_counts)
            _counts.clear()
        if not pending:
            continue
        try:
            with redis_client().pipeline(transaction=False) as pipe:
                for what, n in pending.items():
                    pipe.hincrby(keys.QUERY_COUNTS, f"{prefix}:{what}", n)
                pipe.execute()
        except Exception:  # Redis away: put the counts back for the next flush
            with _lock:
                _counts.update(pending)
