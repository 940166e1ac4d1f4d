"""Every 2xx job ends: a job after one that did not succeed is refused, or failed by the reaper."""

import pytest

from scheduler.jobs.models import Job, Status
from scheduler.jobs.reaper import Reaper
from scheduler.jobs.submission import submit

pytestmark = pytest.mark.sqlite


@pytest.mark.parametrize("ended", [Status.FAILED, Status.CANCELLED])
def test_it_refuses_a_job_after_one_that_already_ended_without_success(cast, ended):
    [first] = submit(cast.alice, [{"kind": "noop"}])
    Job.objects.filter(id=first.id).update(status=ended)
    answer = cast.api(cast.alice).post("/api/jobs/", {"kind": "noop", "after": [first.id]}, format="json")
    assert answer.status_code == 400
    assert f"job {first.id} is {ended}" in answer.json()["after"]
    assert Job.objects.count() == 1


def test_it_accepts_a_job_after_one_that_succeeded_or_is_pending(cast):
    done, pending = submit(cast.alice, [{"kind": "noop"}, {"kind": "noop"}])
    Job.objects.filter(id=done.id).update(status=Status.SUCCEEDED)
    answer = cast.api(cast.alice).post("/api/jobs/", {"kind": "noop", "after": [done.id, pending.id]}, format="json")
    assert answer.status_code == 201, answer.content


def test_the_reaper_fails_waiting_jobs_whose_dependency_ended_without_success(cast):
    # The dependency ended while its dependents were being stored: nothing failed them then.
    [first] = submit(cast.alice, [{"kind": "noop"}])
    [second] = submit(cast.alice, [{"kind": "noop", "after": [first.id]}])
    [third] = submit(cast.alice, [{"kind": "noop", "after": [second.id]}])
    [other] = submit(cast.alice, [{"kind": "noop"}])
    Job.objects.filter(id=first.id).update(status=Status.CANCELLED)
    assert Reaper().run() >= 1
    second.refresh_from_db(), third.refresh_from_db(), other.refresh_from_db()
    assert second.status == Status.FAILED and second.error == f"dependency failed: job {first.id} is cancelled"
    assert third.status == Status.FAILED and f"job {second.id} did not succeed" in third.error
    assert other.status == Status.WAITING
    assert second.events.filter(status=Status.FAILED).exists()
