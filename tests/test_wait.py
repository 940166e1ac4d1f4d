"""Waiting for a job: the long poll answers when the job changes (woken through Redis), not by polling."""

import threading
import time

import pytest
from django.db import connection

from scheduler.dispatch import keys
from scheduler.jobs import changes, lifecycle
from scheduler.jobs.models import FINAL, JobEvent, Status
from scheduler.jobs.submission import submit


def wait(client, job_id, **params):
    return client.get(f"/api/jobs/{job_id}/wait/", params)


def test_it_answers_the_moment_the_job_ends_not_at_a_recheck(live_cast, fake_gpus, monkeypatch):
    monkeypatch.setattr(changes, "RECHECK_S", 30.0)  # only the change's publish can wake the waiter in time
    [gpu] = fake_gpus([80])
    [job] = submit(live_cast.alice, [{"kind": "noop"}])
    answer: dict = {}

    def waiter():
        t0 = time.monotonic()
        answer["job"] = wait(live_cast.api(live_cast.alice), job.id, timeout=20).json()
        answer["s"] = time.monotonic() - t0
        connection.close()  # this thread's own connection

    thread = threading.Thread(target=waiter)
    thread.start()
    time.sleep(0.3)  # the waiter is subscribed and waiting (its answer would come 20 s later without a wake)
    claimed, lease = lifecycle.claim(job.id, "fakehost", gpu.queue)
    assert lifecycle.finish(claimed, lease, Status.SUCCEEDED, result={})
    thread.join(timeout=25)
    assert answer["job"]["status"] == Status.SUCCEEDED and answer["s"] < 5
    assert [e["status"] for e in answer["job"]["events"]][-2:] == [Status.RUNNING, Status.SUCCEEDED]


def test_a_waiter_reads_the_job_once_until_a_change_is_published(monkeypatch):
    monkeypatch.setattr(changes, "RECHECK_S", 30.0)
    reads = []

    def check():
        reads.append(time.monotonic())
        return False, None

    changes.wait_for(1, 0.3, check)
    # Once on subscribing, once as it is at the timeout: its subscription's own confirmation is no change.
    assert len(reads) == 2 and reads[1] - reads[0] >= 0.29


def test_it_answers_when_the_status_differs_from_the_one_seen(live_cast, fake_gpus):
    fake_gpus([80])
    [job] = submit(live_cast.alice, [{"kind": "noop"}])  # released at once to the idle fake GPU
    answer = wait(live_cast.api(live_cast.alice), job.id, status=Status.WAITING, timeout=20)
    assert answer.status_code == 200 and answer.json()["status"] == Status.QUEUED


def test_it_gives_the_job_as_it_is_when_the_timeout_passes(live_cast):
    [job] = submit(live_cast.alice, [{"kind": "noop"}])  # no GPU: it stays waiting
    t0 = time.monotonic()
    answer = wait(live_cast.api(live_cast.alice), job.id, timeout=0.3)
    assert answer.status_code == 200 and answer.json()["status"] == Status.WAITING
    assert 0.3 <= time.monotonic() - t0 < 3


@pytest.mark.parametrize("timeout", ["abc", "-1", "31", "nan"])
def test_a_bad_timeout_is_400_with_the_range(cast, timeout):
    [job] = submit(cast.alice, [{"kind": "noop"}])
    answer = wait(cast.api(cast.alice), job.id, timeout=timeout)
    assert answer.status_code == 400 and "from 0 to 30" in answer.json()["timeout"]


def test_another_users_job_is_404(cast):
    [job] = submit(cast.alice, [{"kind": "noop"}])
    assert wait(cast.api(cast.bob), job.id, timeout=0).status_code == 404


@pytest.mark.sqlite
def test_each_transition_moves_once_with_one_event(live_cast, fake_gpus):
    [gpu] = fake_gpus([80])
    [job] = submit(live_cast.alice, [{"kind": "noop"}])
    claimed, lease = lifecycle.claim(job.id, "fakehost", gpu.queue)
    assert claimed.status == Status.RUNNING and claimed.attempts == 1
    assert lifecycle.claim(job.id, "fakehost", gpu.queue) is None  # a redelivery cannot start a second attempt
    assert not lifecycle.finish(claimed, "not-the-lease", Status.SUCCEEDED, result={})
    assert lifecycle.finish(claimed, lease, Status.SUCCEEDED, result={"x": [1, 2]})
    assert not lifecycle.finish(claimed, lease, Status.SUCCEEDED, result={})
    claimed.refresh_from_db()
    assert claimed.status == Status.SUCCEEDED and claimed.result == {"x": [1, 2]} and claimed.lease == ""
    events = list(JobEvent.objects.filter(job_id=job.id).values_list("status", "message"))
    assert [s for s, _ in events] == [Status.WAITING, Status.QUEUED, Status.RUNNING, Status.SUCCEEDED]
    assert events[1][1].startswith(f"routed to {gpu.queue}: ") and "attempt 1 started: noop" in events[2][1]


