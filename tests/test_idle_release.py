"""A lone job for an idle GPU is stored queued by the statement that stores it; anything else is the round's."""

import psycopg
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from scheduler.dispatch import keys
from scheduler.dispatch.connections import redis_client
from scheduler.jobs.models import Job, Quota, Status
from scheduler.jobs.release import RELEASE_LOCK_ID
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


def test_it_is_stored_queued_by_the_one_statement_that_stores_it(live_cast, fake_gpus, releaser_alive):
    [gpu] = fake_gpus([80])
    with CaptureQueriesContext(connection) as statements:
        [job] = submit(live_cast.alice, [{"kind": "noop"}])
    # one transaction: the owner's allowance read under its row lock, then the statement that counts,
    # stores and releases
    sent = [q["sql"] for q in statements.captured_queries]
    assert len(sent) == 4 and (sent[0], sent[-1]) == ("BEGIN", "COMMIT") and job.status == Status.QUEUED
    assert list(job.events.values_list("status", "message")) == [
        (Status.WAITING, "submitted"),
        (Status.QUEUED, f"routed to {gpu.queue}: {job.route_reason}"),
    ]
    assert status(job) == Status.QUEUED and job.gpu_uuid == gpu.uuid and job.queued_at and not job.wait_reason


def test_its_message_reaches_the_gpus_queue_after_the_commit(live_cast, fake_gpus, releaser_alive):
    [gpu] = fake_gpus([80])
    [job] = submit(live_cast.alice, [{"kind": "noop"}])
    assert redis_client().llen(gpu.queue) == 1


def test_a_release_round_under_way_leaves_it_to_the_round(live_cast, fake_gpus, releaser_alive):
    fake_gpus([80])
    db = connection.settings_dict
    # A round holds the lock in its own transaction, on its own connection, until it commits.
    with psycopg.connect(dbname=db["NAME"], user=db["USER"], host=db["HOST"], port=db["PORT"]) as round_:
        round_.execute("SELECT pg_advisory_xact_lock(%s)", [RELEASE_LOCK_ID])
        [job] = submit(live_cast.alice, [{"kind": "noop"}])
    assert status(job) == Status.WAITING and list(job.events.values_list("status", flat=True)) == [Status.WAITING]


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
