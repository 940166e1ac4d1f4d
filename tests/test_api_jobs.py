"""The jobs API: submission, validation, visibility, cancel; every bad input a 4xx with a message."""

import json

import pytest
from django.conf import settings

from scheduler.jobs.models import Job, JobEvent, Status

pytestmark = pytest.mark.sqlite


def submit(client, kind="matmul", **params):
    return client.post("/api/jobs/", {"kind": kind, "params": params}, format="json")


def test_it_refuses_requests_without_a_token(client):
    for path in ("/api/jobs/", "/api/jobs/1/", "/api/kinds/", "/api/gpus/"):
        assert client.get(path).status_code in (401, 403), path
    assert client.post("/api/jobs/", {"kind": "matmul"}, content_type="application/json").status_code in (401, 403)


def test_it_stores_a_submitted_job_waiting_with_its_estimate(cast):
    response = submit(cast.api(cast.alice), n=256)
    assert response.status_code == 201, response.content
    job = Job.objects.get(id=response.json()["id"])
    assert (job.owner, job.kind, job.params["n"], job.status) == (cast.alice, "matmul", 256, Status.WAITING)
    assert job.memory_estimate > 0 and job.work_estimate > 0
    assert job.wait_reason
    assert JobEvent.objects.filter(job=job, status=Status.WAITING).exists()


def test_unknown_kind_is_400_naming_the_known_kinds(cast):
    response = submit(cast.api(cast.alice), kind="nope")
    assert response.status_code == 400
    assert "nope" in response.json()["kind"] and "matmul" in response.json()["kind"]


@pytest.mark.parametrize(
    "params, field",
    [
        ({"n": "abc"}, "n"),
        ({"n": 10**9}, "n"),
        ({"n": True}, "n"),
        ({"n": 64, "dtype": "int7"}, "dtype"),
        ({"n": 64, "colour": "blue"}, "colour"),
    ],
)
def test_bad_parameters_are_400_with_the_field_and_its_range(cast, params, field):
    response = submit(cast.api(cast.alice), **params)
    assert response.status_code == 400
    assert field in response.json()["params"], response.json()
    assert Job.objects.count() == 0


def test_missing_required_parameter_is_400(cast):
    response = submit(cast.api(cast.staff), kind="fault")  # `mode` has no default
    assert response.status_code == 400 and "mode" in response.json()["params"]


def test_malformed_json_is_400(cast):
    response = cast.api(cast.alice).post("/api/jobs/", data='{"kind": "matmul", ', content_type="application/json")
    assert response.status_code == 400
    assert "JSON" in response.json()["detail"]


def test_wrongly_typed_body_is_400(cast):
    response = cast.api(cast.alice).post("/api/jobs/", {"kind": "matmul", "params": [1, 2]}, format="json")
    assert response.status_code == 400 and "params" in response.json()


def test_a_batch_is_stored_whole(cast):
    jobs = [{"kind": "matmul", "params": {"n": 64 * (i + 1)}} for i in range(5)]
    response = cast.api(cast.alice).post("/api/jobs/batch/", {"jobs": jobs}, format="json")
    assert response.status_code == 201
    assert [j["params"]["n"] for j in response.json()["jobs"]] == [64, 128, 192, 256, 320]
    assert Job.objects.filter(owner=cast.alice).count() == 5


def test_a_batch_with_one_bad_job_is_refused_whole(cast):
    jobs = [{"kind": "matmul", "params": {"n": 64}}, {"kind": "matmul", "params": {"n": -1}}]
    response = cast.api(cast.alice).post("/api/jobs/batch/", {"jobs": jobs}, format="json")
    assert response.status_code == 400
    errors = response.json()["jobs"]
    assert errors[0] == {} and "n" in errors[1]["params"]
    assert Job.objects.count() == 0 and JobEvent.objects.count() == 0


