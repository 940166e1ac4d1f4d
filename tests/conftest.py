"""Shared fixtures: a real Redis, a cast of users, and the live system as real processes."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis
import requests
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from scheduler.dispatch import keys
from scheduler.fleet.snapshot import Snapshot
from tests import support
from workers import launch

# Keys that belong to live workers' telemetry and Celery's queues survive between tests.
METRICS_TOKEN = "test-metrics-token"  # what the live systems' Prometheus would send
KEPT_PREFIXES = (b"gpuq:gpu:", b"gpuq:gpus", b"gpuq:hist:", b"_kombu", b"gpu.", b"cpu.", b"unacked")


@pytest.fixture(scope="session", autouse=True)
def redis_url():
    url, proc = support.redis_url_for_tests()
    _point_django_at(url)
    redis.Redis.from_url(url).flushdb()
    yield url
    if proc:
        proc.stop()


def _point_django_at(url: str) -> None:
    from django.conf import settings
    from django.core.cache import caches

    settings.REDIS_URL = settings.CELERY_BROKER_URL = url
    settings.SECURE_SSL_REDIRECT = False  # the test client speaks plain HTTP
    settings.CACHES["default"]["LOCATION"] = url
    caches.__dict__.pop("settings", None)
    from scheduler.dispatch.celery_app import app
    from scheduler.dispatch.connections import redis_client

    redis_client.cache_clear()
    app.conf.broker_url = url
    os.environ["REDIS_URL"] = url


@pytest.fixture(autouse=True)
def slots_only(settings):
    """Tests count GPU slots with zero-work jobs; feeding short jobs past the slots has tests of its own."""
    settings.GPU_FEED_SECONDS = 0.0


@pytest.fixture(autouse=True)
def clean_redis(redis_url):
    r = redis.Redis.from_url(redis_url)
    stale = [k for k in r.scan_iter(count=1000) if not k.startswith(KEPT_PREFIXES)]
    if stale:
        r.delete(*stale)
    yield r


@pytest.fixture
def r(redis_url) -> redis.Redis:
    return redis.Redis.from_url(redis_url, decode_responses=True)


class Cast:
    """The users of a test: two ordinary users and one member of staff, each with an API token."""

    def __init__(self):
        User = get_user_model()
        self.alice = User.objects.create_user("alice", password="alice-secret-pw")
        self.bob = User.objects.create_user("bob", password="bob-secret-pw")
        self.staff = User.objects.create_user("sam", password="sam-secret-pw", is_staff=True)

    def token(self, user) -> str:
        return Token.objects.get_or_create(user=user)[0].key

    def api(self, user) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {self.token(user)}")
        return client


@pytest.fixture
def cast(db) -> Cast:
    return Cast()


@pytest.fixture
def live_cast(transactional_db) -> Cast:
    return Cast()


def _env(db_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    defaults = dict(
        DJANGO_SETTINGS_MODULE="scheduler.settings",
        DATABASE_URL=db_url,
        REDIS_URL=redis_url,
        DEBUG="true",
        TELEMETRY_INTERVAL="0.5",
        DEAD_GPU_REQUEUE_AFTER="6",
        RELEASER_INTERVAL="0.5",
        GPU_FEED_SECONDS="0",
        METRICS_TOKEN=METRICS_TOKEN,
        PYTHONUNBUFFERED="1",
        LOG_LEVEL="INFO",
    )
    env.update({**defaults, **extra})  # a test's own settings win over the live systems' defaults
    env.pop("CELERY_BROKER_URL", None)
    return env


class LiveSystem(launch.LocalSystem):
    """The web app under gunicorn, the releaser, and CPU workers standing in for GPUs on hosts A and B."""

    def __init__(
        self,
        db_url: str,
        redis_url: str,
        hosts: tuple[str, ...] = ("hostA", "hostB"),
        gpus: tuple[str, ...] = (),
        per_host: int = 1,
        **env: str,
    ):
        """CPU workers named after `hosts` (`per_host` of each, standing in for its GPUs: `hostA-0`,
        `hostA-1`, ...), or with `gpus` one real GPU worker per UUID on this host."""
        self.db_url, self.redis_url = db_url, redis_url
        workers = (
            {
                (h if per_host == 1 else f"{h}-{k}"): ["--cpu", "--host", h, "--cpu-slot", str(k)]
                for h in hosts
                for k in range(per_host)
            }
            if not gpus
            else {u: ["--gpu", u, "--host", "gpuhost"] for u in gpus}
        )
        self.hosts = set(hosts) if not gpus else {"gpuhost"}
        self.port = support.free_port()
        super().__init__(
            _env(db_url, redis_url, **env), workers, web=support.gunicorn(self.port, 2), web_port=self.port
        )
        try:
            self.wait_ready(60, self.hosts)
        except BaseException:
            self.stop()  # a system that failed to start must not go on releasing jobs in later tests
            raise

    def wait_for_gpus(self, n: int, timeout: float = 60) -> list[Snapshot]:
        return self.wait_for_workers(n, timeout, self.hosts)

    def restart_worker(self, host: str) -> None:
        self.workers[host].kill()
        self.workers[host] = self.start_worker(host)
        self.wait_for_gpus(len(self.workers))

    def session(self, token: str) -> requests.Session:
        s = requests.Session()
        s.headers["Authorization"] = f"Token {token}"
        return s

    def quiesce(self) -> None:
        """Cancel every unfinished job and wait until none runs, so the test's table flush meets no
        worker still writing (a TRUNCATE racing a worker's update deadlocks on PostgreSQL)."""
        from scheduler.jobs.models import FINAL, Job, Status

        Job.objects.exclude(status__in=FINAL).exclude(status=Status.RUNNING).update(status=Status.CANCELLED)
        support.wait_until(lambda: not Job.objects.filter(status=Status.RUNNING).exists(), 60, "running jobs to end")


@pytest.fixture(scope="module")
def live_system(django_db_setup, django_db_blocker, redis_url):
    """Per module, so that tests which publish fake GPUs never meet live workers."""
    with running_system(redis_url) as system:
        yield system


@contextmanager
def running_system(redis_url: str, **options) -> Iterator[LiveSystem]:
    """A LiveSystem on the test database (`options` as LiveSystem takes them), stopped and forgotten after."""
    from django.db import connection

    system = LiveSystem(support.database_url(connection.settings_dict), redis_url, **options)
    try:
        yield system
    finally:
        system.stop()
        _forget_gpus(redis_url, system.hosts)


def _forget_gpus(redis_url: str, hosts) -> None:
    import json

    r = redis.Redis.from_url(redis_url)
    for uuid, raw in r.hgetall(keys.KNOWN_GPUS).items():
        if json.loads(raw).get("host") in hosts:
            r.hdel(keys.KNOWN_GPUS, uuid)
            r.delete(keys.live_gpu(uuid.decode()))


@pytest.fixture
def fake_gpus(redis_url):
    """Publish telemetry of GPUs that do not exist (no worker consumes their queues); removed after."""
    from scheduler.dispatch.connections import redis_client
    from scheduler.fleet import store as fleet

    published: list[Snapshot] = []

    def publish(memory_gib: list[float], host: str = "fakehost", ttl: float = 60, **fields) -> list[Snapshot]:
        snaps = []
        for i, gib in enumerate(memory_gib):
            uuid = f"GPU-fa4e{i:04d}-0000-0000-0000-{host.encode().hex()[:12]:0>12}"
            total = int(gib * 2**30)
            snap = Snapshot(
                **{
                    "host": host,
                    "uuid": uuid,
                    "name": f"Fake GPU {gib:g} GiB",
                    "index": i,
                    "bus_id": f"0000:00:{i:02x}.0",
                    "queue": f"gpu.{host}.fa4e{i:04d}",
                    "kind": "gpu",
                    "memory_total": total,
                    "memory_used": 0,
                    "memory_free": total,
                    "memory_usable": total,
                    "utilization": 0.0,
                    "temperature": 30,
                    "power_w": 50.0,
                    "last_seen": time.time(),
                    **fields,
                }
            )
            fleet.publish(redis_client(), snap, ttl)
            published.append(snap)
            snaps.append(snap)
        return snaps

    yield publish
    r = redis.Redis.from_url(redis_url)
    for snap in published:
        r.hdel(keys.KNOWN_GPUS, snap.uuid)
        r.delete(keys.live_gpu(snap.uuid), keys.gpu_history(snap.uuid), snap.queue)


@pytest.fixture
def live_env(transactional_db, redis_url) -> dict[str, str]:
    """The environment for a process the test starts against the test database and Redis."""
    from django.db import connection

    return _env(support.database_url(connection.settings_dict), redis_url)


@pytest.fixture(scope="session")
def container_engine():
    """A real container engine with the test image; the tests skip, saying why, where none can be had."""
    from tests import engine

    try:
        running = engine.start()
    except engine.Unavailable as exc:
        pytest.skip(str(exc))
    yield running
    running.stop()


@pytest.fixture(scope="session")
def docker_engine():
    """Debian's dockerd (tests/dockerd.py) with the busybox test image; skipped, saying why, where none starts."""
    from tests import dockerd, engine

    try:
        running = dockerd.start()
    except engine.Unavailable as exc:
        pytest.skip(str(exc))
    engine.load_test_image(engine.Engine(running.url, engine.IMAGE))
    yield running
    running.stop()
