"""The floor: plain Celery on the same Redis, no web, no database, no router.

Workers of this app are pinned and warmed up like ours, so the difference measured is our overhead:
    CUDA_VISIBLE_DEVICES=<uuid> celery -A benchmarks.plain_celery worker -Q plain.0 -c 1 -P prefork
"""

import functools
import os
import time

from celery import Celery
from celery.signals import worker_process_init

app = Celery("plain", broker=os.environ.get("PLAIN_BROKER_URL", "redis://127.0.0.1:6379/14"))
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    task_ignore_result=True,
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
)
_xp: list = []


@worker_process_init.connect
def _warm(**_) -> None:
    from gpu_tasks import runtime

    xp = runtime.array_module(prefer_gpu=os.environ.get("PLAIN_CPU") != "1")
    runtime.warm_up(xp)
    _xp.append(xp)


@functools.lru_cache(maxsize=1)
def _redis():
    import redis

    return redis.Redis.from_url(app.conf.broker_url)


def _done(key: str) -> None:
    # One connection per process, as our workers keep theirs: a new one per task would slow the floor.
    _redis().rpush(key, time.time())


@app.task(name="plain.noop")
def noop(key: str) -> None:
    _done(key)


@app.task(name="plain.matmul")
def matmul(key: str, n: int) -> float:
    from gpu_tasks import runtime

    result = runtime.execute("matmul", {"n": n, "dtype": "float32", "seed": 0, "repeat": 1}, _xp[0])
    _done(key)
    return result["gpu_time_s"]
