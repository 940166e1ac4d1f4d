"""No one sees more than they should: other users' jobs on the GPU view, metrics, password guessing."""

from dataclasses import replace

import pytest
from django.test import Client

from scheduler.dispatch.connections import redis_client
from scheduler.fleet import store as fleet
from scheduler.jobs.models import Job, Status
from scheduler.jobs.submission import submit

pytestmark = pytest.mark.sqlite


def _running(user, gpu) -> Job:
    return Job.objects.create(owner=user, kind="noop", time_limit=60, status=Status.RUNNING, queue=gpu.queue)


def test_the_gpu_view_hides_other_users_jobs_and_process_ids(cast, fake_gpus):
    mine_gpu, theirs_gpu = fake_gpus([80, 80])
    mine, theirs = _running(cast.alice, mine_gpu), _running(cast.bob, theirs_gpu)
    for gpu, job in ((mine_gpu, mine), (theirs_gpu, theirs)):
        fleet.publish(redis_client(), replace(gpu, running_job=job.id, processes=({"pid": 4242, "memory": 1},)), 60)
    rows = {row["uuid"]: row for row in cast.api(cast.alice).get("/api/gpus/").json()}
    assert rows[mine_gpu.uuid]["running_job"] == mine.id
    assert rows[mine_gpu.uuid]["snapshot"]["running_job"] == mine.id
    assert rows[theirs_gpu.uuid]["running_job"] is None
    assert rows[theirs_gpu.uuid]["snapshot"]["running_job"] is None
    assert all(row["snapshot"]["processes"] == [] for row in rows.values())
    staff = {row["uuid"]: row for row in cast.api(cast.staff).get("/api/gpus/").json()}
    assert staff[theirs_gpu.uuid]["running_job"] == theirs.id
    assert staff[theirs_gpu.uuid]["snapshot"]["processes"] == [{"pid": 4242, "memory": 1}]
    web = Client()
    web.force_login(cast.alice)
    assert f"/jobs/{theirs.id}/" not in web.get("/gpus/").content.decode()


def test_metrics_need_the_token_or_a_staff_login(cast, settings):
    settings.METRICS_TOKEN = "prom-secret"
    anonymous = Client().get("/metrics")
    assert anonymous.status_code == 401 and anonymous["WWW-Authenticate"].startswith("Bearer")
    assert Client().get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert Client().get("/metrics", headers={"Authorization": "Bearer prom-secret"}).status_code == 200
    web = Client()
    web.force_login(cast.alice)
    assert web.get("/metrics").status_code == 401
    web.force_login(cast.staff)
    assert b"gpuq_jobs" in web.get("/metrics").content


def test_without_a_metrics_token_no_bearer_is_accepted(cast, settings):
    settings.METRICS_TOKEN = ""
    assert Client().get("/metrics", headers={"Authorization": "Bearer "}).status_code == 401


def test_sign_in_attempts_are_throttled_per_address_and_per_name(cast, settings):
    settings.LOGIN_RATE = "3/min"
    web = Client()
    codes = [web.post("/login/", {"username": "alice", "password": f"guess{i}"}).status_code for i in range(4)]
    assert codes == [200, 200, 200, 429]
    # Another address guessing the same name is stopped too, and the admin's sign-in page is the same door.
    other = Client(REMOTE_ADDR="10.0.0.9")
    assert other.post("/admin/login/", {"username": "alice", "password": "x"}).status_code == 429
    assert other.post("/login/", {"username": "bob", "password": "bob-secret-pw"}).status_code == 302


def test_the_web_form_counts_against_the_submission_rate(cast, settings):
    settings.SUBMIT_RATE = "2/min"
    web = Client()
    web.force_login(cast.alice)
    codes = [web.post("/submit/", {"kind": "noop"}).status_code for _ in range(3)]
    assert codes == [302, 302, 429]


def test_a_signed_in_post_without_the_csrf_token_is_refused(cast):
    """Another site's page cannot submit or cancel with the user's session: every POST needs the token."""
    [job] = submit(cast.alice, [{"kind": "noop"}])
    web = Client(enforce_csrf_checks=True)
    web.force_login(cast.alice)
    assert web.post("/submit/", {"kind": "noop"}).status_code == 403
    assert web.post("/api/jobs/", {"kind": "noop"}, content_type="application/json").status_code == 403
    assert web.post(f"/api/jobs/{job.id}/cancel/").status_code == 403
    assert web.post(f"/jobs/{job.id}/", {"cancel": "1"}).status_code == 403
    assert Job.objects.count() == 1 and Job.objects.get(id=job.id).status == Status.WAITING
    web.get("/submit/")  # the form's page sets the token's cookie
    token = web.cookies["csrftoken"].value
    assert web.post("/submit/", {"kind": "noop", "csrfmiddlewaretoken": token}).status_code == 302
    answer = web.post("/api/jobs/", {"kind": "noop"}, content_type="application/json", headers={"X-CSRFToken": token})
    assert answer.status_code == 201
