"""`make run` on a machine others log in to: Redis has a password, no password is on a command line,
and var/ is private. Runs `manage.py runlocal` for real, on its own Redis port and var/ folder."""

from __future__ import annotations

import os
import signal
import stat
from pathlib import Path

import pytest
import redis
import requests

from tests import support

pytestmark = [pytest.mark.slow]


def command_lines() -> list[str]:
    lines = []
    for path in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            lines.append(path.read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            continue
    return lines


def test_make_run_keeps_its_secrets_from_other_local_users(tmp_path):
    var, home = tmp_path / "var", tmp_path / "home"
    web_port, flower_port, redis_port = support.free_port(), support.free_port(), support.free_port()
    env = {
        **os.environ,
        "GPUQ_VAR_DIR": str(var),
        "HOME": str(home),
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "DATABASE_URL": "",
        "DEBUG": "true",
        "DJANGO_SETTINGS_MODULE": "scheduler.settings",
    }
    env.pop("CELERY_BROKER_URL", None)
    cmd = [support.python(), "manage.py", "runlocal", "--port", str(web_port), "--flower-port", str(flower_port)]
    run = support.Proc("runlocal", cmd, env)
    try:
        support.wait_until(lambda: support.http_ok(f"http://127.0.0.1:{web_port}/login/"), 90, "the web app")
        support.wait_until(lambda: support.http_ok(f"http://127.0.0.1:{flower_port}/healthcheck"), 60, "Flower")
        redis_password = (var / "redis-password").read_text().strip()
        flower_password = __import__("json").loads((var / "local-user.json").read_text())["password"]

        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=redis_port).ping()
        assert redis.Redis(port=redis_port, password=redis_password).ping()
        assert requests.get(f"http://127.0.0.1:{flower_port}/", timeout=10).status_code == 401
        lines = command_lines()
        assert any("runlocal" in line for line in lines)
        assert not [line for line in lines if redis_password in line or flower_password in line]

        assert stat.S_IMODE(var.stat().st_mode) == 0o700
        loose = [
            (str(p), oct(stat.S_IMODE(p.stat().st_mode)))
            for p in var.rglob("*")
            if not p.is_symlink() and stat.S_IMODE(p.stat().st_mode) & 0o077
        ]
        assert loose == []  # the database, its journal, Redis's files, the secrets: owner only
    finally:
        run.kill(signal.SIGINT)