def test_an_oversized_batch_is_refused(cast):
    jobs = [{"kind": "noop"}] * (settings.BATCH_MAX_JOBS + 1)
    response = cast.api(cast.alice).post("/api/jobs/batch/", {"jobs": jobs}, format="json")
    assert response.status_code == 400
    assert str(settings.BATCH_MAX_JOBS) in json.dumps(response.json())
    assert Job.objects.count() == 0


def test_another_users_job_is_404_for_every_endpoint(cast):
    job_id = submit(cast.api(cast.alice), n=64).json()["id"]
    bob = cast.api(cast.bob)
    assert bob.get(f"/api/jobs/{job_id}/").status_code == 404
    assert bob.post(f"/api/jobs/{job_id}/cancel/").status_code == 404
    assert bob.get("/api/jobs/").json()["count"] == 0
    assert submit(bob, kind="matmul", n=64).status_code == 201
    after = bob.post("/api/jobs/", {"kind": "noop", "after": [job_id]}, format="json")
    assert after.status_code == 400 and "no such job" in after.json()["after"]
    assert Job.objects.get(id=job_id).status == Status.WAITING


def test_staff_see_every_job(cast):
    submit(cast.api(cast.alice), n=64)
    submit(cast.api(cast.bob), n=64)
    assert cast.api(cast.staff).get("/api/jobs/").json()["count"] == 2


def test_the_list_filters_by_status_and_kind_and_pages(cast):
    api = cast.api(cast.alice)
    for n in (64, 128, 192):
        submit(api, n=n)
    api.post("/api/jobs/", {"kind": "noop"}, format="json")
    assert api.get("/api/jobs/?kind=matmul").json()["count"] == 3
    assert api.get("/api/jobs/?status=succeeded").json()["count"] == 0
    page = api.get("/api/jobs/?limit=2").json()
    assert page["count"] == 4 and len(page["results"]) == 2 and page["next"]


def test_cancelling_a_waiting_job_keeps_it_from_running(cast):
    api = cast.api(cast.alice)
    job_id = submit(api, n=64).json()["id"]
    response = api.post(f"/api/jobs/{job_id}/cancel/")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert api.post(f"/api/jobs/{job_id}/cancel/").status_code == 409


def test_priority_above_the_users_bound_is_400_but_staff_may(cast):
    too_high = settings.USER_PRIORITY_MAX + 1
    spec = {"kind": "noop", "priority": too_high}
    response = cast.api(cast.alice).post("/api/jobs/", spec, format="json")
    assert response.status_code == 400 and str(settings.USER_PRIORITY_MAX) in response.json()["priority"]
    assert cast.api(cast.staff).post("/api/jobs/", spec, format="json").status_code == 201


def test_kinds_lists_every_kind_with_its_parameter_schema(cast):
    kinds = {k["name"]: k for k in cast.api(cast.alice).get("/api/kinds/").json()}
    assert {"matmul", "fft", "stats", "montecarlo", "burn", "noop"} <= set(kinds)
    assert "fault" not in kinds  # staff only
    n = kinds["matmul"]["schema"]["properties"]["n"]
    assert n["type"] == "integer" and n["minimum"] >= 1 and n["maximum"] > n["minimum"]


def test_the_openapi_schema_is_served(cast):
    response = cast.api(cast.alice).get("/api/schema/?format=json")
    assert response.status_code == 200
    schema = json.loads(response.content)
    assert schema["openapi"].startswith("3.") and "/api/jobs/" in schema["paths"]


def test_a_job_no_gpu_could_hold_is_refused_naming_the_largest(cast, fake_gpus):
    fake_gpus(memory_gib=[16, 80])
    api = cast.api(cast.alice)
    response = submit(api, kind="burn", seconds=1, mib=100 * 1024)
    assert response.status_code == 400
    assert "80.0 GiB" in json.dumps(response.json())
    assert submit(api, kind="burn", seconds=1, mib=60 * 1024).status_code == 201
