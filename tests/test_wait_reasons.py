"""Wait reasons tell the truth: the job waited for is named, rounds keep the reason current, and the
position counts what the release order (priority, fair share, age) really puts ahead."""

import json
import time

import pytest

from scheduler.dispatch import keys
from scheduler.jobs import lifecycle
from scheduler.jobs.models import Job, Status
from scheduler.jobs.release import release
from scheduler.jobs.submission import submit

pytestmark = pytest.mark.sqlite


def _reason(job: Job) -> str:
    job.refresh_from_db()
    return job.wait_reason


def test_it_names_the_unfinished_job_a_job_waits_for_and_updates_it_each_round(transactional_db, live_cast, fake_gpus):
    [gpu] = fake_gpus([80])
    [first] = submit(live_cast.alice, [{"kind": "noop"}])
    [second] = submit(live_cast.alice, [{"kind": "noop", "after": [first.id]}])
    assert _reason(second) == f"waiting for job {first.id} (queued)"
    claimed, lease = lifecycle.claim(first.id, "fakehost", gpu.queue)
    release()
    assert _reason(second) == f"waiting for job {first.id} (running)"
    api = live_cast.api(live_cast.alice).get(f"/api/jobs/{second.id}/").json()
    assert api["wait_reason"] == f"waiting for job {first.id} (running)" and api["ahead"] is None


def test_a_job_whose_dependency_succeeded_waits_for_room_again(transactional_db, live_cast, fake_gpus, settings):
    settings.GPU_SLOTS = 1
    [gpu] = fake_gpus([80])
    [first, blocker] = submit(live_cast.alice, [{"kind": "noop"}, {"kind": "noop", "priority": 5}])
    [second] = submit(live_cast.alice, [{"kind": "noop", "after": [first.id]}])
    assert _reason(second).startswith(f"waiting for job {first.id} (")
    # The GPU holds the blocker; first runs elsewhere and succeeds: second now waits for room, not for it.
    Job.objects.filter(id=first.id).update(status=Status.SUCCEEDED)
    release()
    assert Job.objects.get(id=blocker.id).status == Status.QUEUED
    assert _reason(second) != f"waiting for job {first.id} (waiting)"
    assert not _reason(second).startswith("waiting for job")


def test_a_job_after_several_names_them_all(transactional_db, live_cast):
    a, b = submit(live_cast.alice, [{"kind": "noop"}, {"kind": "noop"}])
    [c] = submit(live_cast.alice, [{"kind": "noop", "after": [a.id, b.id]}])
    assert _reason(c) == f"waiting for jobs {a.id} (waiting), {b.id} (waiting)"


def test_behind_counts_the_fair_share_order_not_age_alone(transactional_db, live_cast, r):
    # No GPU is alive, so everything waits; alice used an hour of GPU time recently, bob none.
    r.hset(keys.USAGE, str(live_cast.alice.id), json.dumps([3600.0, time.time()]))
    alices = submit(live_cast.alice, [{"kind": "noop"}] * 3)
    [bobs] = submit(live_cast.bob, [{"kind": "noop"}])
    api = live_cast.api(live_cast.bob)
    assert api.get(f"/api/jobs/{bobs.id}/").json()["ahead"] == {"jobs": 0, "higher_priority": 0}
    mine = live_cast.api(live_cast.alice).get(f"/api/jobs/{alices[0].id}/").json()
    assert mine["ahead"] == {"jobs": 1, "higher_priority": 0}
