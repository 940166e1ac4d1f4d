"""`make run`: the whole system on this machine as local processes, no Docker; Ctrl-C stops it all."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import sys
import threading
from pathlib import Path
from urllib.parse import urlparse

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from rest_framework.authtoken.models import Token

from cli.client import CONFIG_PATH, CliError, save_config, saved_config
from workers import launch, local_secrets

REDIS_START_S = 15


class Command(BaseCommand):
    help = "Start Redis (if none runs), the web app, the releaser, one worker per GPU (or a CPU worker) and Flower."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--flower-port", type=int, default=5555)
        parser.add_argument("--user", default="local")

    def handle(self, *args, port: int, flower_port: int, user: str, **options) -> None:
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        var = Path(settings.VAR_DIR)
        local_secrets.make_private(var)
        redis_url, redis_proc = _redis(var)
        call_command("migrate", verbosity=0, interactive=False)
        name, password, token = _local_user(user)
        cli_configured = _write_cli_config(f"http://127.0.0.1:{port}", token)
        workers = launch.gpu_workers() or {"cpu(no-GPU)": ["--cpu"]}
        system = launch.LocalSystem(
            launch.environment(os.environ, REDIS_URL=redis_url),
            workers,
            web=launch.runserver(port),
            web_port=port,
            log_dir=None,
        )
        # Flower reads its password from the environment: on its command line, `ps` would show it to anyone.
        flower = launch.flower(flower_port, "--address=127.0.0.1")
        system.extra.append(system.start("flower", flower, FLOWER_BASIC_AUTH=f"{name}:{password}"))
        if redis_proc:
            system.extra.append(redis_proc)
        self._banner(port, flower_port, name, password, token, cli_configured)
        try:
            code = system.supervise(stop)
        finally:
            system.stop()
        sys.exit(code)

    def _banner(self, port: int, flower_port: int, name: str, password: str, token: str, cli: bool) -> None:
        where = (
            f"({CONFIG_PATH} holds the URL and token)"
            if cli
            else f"(add --url http://127.0.0.1:{port} --token {token}: {CONFIG_PATH} names another server, kept)"
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"\nGPU queue running locally\n"
                f"  web:    http://127.0.0.1:{port}/   (user {name}, password {password})\n"
                f"  API:    http://127.0.0.1:{port}/api/docs/   token {token}\n"
                f"  Flower: http://127.0.0.1:{flower_port}/   (same user and password)\n"
                f"  CLI:    submit-job matmul --param n=512 --wait   {where}\n"
                f"  Ctrl-C stops everything.\n"
            )
        )


def _redis(var: Path) -> tuple[str, launch.Proc | None]:
    """The Redis to use: ours from an earlier run (with its password), one REDIS_URL names that answers,
    or a new one of ours on REDIS_URL's port with a generated password."""
    ours = local_secrets.with_password(settings.REDIS_URL, local_secrets.secret(var, "redis-password"))
    if launch.redis_pings(ours):
        return ours, None
    if launch.redis_pings(settings.REDIS_URL):
        return settings.REDIS_URL, None
    return ours, _start_redis(var, ours)


def _start_redis(var: Path, url: str) -> launch.Proc:
    if not shutil.which("redis-server"):
        raise CommandError(
            f"no Redis at {settings.REDIS_URL} and no redis-server to start: "
            "install it (apt-get install redis-server) or set REDIS_URL"
        )
    data = var / "redis"
    data.mkdir(parents=True, exist_ok=True)
    port = urlparse(settings.REDIS_URL).port or 6379
    config = local_secrets.redis_config(var, urlparse(url).password or "")
    cmd = ["redis-server", str(config), *launch.redis_server(port, data, durable=True)[1:]]
    proc = launch.Proc("redis", cmd, launch.environment(os.environ), log_dir=None)
    try:
        launch.wait_until(lambda: launch.redis_pings(url), REDIS_START_S, "Redis to come up")
    except AssertionError as exc:
        proc.stop()
        raise CommandError(str(exc)) from None
    return proc


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


def _write_cli_config(url: str, token: str) -> bool:
    """Point the CLI at this local server, unless its config names another server (a lab member's
    `submit-job login`): that one is kept, and the banner says how to reach this one instead."""
    try:
        saved = saved_config()
    except CliError:
        saved = {"url": "(unreadable)"}
    if saved.get("url") not in (None, url):
        return False
    save_config(url, token)
    return True
