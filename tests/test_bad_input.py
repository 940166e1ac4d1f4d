"""Bad input gets a 4xx with a message, never a 500, and costs no more than its size."""

import json

import pytest
from django.test import Client

from scheduler.jobs.models import Job
from scheduler.jobs.submission import submit

pytestmark = pytest.mark.sqlite


def test_it_answers_a_deeply_nested_body_with_400(cast):
    body = '{"kind": "noop", "params": ' + "[" * 100_000 + "]" * 100_000 + "}"
    answer = cast.api(cast.alice).post("/api/jobs/", body, content_type="application/json")
    assert answer.status_code == 400 and "nested" in answer.json()["detail"]


@pytest.mark.parametrize("limit", ["10" * 30, "99999999999999999999"])
def test_it_caps_a_huge_limit(cast, limit):
    submit(cast.alice, [{"kind": "noop"}])
    answer = cast.api(cast.alice).get(f"/api/jobs/?limit={limit}")
    assert answer.status_code == 200 and answer.json()["count"] == 1


@pytest.mark.parametrize("offset", ["10" * 30])
def test_it_answers_a_huge_offset_with_400_or_an_empty_page(cast, offset):
    answer = cast.api(cast.alice).get(f"/api/jobs/?offset={offset}")
    assert answer.status_code in (200, 400)


def test_it_refuses_an_after_id_beyond_the_integer_range(cast):
    api = cast.api(cast.alice)
    answer = api.post("/api/jobs/", {"kind": "noop", "after": [2**70]}, format="json")
    assert answer.status_code == 400 and "after" in answer.json()


def test_it_answers_an_id_beyond_the_integer_range_in_a_url_with_404(cast):
    answer = cast.api(cast.alice).get(f"/api/jobs/{2**70}/")
    assert answer.status_code == 404


def test_the_web_form_with_an_unknown_kind_is_400_naming_it(cast):
    web = Client()
    web.force_login(cast.alice)
    answer = web.post("/submit/", {"kind": "no-such-kind"})
    assert answer.status_code == 400 and b"no-such-kind" in answer.content
    assert not Job.objects.exists()


@pytest.mark.parametrize("action", ["drain", "resume"])
def test_the_gpu_page_answers_an_unknown_gpu_with_404(cast, action):
    web = Client()
    web.force_login(cast.staff)
    assert web.post("/gpus/", {"uuid": "GPU-nope", action: "1"}).status_code == 404
    answer = cast.api(cast.staff).post(f"/api/gpus/GPU-nope/{action}/")
    assert answer.status_code == 404 and answer.json()["detail"] == "no GPU GPU-nope in the fleet"


def test_an_oversized_batch_is_refused_before_its_items_are_validated(cast, settings):
    jobs = [{"kind": "noop", "priority": "high"} for i in range(settings.BATCH_MAX_JOBS + 1)]
    answer = cast.api(cast.alice).post("/api/jobs/batch/", {"jobs": jobs}, format="json")
    assert answer.status_code == 400
    assert len(answer.content) < 500, answer.content[:500]


def test_an_unknown_parameter_error_is_smaller_than_the_request(cast):
    params = {f"p{i}": i for i in range(2000)}
    body = json.dumps({"kind": "noop", "params": params})
    answer = cast.api(cast.alice).post("/api/jobs/", body, content_type="application/json")
    assert answer.status_code == 400
    assert len(answer.content) < 1000 and "p0" in answer.content.decode()