def _waiting(job_ids, check):
    """A thread per job id, each in wait_for with `check`; their answers land in the returned dict."""
    answers: dict = {}
    threads = [
        threading.Thread(target=lambda i=i: answers.update({i: changes.wait_for(i, 20, check)})) for i in job_ids
    ]
    for thread in threads:
        thread.start()
    return threads, answers


def _listeners(r) -> list[dict]:
    return [c for c in r.client_list() if c.get("name") == changes.listener_name()]


def _until(condition, timeout=10.0):
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "condition not met in time"
        time.sleep(0.01)


def test_a_process_waits_on_many_jobs_through_one_redis_connection(r, monkeypatch):
    monkeypatch.setattr(changes, "RECHECK_S", 30.0)
    done = threading.Event()
    threads, answers = _waiting(range(1, 6), lambda: (done.is_set(), "seen"))
    _until(lambda: all(n == 1 for _, n in r.pubsub_numsub(*(keys.job_changes(i) for i in range(1, 6)))))
    assert len(_listeners(r)) == 1
    done.set()
    for i in range(1, 6):
        r.publish(keys.job_changes(i), i)
    for thread in threads:
        thread.join(timeout=5)
    assert answers == {i: "seen" for i in range(1, 6)}
    _until(lambda: r.pubsub_numsub(keys.job_changes(1))[0][1] == 0)  # unsubscribed once nobody waits


def test_a_waiter_for_the_end_reads_nothing_for_a_status_it_does_not_wait_for(r, monkeypatch):
    monkeypatch.setattr(changes, "RECHECK_S", 30.0)
    reads: list[float] = []
    answer: dict = {}

    def check():
        reads.append(time.monotonic())
        return len(reads) == 3, "seen"

    waiter = threading.Thread(target=lambda: answer.update(got=changes.wait_for(9, 20, check, lambda s: s in FINAL)))
    waiter.start()
    _until(lambda: r.pubsub_numsub(keys.job_changes(9))[0][1] == 1 and len(reads) == 1)
    r.publish(keys.job_changes(9), Status.RUNNING)  # committed, published, and not what it waits for
    time.sleep(0.3)
    assert len(reads) == 1
    r.publish(keys.job_changes(9), "9")  # a publisher that names no status (an older worker): read
    _until(lambda: len(reads) == 2)
    r.publish(keys.job_changes(9), Status.SUCCEEDED)
    waiter.join(timeout=5)
    assert answer == {"got": "seen"} and len(reads) == 3


def test_a_waiter_reads_again_when_the_listener_loses_redis(r, monkeypatch):
    monkeypatch.setattr(changes, "RECHECK_S", 30.0)  # only the listener can wake it in time
    done = threading.Event()
    threads, answers = _waiting([7], lambda: (done.is_set(), "seen"))
    _until(lambda: r.pubsub_numsub(keys.job_changes(7))[0][1] == 1)
    [listener] = _listeners(r)
    done.set()  # the change lands as the listener's connection goes: its publish would be lost
    r.client_kill_filter(_id=listener["id"])  # as a Redis restart does to it
    threads[0].join(timeout=5)
    assert answers == {7: "seen"}


def test_the_listener_reconnects_and_resubscribes_after_losing_redis(r, monkeypatch):
    monkeypatch.setattr(changes, "RECHECK_S", 30.0)
    done = threading.Event()
    threads, answers = _waiting([8], lambda: (done.is_set(), "seen"))
    _until(lambda: r.pubsub_numsub(keys.job_changes(8))[0][1] == 1)
    [lost] = _listeners(r)
    r.client_kill_filter(_id=lost["id"])
    _until(lambda: [c["id"] for c in _listeners(r)] not in ([], [lost["id"]]))
    _until(lambda: r.pubsub_numsub(keys.job_changes(8))[0][1] == 1)
    done.set()
    r.publish(keys.job_changes(8), 8)
    threads[0].join(timeout=5)
    assert answers == {8: "seen"} and len(_listeners(r)) == 1
