"""The local runner of `run` jobs: the command as a process of the user who started the system
(task-spooler's model, for `make run` on one's own machine). Never used where MULTI_USER is set.

The process gets its own session, so a time limit or a cancel ends it and everything it started.
"""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
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

log = logging.getLogger(__name__)

POLL_SECONDS = 0.25
SESSION_FILE = "session"
GRACE_SECONDS = 3.0  # between SIGTERM and SIGKILL, so a training loop may save what it has
PR_SET_PDEATHSIG = 1  # linux/prctl.h
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
            argv,
            cwd=work,
            env=environment(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=_die_with_the_worker,
        )
    except OSError as exc:  # no such program, not executable
        raise ContainerFailed(f"cannot start {argv[0]!r}: {exc.strerror}", "exit") from None
    marker = work.parent / SESSION_FILE  # for `sweep`, should this worker die; renamed in whole, never half read
    marker.with_suffix(".new").write_text(f"{proc.pid} {_owner()}")
    marker.with_suffix(".new").replace(marker)
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


def _die_with_the_worker() -> None:
    """In the child before exec: a worker killed outright (SIGKILL, OOM) cannot stop its process, and the
    reaper then runs the job again elsewhere; the kernel kills the process with the worker instead, so no
    two attempts run at once. What the process started itself outlives it until `sweep` ends its session."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


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


def sweep(jobs_dir: Path) -> int:
    """End the sessions of local runs whose worker process is gone, and remove their dirs: what a worker
    killed outright left running (its process's own children survive the PDEATHSIG). Run by every worker
    of the host, at its start and now and then: a dead worker's leftovers need not wait for its return."""
    swept = 0
    for marker in jobs_dir.glob(f"*-*/{SESSION_FILE}"):
        try:
            session, owner, born = marker.read_text().split()
        except FileNotFoundError:
            continue  # its run ended meanwhile
        if _started_at(int(owner)) == born:
            continue  # its worker is alive and stops it itself
        try:
            os.killpg(int(session), signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass  # its session had ended
        shutil.rmtree(marker.parent, ignore_errors=True)
        swept += 1
        log.warning("swept the local run in %s: the worker that ran it is gone", marker.parent.name)
    return swept


def _owner() -> str:
    """This process, as a sweep on the host can tell it from a later one that got the same pid."""
    return f"{os.getpid()} {_started_at(os.getpid())}"


def _started_at(pid: int) -> str:
    """Its start time, or "gone": also for a zombie, as a worker killed outright stays until its new
    parent reaps it (a sweep at the next worker's start ran before that and left the run going)."""
    try:  # fields 3 and 22 of /proc/PID/stat, after the parenthesised command (which may hold spaces)
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return "gone"
    return "gone" if len(fields) < 20 or fields[0] in ("Z", "X") else fields[19]
