"""Faults that end an attempt's process, proven through the path the README names: the lost lease, and
the attempt count that makes a job that kills its worker every time fail as poisoned.

Its own system: the dead-GPU path (DEAD_GPU_REQUEUE_AFTER) is set far off, so a job that comes back
can only have come back through its lease."""

import signal

import pytest

from scheduler.jobs.models import Job, JobEvent, Status
from tests.conftest import running_system
from tests.test_e2e import wait_final
from tests.test_faults import assert_recorded_once, events, only_on, post, wait_status

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def lease_system(django_db_setup, django_db_blocker, redis_url):
    with running_system(redis_url, hosts=("hostL1", "hostL2"), DEAD_GPU_REQUEUE_AFTER="600") as system:
        yield system


def test_a_job_whose_worker_is_killed_comes_back_through_its_lost_lease_and_is_recorded_once(lease_system, live_cast):
    token = live_cast.token(live_cast.alice)
    job_id = post(lease_system, token, "/api/jobs/", {"kind": "burn", "params": {"seconds": 3, "mib": 1}}).json()["id"]
    running = wait_status(job_id, Status.RUNNING)
    host = next(h for h in lease_system.workers if running.queue.endswith(h))
    lease_system.workers[host].kill(signal.SIGKILL)  # the worker and its pool: no redelivery, no goodbye
    try:
        job = wait_final(lease_system.session(token), lease_system.url, job_id, timeout=90)
    finally:
        lease_system.restart_worker(host)
    assert job["status"] == "succeeded" and job["attempts"] == 2, job
    assert any("stopped renewing its lease (worker lost)" in m for m in events(job_id)), events(job_id)
    assert not any("stopped publishing telemetry" in m for m in events(job_id))
    assert_recorded_once(job_id)


def test_a_job_that_kills_its_worker_process_three_times_fails_as_poisoned_and_the_worker_goes_on(
    lease_system, live_cast
):
    token = live_cast.token(live_cast.staff)
    with only_on(lease_system, "hostL1"):
        spec = {"kind": "fault", "params": {"mode": "exit"}}  # os._exit in the pool process, every attempt
        job_id = post(lease_system, token, "/api/jobs/", spec).json()["id"]
        job = wait_final(lease_system.session(token), lease_system.url, job_id, timeout=120)
        after = post(lease_system, token, "/api/jobs/", {"kind": "noop"}).json()["id"]
        next_job = wait_final(lease_system.session(token), lease_system.url, after, timeout=60)
    assert (job["status"], job["error_kind"], job["attempts"]) == ("failed", "poisoned", 3), job
    assert "poisoned: 3 attempts ended without a result" in job["error"]
    started = JobEvent.objects.filter(job_id=job_id, status=Status.RUNNING).count()
    assert started == 3  # three real attempts, each ended by its process dying
    assert next_job["status"] == "succeeded" and next_job["queue"] == "cpu.hostL1"
    assert Job.objects.get(id=job_id).status == Status.FAILED
    assert_recorded_once(job_id)
