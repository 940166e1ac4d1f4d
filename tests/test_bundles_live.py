"""Bundles on real workers: a job that fails inside a bundle is recorded alone and the jobs after it still
run; a running job cancelled inside a bundle stops, though its bundle's task is named after another job.

Its own system, of one worker, whose releaser bundles jobs of up to 200 s of expected work, so a long burn
can share a bundle."""

import pytest

from scheduler.jobs.models import Job, JobEvent, Status
from tests.conftest import running_system
from tests.test_e2e import wait_final
from tests.test_faults import assert_recorded_once, wait_status

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def bundle_system(django_db_setup, django_db_blocker, redis_url):
    with running_system(redis_url, hosts=("hostK",), JOB_BUNDLE_SECONDS="200") as system:
        yield system


def batch(system, session, specs: list[dict]) -> list[int]:
    answer = session.post(f"{system.url}/api/jobs/batch/", json={"jobs": specs})
    assert answer.status_code == 201, answer.text
    return [j["id"] for j in answer.json()["jobs"]]  # both fill the worker's two slots: one bundle


def test_a_failure_inside_a_bundle_leaves_the_rest_of_it_to_run(bundle_system, live_cast):
    staff = bundle_system.session(live_cast.token(live_cast.staff))
    ids = batch(bundle_system, staff, [{"kind": "fault", "params": {"mode": "raise"}}, {"kind": "noop"}])
    bad, good = (wait_final(staff, bundle_system.url, i) for i in ids)
    assert (bad["status"], good["status"]) == (Status.FAILED, Status.SUCCEEDED)
    assert "fault injected" in bad["error"] and bad["attempts"] == good["attempts"] == 1
    started = JobEvent.objects.filter(job_id__in=ids, status=Status.RUNNING)
    assert len({e.at for e in started}) == 1  # claimed together, in one statement
    for job_id in ids:
        assert_recorded_once(job_id)


def test_a_running_job_cancelled_inside_a_bundle_stops_and_frees_the_worker(bundle_system, live_cast):
    http = bundle_system.session(live_cast.token(live_cast.alice))
    first, long = batch(bundle_system, http, [{"kind": "noop"}, {"kind": "burn", "params": {"seconds": 120, "mib": 1}}])
    running = wait_status(long, Status.RUNNING)
    http.post(f"{bundle_system.url}/api/jobs/{long}/cancel/")
    # The bundle's task is not job-<long>: the cancel finds it in the long job's lease and kills it.
    follow = http.post(f"{bundle_system.url}/api/jobs/", json={"kind": "noop"}).json()["id"]
    assert wait_final(http, bundle_system.url, follow, timeout=60)["status"] == Status.SUCCEEDED
    assert Job.objects.get(id=long).status == Status.CANCELLED and running.queue
    # The first job's success died with the bundle's process before it was recorded: it comes back
    # through its lost lease and runs again, once at a time.
    assert wait_final(http, bundle_system.url, first, timeout=60)["status"] == Status.SUCCEEDED
    for job_id in (first, long, follow):
        assert_recorded_once(job_id)
