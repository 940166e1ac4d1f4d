"""Telling waiters that a job changed: a Redis publish per change, a long poll that listens for it.

Every status change publishes the job's id on its channel once committed; `wait_for` subscribes
first and then reads the job, so a change that lands between the two is seen either way. A publish
that Redis loses costs only latency: the waiter reads the job again at least every RECHECK_S.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import TypeVar

from django.db import transaction

from scheduler.dispatch import keys
from scheduler.dispatch.connections import redis_client

log = logging.getLogger(__name__)
T = TypeVar("T")
RECHECK_S = 1.0


def announce(job_ids: Iterable[int], pipe=None) -> None:
    """Publish each job's change once the transaction that made it commits (at once outside one);
    on `pipe`, the caller's pipeline, where the caller executes it after its own commit."""
    ids = list(job_ids)
    if pipe is not None:
        for job_id in ids:
            pipe.publish(keys.job_changes(job_id), job_id)
        return
    if ids:
        transaction.on_commit(lambda: _publish(ids))


def _publish(ids: list[int]) -> None:
    try:
        with redis_client().pipeline(transaction=False) as pipe:
            announce(ids, pipe)
            pipe.execute()
    except Exception as exc:  # the change is committed; its waiters see it at their next recheck
        log.warning("could not announce changes of jobs %s: %s", ids[:5], exc)


def wait_for(job_id: int, timeout: float, check: Callable[[], tuple[bool, T]]) -> T:
    """Call `check` until it says done or `timeout` seconds pass, woken by the job's changes;
    what it returned last."""
    deadline = time.monotonic() + timeout
    pubsub = redis_client().pubsub(ignore_subscribe_messages=True)
    try:
        pubsub.subscribe(keys.job_changes(job_id))
        while True:
            done, value = check()
            remaining = deadline - time.monotonic()
            if done or remaining <= 0:
                return value
            _next_change(pubsub, min(remaining, RECHECK_S))
    finally:
        pubsub.close()


def _next_change(pubsub, timeout: float) -> None:
    """Until a change is published on `pubsub`'s channel, at most `timeout` seconds. The subscription's
    own confirmation comes first and is no change: reading the job again for it cost every waiter a
    second read (~1.5 ms) before it could wait."""
    end = time.monotonic() + timeout
    while (left := end - time.monotonic()) > 0 and pubsub.get_message(timeout=left) is None:
        pass
