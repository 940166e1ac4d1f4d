"""Real processes for tests: Redis, web, releaser and workers, started and awaited by condition."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import redis
import requests

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check: Callable[[], object], timeout: float = 30.0, what: str = "condition", every: float = 0.05):
    """Poll `check` until it returns something truthy; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


class Proc:
    """A child process with its output in test-artifacts/<name>.log."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str]):
        ARTIFACTS.mkdir(exist_ok=True)
        self.name, self.cmd, self.env = name, cmd, env
        self.log_path = ARTIFACTS / f"{name}.log"
        self.popen: subprocess.Popen | None = None
        self.start()

    def start(self) -> Proc:
        log = open(self.log_path, "ab")
        self.popen = subprocess.Popen(
            self.cmd, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        return self

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
        return self.log_path.read_text(errors="replace")


def redis_url_for_tests() -> tuple[str, Proc | None]:
    """DB 11 (GPUQ_TEST_REDIS_DB) of the Redis on 127.0.0.1:6379, or a redis-server of our own where none runs.
    Two test runs at once on one machine need two DB numbers (and two DATABASE_URL names)."""
    db = int(os.environ.get("GPUQ_TEST_REDIS_DB", "11"))
    try:
        redis.Redis(port=6379, socket_connect_timeout=1).ping()
        return f"redis://127.0.0.1:6379/{db}", None
    except redis.RedisError:
        pass
    if not shutil.which("redis-server"):
        raise RuntimeError("no Redis on 127.0.0.1:6379 and no redis-server to start (apt-get install redis-server)")
    port = free_port()
    data = tempfile.mkdtemp(prefix="gpuq-redis-")
    proc = Proc(
        "redis",
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", data, "--save", "", "--appendonly", "no"],
        dict(os.environ),
    )
    url = f"redis://127.0.0.1:{port}/{db}"
    wait_until(lambda: _pings(url), 10, "redis-server to start")
    return url, proc


def _pings(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


def database_url(settings_dict: dict) -> str:
    """The URL of the test database, for processes the tests start."""
    if settings_dict["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{settings_dict['NAME']}"
    user = settings_dict.get("USER") or "postgres"
    host, port = settings_dict.get("HOST") or "127.0.0.1", settings_dict.get("PORT") or 5432
    password = f":{settings_dict['PASSWORD']}" if settings_dict.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{host}:{port}/{settings_dict['NAME']}"


def http_ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code < 500
    except requests.RequestException:
        return False


def python() -> str:
    return sys.executable


def gunicorn(port: int, workers: int) -> list[str]:
    """The web app under gunicorn on loopback, as tests and benchmarks run it."""
    return [
        python(),
        "-m",
        "gunicorn",
        "scheduler.wsgi:application",
        "-b",
        f"127.0.0.1:{port}",
        "-w",
        str(workers),
        "--timeout",
        "60",
    ]


class TcpProxy:
    """A loopback TCP proxy that a test can cut: every connection dropped, new ones refused, for a while."""

    def __init__(self, host: str, port: int):
        import threading

        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.down_until = 0.0
        self.pairs: list[tuple[socket.socket, socket.socket]] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import threading

        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if time.monotonic() < self.down_until:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.pairs.append((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self, seconds: float) -> None:
        self.down_until = time.monotonic() + seconds
        with self.lock:
            pairs, self.pairs = self.pairs, []
        for pair in pairs:
            for s in pair:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                    s.close()
                except OSError:
                    pass

    def close(self) -> None:
        self.listener.close()
        self.cut(0)
