"""Telling waiters that a job changed: a Redis publish per change, a long poll that listens for it.

Every status change publishes the job's new status on its channel once committed; `wait_for`
subscribes first (through its process's Listener, one connection for all its waiters) and then reads
the job, so a change that lands between the two is seen either way. A waiter reads again only for a
status it waits for: a job's `running` no longer costs a read that a waiter for its end throws away,
and which ran beside the worker recording that end (docs/BENCHMARKS.md). A publish that Redis loses
costs only latency: the waiter reads the job again at least every RECHECK_S.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import redis
from django.conf import settings
from django.db import transaction

from scheduler.dispatch import keys
from scheduler.dispatch.connections import as_text, redis_client
from scheduler.jobs.models import Status

log = logging.getLogger(__name__)
T = TypeVar("T")
RECHECK_S = 1.0
SUBSCRIBE_WAIT_S = 1.0  # a confirmation later than this: read anyway, the rechecks stand in
LISTEN_S = 5.0


def announce(job_ids: Iterable[int], status: str, pipe=None) -> None:
    """Publish that these jobs are now `status`, once the transaction that made it commits (at once
    outside one); on `pipe`, the caller's pipeline, where the caller executes it after its own commit."""
    ids = list(job_ids)
    if pipe is not None:
        for job_id in ids:
            pipe.publish(keys.job_changes(job_id), status)
        return
    if ids:
        transaction.on_commit(lambda: _publish(ids, status))


def _publish(ids: list[int], status: str) -> None:
    try:
        with redis_client().pipeline(transaction=False) as pipe:
            announce(ids, status, pipe)
            pipe.execute()
    except Exception as exc:  # the change is committed; its waiters see it at their next recheck
        log.warning("could not announce changes of jobs %s: %s", ids[:5], exc)


def wait_for(
    job_id: int, timeout: float, check: Callable[[], tuple[bool, T]], wanted: Callable[[str], bool] = bool
) -> T:
    """Call `check` until it says done or `timeout` seconds pass, woken by the job's changes to a
    status that `wanted` accepts (a wake that names none, or one unknown, reads anyway); what it
    returned last."""
    deadline = time.monotonic() + timeout
    with listener().watching(keys.job_changes(job_id), timeout) as watch:
        while True:
            watch.take()  # before the read: a change published during it wakes the next wait at once
            done, value = check()
            while True:
                remaining = deadline - time.monotonic()
                if done or remaining <= 0:
                    return value
                if not watch.changed.wait(min(remaining, RECHECK_S)):
                    break  # the recheck
                if any(s not in Status.values or wanted(s) for s in watch.take()):
                    break


def listener() -> Listener:
    """This process's listener (a forked process starts its own)."""
    global _listener
    with _create_lock:
        if _listener is None or _listener.pid != os.getpid():
            _listener = Listener(settings.REDIS_URL)
        return _listener


