"""A lone job for an idle GPU is released by its submission in one statement; anything else is the round's."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from scheduler.dispatch import keys
from scheduler.dispatch.connections import redis_client
from scheduler.jobs.idle_release import release_to_idle
from scheduler.jobs.models import Job, Quota, Status
from scheduler.jobs.submission import submit


@pytest.fixture
def releaser_alive(redis_url):
    """A releaser loop says it is alive, so a submission's nudge only wakes it (none runs here)."""
    redis_client().set(keys.RELEASER_ALIVE, 1)


def status(job: Job) -> str:
    job.refresh_from_db()
    return job.status


def test_a_lone_job_for_an_idle_gpu_is_released_by_its_submission(live_cast, fake_gpus, releaser_alive):
    [gpu] = fake_gpus([80])
    [job] = submit(live_cast.alice, [{"kind": "noop"}])
    assert status(job) == Status.QUEUED and job.queue == gpu.queue


def test_it_is_one_statement(live_cast, fake_gpus, releaser_alive, monkeypatch):
    fake_gpus([80])
    monkeypatch.setattr("scheduler.jobs.submission.release_or_nudge", lambda jobs: None)
    [job] = submit(live_cast.alice, [{"kind": "noop"}])
    with CaptureQueriesContext(connection) as statements:
        assert release_to_idle(job)
    assert len(statements) == 1 and status(job) == Status.QUEUED


def test_a_busy_gpu_or_a_job_waiting_ahead_leaves_it_to_the_round(live_cast, fake_gpus, releaser_alive):
    fake_gpus([80])
    [first] = submit(live_cast.alice, [{"kind": "noop"}])
    [second] = submit(live_cast.alice, [{"kind": "noop"}])  # the only GPU holds the first
    fake_gpus([80], host="otherhost")
    [third] = submit(live_cast.bob, [{"kind": "noop"}])  # an idle GPU now, but the second waits ahead
    assert [status(first), status(second), status(third)] == [Status.QUEUED, Status.WAITING, Status.WAITING]


def test_a_user_under_a_gpu_quota_is_left_to_the_round(live_cast, fake_gpus, releaser_alive):
    fake_gpus([80])
    Quota.objects.create(user=live_cast.alice, max_gpus=1)
    [job] = submit(live_cast.alice, [{"kind": "noop"}])
    assert status(job) == Status.WAITING
