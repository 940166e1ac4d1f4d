"""The whole system as local processes: how `make run`, the tests and the benchmarks start it.

One definition of each process (Redis, the web app, the releaser, a worker per GPU or CPU workers,
Flower) and one way to await it by condition, so the three never drift apart. `LocalSystem` starts
the web app, the releaser and the workers on a database and a Redis it is given, and stops them.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any, TypeVar

import redis
import requests

from scheduler.fleet import store as fleet
from scheduler.fleet.snapshot import Snapshot
from workers import doctor, gpu

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
T = TypeVar("T")


def python() -> str:
    return sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check: Callable[[], T | None], timeout: float = 30.0, what: str = "condition", every: float = 0.05) -> T:
    """Poll `check` until it returns something truthy; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def http_ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code < 500
    except requests.RequestException:
        return False


def redis_pings(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


class Proc:
    """A child process in its own process group; its output in `log_dir`/<name>.log, or, with no
    `log_dir`, on this process's stdout with each line prefixed by its name (as `make run` shows it)."""

    def __init__(self, name: str, cmd: list[str], env: Mapping[str, str], log_dir: Path | None = ARTIFACTS):
        self.name, self.cmd, self.env = name, cmd, dict(env)
        self.log_path = log_dir / f"{name}.log" if log_dir else None
        self.popen: subprocess.Popen | None = None
        self.start()

    def start(self) -> Proc:
        if self.log_path:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.log_path, "ab") as log:
                self.popen = self._spawn(log)
        else:
            self.popen = self._spawn(subprocess.PIPE)
            threading.Thread(target=self._relay, args=(self.popen.stdout,), daemon=True).start()
        return self

    def _spawn(self, out: IO[bytes] | int) -> subprocess.Popen:
        return subprocess.Popen(
            self.cmd, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )

    def _relay(self, stream: IO[bytes]) -> None:
        for line in stream:
            sys.stdout.write(f"{self.name:>12} | {line.decode(errors='replace')}")
            sys.stdout.flush()

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group (a Celery worker and its pool)."""
        if self.popen and self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()

    def stop(self) -> None:
        self.kill(signal.SIGTERM)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""


# The processes, one command each.


def gunicorn(port: int, workers: int, *extra: str) -> list[str]:
    """The web app under gunicorn on loopback."""
    return [python(), "-m", "gunicorn", "scheduler.wsgi:application", "-b", f"127.0.0.1:{port}"] + [
        "-w",
        str(workers),
        "--threads",  # a long poll (/api/jobs/<id>/wait/) holds a thread, not a whole worker
        "8",
        "--timeout",
        "60",
        *extra,
    ]


def runserver(port: int) -> list[str]:
    """Django's development server (it serves the static files under DEBUG): `make run`'s web app."""
    return [python(), "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"]


def releaser() -> list[str]:
    return [python(), "manage.py", "releaser"]


def worker(*flags: str) -> list[str]:
    """`--gpu <uuid>` or `--cpu --host <name>`, as `python -m workers` takes them."""
    return [python(), "-m", "workers", *flags]


def flower(port: int, *extra: str) -> list[str]:
    return [python(), "-m", "celery", "-A", "scheduler.dispatch.celery_app", "flower", f"--port={port}", *extra]


def redis_server(port: int, data_dir: Path, durable: bool) -> list[str]:
    """A loopback Redis; `durable`: AOF every second, as compose runs it."""
    aof = ["--appendonly", "yes", "--appendfsync", "everysec"] if durable else ["--appendonly", "no"]
    return ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--dir", str(data_dir), "--save", "", *aof]


def gpu_uuids() -> list[str]:
    """The UUID of every GPU NVML finds here; none where this host has no NVML."""
    nvml = doctor.load_nvml()
    return [g.uuid for g in gpu.list_gpus(nvml)] if nvml else []


def gpu_workers(*flags: str) -> dict[str, list[str]]:
    """`python -m workers` flags by worker name: one worker per GPU NVML finds here ({} where none)."""
    return {uuid: ["--gpu", uuid, *flags] for uuid in gpu_uuids()}


class LocalSystem:
    """The web app, the releaser and one process per entry of `workers` (name -> `python -m workers` flags),
    on the database and Redis that `env` names; started at once, ready when `wait_ready` returns."""

    def __init__(
        self,
        env: Mapping[str, str],
        workers: Mapping[str, list[str]],
        *,
        web: list[str],
        web_port: int,
        log_dir: Path | None = ARTIFACTS,
        prefix: str = "",
    ):
        self.base_env, self.worker_args, self.log_dir, self.prefix = dict(env), dict(workers), log_dir, prefix
        self.url = f"http://127.0.0.1:{web_port}"
        self.extra: list[Proc] = []
        self.web = self.start("web", web)
        self.releaser = self.start("releaser", releaser())
        self.workers = {name: self.start_worker(name) for name in self.worker_args}

    def env(self, **extra: str) -> dict[str, str]:
        return {**self.base_env, **extra}

    def start(self, name: str, cmd: list[str], **extra_env: str) -> Proc:
        return Proc(f"{self.prefix}{name}", cmd, self.env(**extra_env), self.log_dir)

    def start_worker(self, name: str, **extra_env: str) -> Proc:
        return self.start(f"worker-{name}", worker(*self.worker_args[name]), **extra_env)

    def add(self, name: str, cmd: list[str]) -> Proc:
        """Another process of the system (Redis, Flower), stopped with it."""
        proc = self.start(name, cmd)
        self.extra.append(proc)
        return proc

    def wait_ready(self, timeout: float = 60, hosts: set[str] | None = None) -> list[Snapshot]:
        """Until the web app answers and every worker publishes telemetry (those on `hosts`, when given)."""
        wait_until(lambda: http_ok(f"{self.url}/api/schema/"), timeout, "the web app to serve")
        return self.wait_for_workers(len(self.workers), timeout, hosts)

    def wait_for_workers(self, n: int, timeout: float = 60, hosts: set[str] | None = None) -> list[Snapshot]:
        r = redis.Redis.from_url(self.base_env["REDIS_URL"])

        def live() -> list[Snapshot] | None:
            snaps = [s for s in fleet.live_snapshots(r) if hosts is None or s.host in hosts]
            return snaps if len(snaps) >= n else None

        return wait_until(live, timeout, f"{n} workers to publish telemetry")

    def processes(self) -> list[Proc]:
        return [self.web, self.releaser, *self.workers.values(), *self.extra]

    def supervise(self, stop: threading.Event) -> int:
        """Until `stop` is set or a process exits (then its exit status), as `make run` runs in the foreground."""
        while not stop.wait(0.5):
            ended = next((p for p in self.processes() if not p.running()), None)
            if ended is not None and ended.popen is not None:
                print(f"{ended.name} exited with status {ended.popen.returncode}: stopping everything")
                return ended.popen.returncode or 1
        return 0

    def stop(self) -> None:
        for proc in self.processes():
            proc.stop()


def environment(base: Mapping[str, Any], **settings: str) -> dict[str, str]:
    """`base` (usually os.environ) with the settings a local system's processes get."""
    return {**{k: str(v) for k, v in base.items()}, "DJANGO_SETTINGS_MODULE": "scheduler.settings", **settings}
