"""The pool process's one background thread: what follows a commit (the Redis pipeline between two jobs,
the record of a job begun early) and the early claim of the next job run there, in order, while the GPU
runs a job. One thread for the process's life: its database connection (Django's are per thread) and
the statements prepared on it are kept."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

_executor: tuple[int, ThreadPoolExecutor] | None = None


def submit(fn: Callable[..., Any], *args: Any) -> Future:
    """Run `fn(*args)` on this process's background thread (a forked pool process starts its own)."""
    global _executor
    if _executor is None or _executor[0] != os.getpid():
        _executor = os.getpid(), ThreadPoolExecutor(max_workers=1, thread_name_prefix="after-commit")
    return _executor[1].submit(fn, *args)


def drain(timeout: float = 30) -> None:
    """Wait until what was submitted before has run (the process is about to exit)."""
    if _executor is not None and _executor[0] == os.getpid():
        try:
            _executor[1].submit(lambda: None).result(timeout=timeout)
        except TimeoutError:
            pass  # a statement stuck past persist's patience: the reaper re-runs its jobs
