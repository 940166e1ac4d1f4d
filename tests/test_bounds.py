"""Bounds on what a user controls, each refusal a 4xx with a message; drain and resume by staff."""

import threading

import pytest
from django.db import connection

from scheduler.jobs.models import Job, Quota, Status
from scheduler.jobs.submission import SubmissionError, submit

pytestmark = pytest.mark.sqlite


def test_too_many_unfinished_jobs_is_429_with_the_limit(cast, settings):
    settings.USER_MAX_WAITING_JOBS = 3
    api = cast.api(cast.alice)
    assert api.post("/api/jobs/batch/", {"jobs": [{"kind": "noop"}] * 3}, format="json").status_code == 201
    response = api.post("/api/jobs/", {"kind": "noop"}, format="json")
    assert response.status_code == 429 and "limit is 3" in response.json()["detail"]
    assert Job.objects.count() == 3


def test_the_waiting_quota_holds_under_concurrent_submission(live_cast):
    Quota.objects.create(user=live_cast.alice, max_waiting=10)
    refused = []

    def send():
        try:
            submit(live_cast.alice, [{"kind": "noop"}] * 3, as_batch=True)
        except SubmissionError as exc:
            refused.append(exc.status)
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert Job.objects.filter(owner=live_cast.alice).count() == 9  # 3 batches of 3 fit under 10
    assert refused == [429] * 5


def test_submitting_faster_than_the_rate_limit_is_429(cast, settings):
    settings.SUBMIT_RATE = "3/min"
    api = cast.api(cast.alice)
    codes = [api.post("/api/jobs/", {"kind": "noop"}, format="json").status_code for _ in range(4)]
    assert codes == [201, 201, 201, 429]
    assert "throttled" in api.post("/api/jobs/", {"kind": "noop"}, format="json").json()["detail"].lower()


def test_the_rate_limit_counts_jobs_not_requests(cast, settings):
    settings.SUBMIT_RATE = "5/min"
    api = cast.api(cast.alice)
    batch = {"jobs": [{"kind": "noop"}] * 3}
    assert api.post("/api/jobs/batch/", batch, format="json").status_code == 201
    refused = api.post("/api/jobs/batch/", batch, format="json")  # 6 jobs in 2 requests: over 5
    assert refused.status_code == 429 and "5/min" in refused.json()["detail"]
    grid = {"kind": "fft", "params": {"dims": 1}, "grid": {"n": [256, 512, 1024]}}
    assert api.post("/api/arrays/", grid, format="json").status_code == 429
    assert api.post("/api/jobs/", {"kind": "noop"}, format="json").status_code == 201  # the 2 left
    assert cast.api(cast.bob).post("/api/jobs/batch/", batch, format="json").status_code == 201  # per user
    assert Job.objects.count() == 3 + 1 + 3


def test_a_body_over_the_limit_is_refused_and_stores_nothing(cast, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2000
    body = {"jobs": [{"kind": "noop"}] * 200}
    response = cast.api(cast.alice).post("/api/jobs/batch/", body, format="json")
    assert response.status_code in (400, 413)
    assert Job.objects.count() == 0


def test_staff_drain_a_gpu_and_it_takes_no_new_jobs_until_resumed(live_cast, fake_gpus):
    [a, b] = fake_gpus([80, 80])
    staff, alice = live_cast.api(live_cast.staff), live_cast.api(live_cast.alice)
    assert alice.post(f"/api/gpus/{a.uuid}/drain/", {}, format="json").status_code == 403
    drained = staff.post(f"/api/gpus/{a.uuid}/drain/", {"reason": "fan noise"}, format="json")
    assert drained.status_code == 200 and drained.json()["draining"] and drained.json()["drain_reason"] == "fan noise"
    submit(live_cast.alice, [{"kind": "noop"}] * 4, as_batch=True)
    assert set(Job.objects.filter(status=Status.QUEUED).values_list("queue", flat=True)) == {b.queue}
    assert staff.post(f"/api/gpus/{a.uuid}/resume/").json()["draining"] is False
    assert Job.objects.filter(status=Status.QUEUED, queue=a.queue).count() == 2
    assert staff.post("/api/gpus/GPU-nope/drain/", {}, format="json").status_code == 404


def test_another_users_array_is_404(cast):
    response = cast.api(cast.alice).post("/api/arrays/", {"kind": "noop", "grid": {}}, format="json")
    assert response.status_code == 400 and "grid" in response.json()
    array = cast.api(cast.alice).post("/api/arrays/", {"kind": "fft", "grid": {"n": [256, 512]}}, format="json").json()
    bob = cast.api(cast.bob)
    assert bob.get(f"/api/arrays/{array['id']}/").status_code == 404
    assert bob.post(f"/api/arrays/{array['id']}/cancel/").status_code == 404


def test_a_grid_that_multiplies_past_the_batch_limit_is_refused_before_it_is_expanded(cast):
    # Six lists of 100 values: 10**12 combinations, which would exhaust memory if expanded first.
    grid = {f"p{i}": list(range(100)) for i in range(6)}
    response = cast.api(cast.alice).post("/api/arrays/", {"kind": "noop", "grid": grid}, format="json")
    assert response.status_code == 400
    assert "1000000000000 combinations" in response.json()["grid"]
    assert not Job.objects.exists()
