"""Short jobs released to one GPU together travel in one message and are claimed in one statement;
each still moves once, with its own times and events."""

import time
from datetime import timedelta

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from scheduler.jobs import lifecycle
from scheduler.jobs.models import Job, JobEvent, Status
from scheduler.jobs.sending import bundles
from scheduler.jobs.submission import submit
from workers.job_limit import soft_limit


def job(job_id, kind="noop", work=0.0, attempts=0, gpus=1):
    return Job(id=job_id, kind=kind, work_estimate=work, attempts=attempts, gpus=gpus)


def test_short_jobs_to_one_gpu_share_a_message_and_the_rest_go_alone_in_order():
    jobs = {1: job(1), 2: job(2), 3: job(3, "burn", work=5.0), 4: job(4), 5: job(5, attempts=1), 6: job(6), 7: job(7)}
    released = [("a", 1), ("b", 6), ("a", 2), ("a", 3), ("a", 4), ("a", 5), ("b", 7)]
    assert bundles(released, jobs, 0.1, most=16) == [("a", [1, 2]), ("b", [6, 7]), ("a", [3]), ("a", [4]), ("a", [5])]


def test_a_bundle_holds_at_most_its_seconds_of_expected_work_and_its_most_jobs():
    jobs = {i: job(i, work=0.04) for i in range(1, 6)}
    released = [("a", i) for i in jobs]
    assert bundles(released, jobs, 0.1, most=16) == [("a", [1, 2]), ("a", [3, 4]), ("a", [5])]
    assert bundles(released, jobs, 1.0, most=3) == [("a", [1, 2, 3]), ("a", [4, 5])]
    assert bundles(released, jobs, 0, most=16) == [("a", [i]) for i in jobs]  # bundling off


@pytest.mark.sqlite
def test_a_bundle_claims_its_jobs_once_and_each_keeps_its_own_start_and_events(live_cast, fake_gpus, settings):
    settings.GPU_FEED_SECONDS, settings.GPU_MAX_HELD = 0.5, 8  # no-op jobs feed the GPU past its slots
    [gpu] = fake_gpus([80])
    ids = [j.id for j in submit(live_cast.alice, [{"kind": "noop"}] * 3)]
    jobs, lease, _, _ = lifecycle.claim_next([], ids, "fakehost", gpu.queue)
    assert [j.id for j in jobs] == ids and all(j.status == Status.RUNNING and j.attempts == 1 for j in jobs)
    assert lifecycle.claim_next([], ids, "fakehost", gpu.queue)[0] == []  # a redelivery starts no second attempt
    t0 = timezone.now()
    done = [
        lifecycle.Done(j, lease, {"i": i}, "", t0 + timedelta(seconds=i + 1), t0 + timedelta(seconds=i))
        for i, j in enumerate(jobs)
    ]
    _, _, recorded, _ = lifecycle.claim_next(done, [], "fakehost", gpu.queue)
    assert recorded == set(ids)
    assert lifecycle.claim_next(done, [], "fakehost", gpu.queue)[2] == set()  # recorded once
    for i, row in enumerate(Job.objects.filter(id__in=ids).order_by("id")):
        assert row.status == Status.SUCCEEDED and row.result == {"i": i} and row.lease == ""
        assert (row.started_at, row.finished_at) == (t0 + timedelta(seconds=i), t0 + timedelta(seconds=i + 1))
        statuses = list(JobEvent.objects.filter(job_id=row.id).order_by("id").values_list("status", flat=True))
        assert statuses == [Status.WAITING, Status.QUEUED, Status.RUNNING, Status.SUCCEEDED]


def test_a_bundles_claim_and_the_previous_ones_successes_are_one_statement(live_cast, fake_gpus, settings):
    assert connection.vendor == "postgresql"
    settings.GPU_FEED_SECONDS, settings.GPU_MAX_HELD = 0.5, 8
    [gpu] = fake_gpus([80])
    first, second = ([j.id for j in submit(live_cast.alice, [{"kind": "noop"}] * 4)] for _ in range(2))
    jobs, lease, _, _ = lifecycle.claim_next([], first, "fakehost", gpu.queue)
    done = [lifecycle.Done(j, lease, {}, "", timezone.now()) for j in jobs]
    with CaptureQueriesContext(connection) as statements:
        claimed, _, recorded, more = lifecycle.claim_next(done, second, "fakehost", gpu.queue)
    assert len(statements) == 1 and recorded == set(first) and [j.id for j in claimed] == second and not more


def test_a_bundled_job_is_stopped_at_its_own_soft_limit_not_the_bundles():
    t0 = time.monotonic()
    with pytest.raises(SoftTimeLimitExceeded), soft_limit(0.05):
        time.sleep(5)
    assert time.monotonic() - t0 < 1
    time.sleep(0.1)  # the timer is off once the job is over
