"""A worker claims the next job of its queue while the one before it runs (workers/early_claim.py), so the
GPU waits for no database between them: the job claimed early shows no start until it begins, a cancel
that reaches it first keeps it from beginning without stopping the job before it, and where the job
before it fails it goes back to the head of its queue."""

import pytest
from django.db import connection

from scheduler.dispatch import keys
from scheduler.dispatch.connections import redis_client
from scheduler.jobs import control, lifecycle
from scheduler.jobs.models import Job, JobEvent, Status
from scheduler.jobs.submission import submit
from tests import support
from tests.conftest import running_system
from tests.test_chaining import LONG, committed_together
from tests.test_faults import assert_recorded_once, wait_status
from workers import early_claim, heartbeat

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL only, as claim_next's head")
LEAD_S = 2  # JOB_EARLY_CLAIM_SECONDS of the live system: a 3 s job claims the next one 1 s in
THREE_S = {"kind": "burn", "params": {"seconds": 3, "mib": 1}}


@pytest.fixture(scope="module")
def one_worker(django_db_setup, django_db_blocker, redis_url):
    with running_system(redis_url, hosts=("hostE",), JOB_EARLY_CLAIM_SECONDS=str(LEAD_S)) as system:
        yield system


def claimed_early(job_id: int) -> Job | None:
    return Job.objects.filter(id=job_id, status=Status.RUNNING, lease__startswith=lifecycle.EARLY).first()


def started(job_id: int) -> list[JobEvent]:
    return list(JobEvent.objects.filter(job_id=job_id, status=Status.RUNNING))


def submit_two(system, cast, first: dict, then: dict) -> tuple[int, int]:
    http = system.session(cast.token(cast.staff))
    answer = http.post(f"{system.url}/api/jobs/batch/", json={"jobs": [first, then]}, timeout=30).json()
    return answer["jobs"][0]["id"], answer["jobs"][1]["id"]


def test_a_cancel_that_comes_first_keeps_a_job_claimed_early_from_beginning(live_cast, fake_gpus, settings):
    settings.GPU_SLOTS = 4  # both released at once
    [gpu] = fake_gpus([80])
    running, nxt = submit(live_cast.alice, [LONG, LONG])
    lifecycle.claim_next([], None, "fakehost", gpu.queue)
    job, token = lifecycle.claim_early("fakehost", gpu.queue)
    assert job.id == nxt.id and job.lease == lifecycle.EARLY + token
    early = early_claim.Early(job, token, heartbeat.Heartbeat(redis_client(), [job.id], token, "fakehost"))
    assert control.cancel(job, by="alice")
    assert not early_claim.begin(early)
    assert not lifecycle.begin_early([], job, token, "test", job.started_at)[0]
    assert Job.objects.get(id=nxt.id).status == Status.CANCELLED and started(nxt.id) == []


def test_a_job_given_back_is_the_head_of_its_queue_again_its_attempt_uncounted(live_cast, fake_gpus, settings):
    settings.GPU_SLOTS = 4  # all released at once
    [gpu] = fake_gpus([80])
    running, nxt, last = submit(live_cast.alice, [LONG, LONG, LONG])
    lifecycle.claim_next([], None, "fakehost", gpu.queue)
    job, token = lifecycle.claim_early("fakehost", gpu.queue)
    assert lifecycle.unclaim_early(job.id, token)
    given_back = Job.objects.get(id=nxt.id)
    assert (given_back.status, given_back.lease, given_back.attempts) == (Status.QUEUED, "", 0)
    assert [j.id for j in lifecycle.claim_next([], None, "fakehost", gpu.queue)[0]] == [nxt.id]


def test_the_next_job_is_claimed_while_one_runs_and_begins_with_its_success(one_worker, live_cast):
    first, then = submit_two(one_worker, live_cast, THREE_S, THREE_S)
    early = support.wait_until(lambda: claimed_early(then), 30, "the second job to be claimed early")
    assert Job.objects.get(id=first).status == Status.RUNNING
    assert early.attempts == 1 and started(then) == []  # counted, but shown as begun only when it begins
    a, b = (wait_status(i, Status.SUCCEEDED, timeout=60) for i in (first, then))
    [begun] = started(then)
    assert committed_together(JobEvent.objects.get(job_id=first, status=Status.SUCCEEDED), begun)
    assert b.started_at == begun.at and b.started_at >= a.finished_at and b.attempts == 1
    assert (b.lease, b.queue) == ("", a.queue)
    for job_id in (first, then):
        assert_recorded_once(job_id)
    assert not redis_client().exists(keys.early(then))


def test_a_job_claimed_early_and_cancelled_never_begins_and_the_one_before_runs_on(one_worker, live_cast):
    first, then = submit_two(one_worker, live_cast, THREE_S, THREE_S)
    support.wait_until(lambda: claimed_early(then), 30, "the second job to be claimed early")
    http = one_worker.session(live_cast.token(live_cast.staff))
    assert http.post(f"{one_worker.url}/api/jobs/{then}/cancel/", timeout=30).status_code == 200
    a = wait_status(first, Status.SUCCEEDED, timeout=60)  # its process was not stopped
    assert a.attempts == 1 and Job.objects.get(id=then).status == Status.CANCELLED and started(then) == []
    follow = http.post(f"{one_worker.url}/api/jobs/", json={"kind": "noop"}, timeout=30).json()["id"]
    assert wait_status(follow, Status.SUCCEEDED, timeout=60).queue == a.queue  # the same worker went on


def test_a_job_claimed_early_goes_back_to_its_queue_when_the_one_before_fails(one_worker, live_cast):
    failing = {**THREE_S, "time_limit": 2}  # the claim comes 1 s in, the soft limit at 2 s
    first, then = submit_two(one_worker, live_cast, failing, THREE_S)
    support.wait_until(lambda: claimed_early(then), 30, "the second job to be claimed early")
    a = wait_status(first, Status.FAILED, timeout=60)
    b = wait_status(then, Status.SUCCEEDED, timeout=60)  # claimed again, by its own message
    assert a.error_kind == "timeout" and b.attempts == 1 and len(started(then)) == 1
    assert_recorded_once(then)
