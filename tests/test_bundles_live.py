"""Bundles on real workers: a job that fails inside a bundle is recorded alone, and the jobs after it still run."""

import pytest

from scheduler.jobs.models import JobEvent, Status
from tests.test_e2e import wait_final
from tests.test_faults import assert_recorded_once, only_on

pytestmark = [pytest.mark.slow]


def test_a_failure_inside_a_bundle_leaves_the_rest_of_it_to_run(live_system, live_cast):
    staff = live_system.session(live_cast.token(live_cast.staff))
    specs = [{"kind": "fault", "params": {"mode": "raise"}}, {"kind": "noop"}]  # both fill hostA's two slots
    with only_on(live_system, "hostA"):
        answer = staff.post(f"{live_system.url}/api/jobs/batch/", json={"jobs": specs}).json()
        bad, good = (wait_final(staff, live_system.url, j["id"]) for j in answer["jobs"])
    assert (bad["status"], good["status"]) == (Status.FAILED, Status.SUCCEEDED)
    assert "fault injected" in bad["error"] and bad["attempts"] == good["attempts"] == 1
    started = JobEvent.objects.filter(job_id__in=[bad["id"], good["id"]], status=Status.RUNNING)
    assert len({e.at for e in started}) == 1  # claimed together, in one statement
    for job in (bad, good):
        assert_recorded_once(job["id"])
