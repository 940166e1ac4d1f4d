"""The local runner of `run` jobs: the command as a process of the user who started the system
(task-spooler's model, for `make run` on one's own machine). Never used where MULTI_USER is set.

The process gets its own session, so a time limit or a cancel ends it and everything it started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from gpu_tasks.container import command_words
from scheduler.jobs.joblog import LogWriter, pump
from workers.containers import ContainerFailed
from workers.persist import persist

POLL_SECONDS = 0.25
GRACE_SECONDS = 3.0  # between SIGTERM and SIGKILL, so a training loop may save what it has
PASSED_ON = ("HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TERM", "TMPDIR", "TZ")


def environment(extra: dict[str, str]) -> dict[str, str]:
    """A small environment, not the worker's (which holds the database URL and the secret key), with the
    worker's own Python first on PATH: `python` there has NumPy, and CuPy where it is installed."""
    env = {k: os.environ[k] for k in PASSED_ON if k in os.environ}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "/usr/bin:/bin")])
    return env | extra


def run(job, work: Path, env: dict[str, str], writer: LogWriter, still_ours: Callable[[], bool]) -> tuple[int, bool]:
    """Run the job's command in `work` to its end; (exit code, False: no engine reports OOM kills here).
    A negative code is the signal that killed it."""
    argv = command_words(job.params["command"])
    try:
        proc = subprocess.Popen(
            argv, cwd=work, env=environment(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
        )
    except OSError as exc:  # no such program, not executable
        raise ContainerFailed(f"cannot start {argv[0]!r}: {exc.strerror}", "exit") from None
    out, err = proc.stdout, proc.stderr
    assert out is not None and err is not None  # both are pipes: PIPE above
    readers = [
        pump(writer, "stdout", lambda: iter(lambda: out.read1(65536), b"")),  # type: ignore[attr-defined]
        pump(writer, "stderr", lambda: iter(lambda: err.read1(65536), b"")),  # type: ignore[attr-defined]
    ]
    try:
        _wait(proc, job, writer, still_ours)
    finally:
        _stop(proc)
        for reader in readers:
            reader.join(timeout=5)
    return proc.returncode, False


def _wait(proc: subprocess.Popen, job, writer: LogWriter, still_ours: Callable[[], bool]) -> None:
    deadline = time.monotonic() + job.time_limit
    checked = time.monotonic()
    while proc.poll() is None:
        persist(writer.flush)  # a database blip must not lose the lines nor fail the job
        if time.monotonic() > deadline:
            raise ContainerFailed(
                f"timed out: over its time limit of {job.time_limit} s; the process was stopped", "timeout"
            )
        if time.monotonic() - checked > 1.0:
            checked = time.monotonic()
            if not still_ours():
                raise ContainerFailed("stopped: the job was cancelled", "cancelled")
        time.sleep(POLL_SECONDS)


def _stop(proc: subprocess.Popen) -> None:
    """End the process's whole session: SIGTERM, then SIGKILL after a grace period."""
    for sig, grace in ((signal.SIGTERM, GRACE_SECONDS), (signal.SIGKILL, 10.0)):
        if proc.poll() is not None:
            break
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    try:  # children it left behind in its session
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