class Listener:
    """One Redis connection per process that all its waiters share, read by one daemon thread: a long poll
    opened a connection of its own and paid a subscription round trip before its first read (0.5-0.7 ms
    here), then woke through redis-py's PubSub. The thread subscribes a job's channel while anyone waits on
    it and sets each waiter's Event when a change is published; it reconnects after Redis is lost,
    resubscribing, and wakes every waiter then, since a change may have been published meanwhile."""

    def __init__(self, url: str) -> None:
        self.pid, self._url = os.getpid(), url
        self._lock = threading.Lock()
        self._waiters: dict[bytes, set[_Watch]] = {}
        self._pending: dict[bytes, int] = {}  # SUBSCRIBEs sent, not yet confirmed
        self._confirmed: set[bytes] = set()
        self._conn: Any = None
        try:
            self._connect()  # before the first waiter: it is subscribed before it reads
        except redis.RedisError as exc:
            log.warning("no Redis for job changes (%s); waiters recheck until it comes", exc)
        threading.Thread(target=self._run, name="gpuq-changes", daemon=True).start()

    @contextmanager
    def watching(self, channel: str, timeout: float) -> Iterator[_Watch]:
        """A _Watch woken at each change published on `channel`, once subscribed: subscribing first,
        then reading, is what makes a change between the two seen either way. Without Redis it gives up
        at once; the waiter's rechecks stand in for the wake."""
        watch = _Watch()
        key = channel.encode()
        self._add(key, watch)
        try:
            if self._conn is not None:
                watch.ready.wait(min(timeout, SUBSCRIBE_WAIT_S))
            yield watch
        finally:
            self._remove(key, watch)

    def _add(self, key: bytes, watch: _Watch) -> None:
        with self._lock:
            waiters = self._waiters.setdefault(key, set())
            waiters.add(watch)
            if key in self._confirmed:
                watch.ready.set()
            elif len(waiters) == 1:
                self._send("SUBSCRIBE", key)

    def _remove(self, key: bytes, watch: _Watch) -> None:
        with self._lock:
            waiters = self._waiters[key]
            waiters.discard(watch)
            if not waiters:
                del self._waiters[key]
                self._confirmed.discard(key)
                self._send("UNSUBSCRIBE", key)

    def _send(self, command: str, *channels: bytes) -> None:
        """Under the lock; only the thread reads the connection. A lost one is the thread's to mend: it
        subscribes to all that is waited on when it reconnects."""
        if self._conn is None:
            return
        try:
            self._conn.send_command(command, *channels, check_health=False)
        except redis.RedisError:
            return
        if command == "SUBSCRIBE":
            for key in channels:
                self._pending[key] = self._pending.get(key, 0) + 1

    def _run(self) -> None:
        pause = 0.05
        while True:
            try:
                self._listen()
            except Exception as exc:  # Redis went away: reconnect, the waiters recheck meanwhile
                log.warning("lost the job changes' Redis connection (%s); reconnecting", exc)
                self._lost()
                time.sleep(pause)
                pause = min(pause * 2, RECHECK_S)

    def _listen(self) -> None:
        conn = self._conn or self._connect()
        while True:
            if conn.can_read(timeout=LISTEN_S):
                self._handle(conn.read_response())
            else:  # idle: a connection that died silently shows itself
                with self._lock:
                    conn.send_command("PING", check_health=False)

    def _connect(self) -> Any:
        """A new connection, subscribed to every channel waited on."""
        # RESP2: what is published comes back as replies to read (RESP3 hands it to a push handler)
        pool = redis.ConnectionPool.from_url(
            self._url, protocol=2, socket_connect_timeout=5, socket_keepalive=True, client_name=listener_name()
        )
        conn = pool.make_connection()
        conn.connect()
        with self._lock:
            self._conn = conn
            if self._waiters:
                self._send("SUBSCRIBE", *self._waiters)
        return conn

    def _handle(self, message: list) -> None:
        if not isinstance(message, list):  # the PONG of an idle connection's PING
            return
        kind, key = message[0], message[1]
        with self._lock:
            waiters = self._waiters.get(key, ())
            if kind == b"message":
                for watch in waiters:
                    watch.wake(as_text(message[2]))
            elif kind == b"subscribe":
                self._pending[key] = self._pending.get(key, 1) - 1
                if self._pending[key] > 0:  # a later SUBSCRIBE of the channel is still in flight
                    return
                del self._pending[key]
                if waiters:
                    self._confirmed.add(key)
                for watch in waiters:
                    watch.wake()  # a waiter resubscribed after an outage reads again
                    watch.ready.set()

    def _lost(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.disconnect()
            self._conn = None
            self._pending.clear()
            self._confirmed.clear()
            for waiters in self._waiters.values():
                for watch in waiters:
                    watch.wake()


def listener_name() -> str:
    """The listener's name in Redis's CLIENT LIST."""
    return f"gpuq-changes-{os.getpid()}"


class _Watch:
    """One waiter's view of its channel: `changed` is set by each wake, which also notes the status
    published ("" where a wake names none: after an outage, at subscribing)."""

    def __init__(self) -> None:
        self.ready, self.changed = threading.Event(), threading.Event()
        self._lock = threading.Lock()
        self._statuses: list[str] = []

    def wake(self, status: str = "") -> None:
        with self._lock:
            self._statuses.append(status)
            self.changed.set()

    def take(self) -> list[str]:
        """The statuses published since the last take, and the Event cleared."""
        with self._lock:
            self.changed.clear()
            taken, self._statuses = self._statuses, []
            return taken


_listener: Listener | None = None
_create_lock = threading.Lock()
