"""What tests need beyond the system's own launcher (workers/launch.py, re-exported here): their Redis
and database URLs, and a TCP proxy a test can cut."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import redis

from workers.launch import (
    ARTIFACTS,
    ROOT,
    Proc,
    free_port,
    gunicorn,
    http_ok,
    python,
    redis_pings,
    redis_server,
    wait_until,
)

__all__ = ["ARTIFACTS", "ROOT", "Proc", "free_port", "gunicorn", "http_ok", "python", "redis_pings", "wait_until"]


def redis_url_for_tests() -> tuple[str, Proc | None]:
    """DB 11 (GPUQ_TEST_REDIS_DB) of the Redis on 127.0.0.1:6379 (GPUQ_TEST_REDIS_PORT), or a redis-server of
    our own where none runs. Two test runs at once on one machine need two DB numbers or ports (and two
    DATABASE_URL names)."""
    db = int(os.environ.get("GPUQ_TEST_REDIS_DB", "11"))
    port = int(os.environ.get("GPUQ_TEST_REDIS_PORT", "6379"))
    try:
        redis.Redis(port=port, socket_connect_timeout=1).ping()
        return f"redis://127.0.0.1:{port}/{db}", None
    except redis.RedisError:
        pass
    if not shutil.which("redis-server"):
        raise RuntimeError(f"no Redis on 127.0.0.1:{port} and no redis-server to start (apt-get install redis-server)")
    port = free_port()
    data = tempfile.mkdtemp(prefix="gpuq-redis-")
    proc = Proc("redis", redis_server(port, Path(data), durable=False), dict(os.environ))
    url = f"redis://127.0.0.1:{port}/{db}"
    wait_until(lambda: redis_pings(url), 10, "redis-server to start")
    return url, proc


def database_url(settings_dict: dict) -> str:
    """The URL of the test database, for processes the tests start."""
    if settings_dict["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{settings_dict['NAME']}"
    user = settings_dict.get("USER") or "postgres"
    host, port = settings_dict.get("HOST") or "127.0.0.1", settings_dict.get("PORT") or 5432
    password = f":{settings_dict['PASSWORD']}" if settings_dict.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{host}:{port}/{settings_dict['NAME']}"


class TcpProxy:
    """A loopback TCP proxy that a test can cut: every connection dropped, new ones refused, for a while."""

    def __init__(self, host: str, port: int):
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.down_until = 0.0
        self.pairs: list[tuple[socket.socket, socket.socket]] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
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
