"""Waiting for a job: the long poll answers when the job changes (woken through Redis), not by polling."""

import threading
import time

import pytest
from django.db import connection

from scheduler.jobs import changes, lifecycle
from scheduler.jobs.models import JobEvent, Status
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
