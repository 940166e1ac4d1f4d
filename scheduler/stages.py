"""Timestamps where a lone job's dispatch passes, for `python -m benchmarks.stage_trace`: where the time
from a POST to the job running, and from its end to the waiting client's answer, goes, measured in the
processes themselves (the job's events give only the stages between rows).

Off unless STAGE_TRACE names a file: `mark` then appends "<unix time> <pid> <label>" to it, one line a
call, from every process of the system (the web's, the worker's main and pool processes). The driver
sends one job at a time, so each mark belongs to the dispatch begun last. Labels, in path order:

    web.in / web.out           the WSGI server hands the request over / has it back (scheduler/wsgi.py)
    submit.view                the POST's view begins (after middleware, authentication, parsing)
    submit.admitted            the rate check and the fleet read (two Redis round trips)
    submit.allowance           the owner's allowance read under its row lock (BEGIN, one statement)
    submit.stored              the storing statement has run (the job queued on an idle GPU)
    submit.committed           its commit is done: the on-commit send begins
    submit.sent                the job's message is in Redis
    worker.received            Celery's consumer has the message (the worker's main process)
    worker.started             the task begins in the pool process
    worker.claimed             the claim is committed and the leases set: the job runs
    worker.ended               the job's own work has ended
    worker.recorded            its success is committed
    worker.told                its waiters are told (the Redis pipeline after the commit)
    wait.begun / wait.read     a waiter's read of the job begins / ends
    wait.answered              the answer is serialised
"""

from __future__ import annotations

import os
import threading
import time
from typing import TextIO

from django.conf import settings

_lock = threading.Lock()
_open: tuple[int, str, TextIO] | None = None  # (pid, path, file): a forked process opens its own


def mark(label: str) -> None:
    path = settings.STAGE_TRACE
    if not path:
        return
    line = f"{time.time():.6f} {os.getpid()} {label}\n"
    with _lock:
        global _open
        if _open is None or _open[:2] != (os.getpid(), path):
            _open = (os.getpid(), path, open(path, "a", buffering=1))  # noqa: SIM115 (kept open)
        _open[2].write(line)
