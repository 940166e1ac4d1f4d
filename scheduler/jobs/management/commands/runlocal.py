"""`make run`: the whole system on this machine as local processes, no Docker; Ctrl-C stops it all."""

from __future__ import annotations

import json
import secrets
import shlex
import shutil
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import redis
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from honcho.manager import Manager
from rest_framework.authtoken.models import Token

from cli.client import CONFIG_PATH


class Command(BaseCommand):
    help = "Start Redis (if none runs), the web app, the releaser, one worker per GPU (or a CPU worker) and Flower."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--flower-port", type=int, default=5555)
        parser.add_argument("--user", default="local")

    def handle(self, *args, port: int, flower_port: int, user: str, **options) -> None:
        manager = Manager()
        py = shlex.quote(sys.executable)
        if not _redis_up():
            manager.add_process("redis", _redis_command())
            _wait_for(_redis_up, "Redis")
        call_command("migrate", verbosity=0, interactive=False)
        name, password, token = _local_user(user)
        _write_cli_config(f"http://127.0.0.1:{port}", token)
        manager.add_process("web", f"{py} manage.py runserver --noreload 127.0.0.1:{port}")
        manager.add_process("releaser", f"{py} manage.py releaser")
        for label, flag in _workers():
            manager.add_process(label, f"{py} -m workers {flag}")
        manager.add_process(
            "flower",
            f"{py} -m celery -A workers.celery_app flower --port={flower_port} "
            f"--address=127.0.0.1 --basic-auth={name}:{password}",
        )
        self._banner(port, flower_port, name, password, token)
        manager.loop()
        sys.exit(manager.returncode)

    def _banner(self, port: int, flower_port: int, name: str, password: str, token: str) -> None:
        self.stdout.write(
            self.style.SUCCESS(
                f"\nGPU queue running locally\n"
                f"  web:    http://127.0.0.1:{port}/   (user {name}, password {password})\n"
                f"  API:    http://127.0.0.1:{port}/api/docs/   token {token}\n"
                f"  Flower: http://127.0.0.1:{flower_port}/   (same user and password)\n"
                f"  CLI:    submit-job matmul --param n=512 --wait   ({CONFIG_PATH} holds the URL and token)\n"
                f"  Ctrl-C stops everything.\n"
            )
        )


def _redis_up() -> bool:
    try:
        return bool(redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def _redis_command() -> str:
    if not shutil.which("redis-server"):
        raise CommandError(
            f"no Redis at {settings.REDIS_URL} and no redis-server to start: "
            "install it (apt-get install redis-server) or set REDIS_URL"
        )
    url = urlparse(settings.REDIS_URL)
    data = Path(settings.VAR_DIR) / "redis"
    data.mkdir(parents=True, exist_ok=True)
    return (
        f"redis-server --bind 127.0.0.1 --port {url.port or 6379} --dir {shlex.quote(str(data))} "
        "--appendonly yes --appendfsync everysec --save ''"
    )


def _wait_for(check, what: str, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise CommandError(f"{what} did not come up within {seconds:.0f} s")
        time.sleep(0.2)


def _local_user(name: str) -> tuple[str, str, str]:
    """The local superuser; its password is made once and kept in var/ so every run prints the same."""
    store = Path(settings.VAR_DIR) / "local-user.json"
    saved = json.loads(store.read_text()) if store.exists() else {}
    password = saved.get("password") or secrets.token_urlsafe(12)
    user, created = get_user_model().objects.get_or_create(
        username=name, defaults={"is_staff": True, "is_superuser": True}
    )
    if created or not saved:
        user.set_password(password)
        user.save()
    store.write_text(json.dumps({"user": name, "password": password}))
    store.chmod(0o600)
    return name, password, Token.objects.get_or_create(user=user)[0].key


def _write_cli_config(url: str, token: str) -> None:
    CONFIG_PATH.parent.mkdir(parents=True, exist_ok=True)
    CONFIG_PATH.write_text(json.dumps({"url": url, "token": token}))
    CONFIG_PATH.chmod(0o600)


def _workers() -> list[tuple[str, str]]:
    """One worker per GPU that NVML finds, or one CPU worker, plainly labelled, where there is none."""
    try:
        import pynvml

        from workers.gpu import list_gpus

        pynvml.nvmlInit()
        gpus = list_gpus(pynvml)
    except Exception:
        gpus = []
    if not gpus:
        return [("cpu-worker(no-GPU)", "--cpu")]
    return [(f"gpu{g.index}-worker", f"--gpu {g.uuid}") for g in gpus]
