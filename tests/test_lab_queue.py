"""What every user sees of the lab: others' jobs as squeue shows them (kind, owner, state, GPU, times),
never their ids, parameters or results; who holds each GPU; fair share; and finding one's own jobs."""

import json
import time

import pytest
from django.test import Client

from scheduler.dispatch import keys
from scheduler.jobs.models import Job, Quota, Status

pytestmark = pytest.mark.sqlite


def _web(user) -> Client:
    web = Client()
    web.force_login(user)
    return web


def _running(user, gpu, kind="noop") -> Job:
    return Job.objects.create(
        owner=user, kind=kind, time_limit=60, status=Status.RUNNING, queue=gpu.queue, params={"secret": 1}
    )


def test_it_shows_everyone_the_lab_queue_without_others_ids(cast, fake_gpus):
    [gpu] = fake_gpus([80])
    bobs = _running(cast.bob, gpu, kind="fft")
    mine = Job.objects.create(owner=cast.alice, kind="noop", time_limit=60, wait_reason="waiting for a GPU with room")
    body = cast.api(cast.alice).get("/api/queue/").json()
    rows = {row["owner"]: row for row in body["jobs"]}
    assert body["total"] == 2
    assert rows["bob"] | {"created_at": None, "started_at": None} == {
        "id": None, "mine": False, "kind": "fft", "owner": "bob", "status": "running", "gpu": gpu.queue,
        "created_at": None, "queued_at": None, "started_at": None, "wait_reason": "",
    }  # fmt: skip
    assert rows["alice"]["id"] == mine.id and rows["alice"]["wait_reason"]
    page = _web(cast.alice).get("/queue/").content.decode()
    assert "bob" in page and "fft" in page and f"/jobs/{bobs.id}/" not in page and f"/jobs/{mine.id}/" in page
    assert "secret" not in page
    assert _web(cast.alice).get(f"/jobs/{bobs.id}/").status_code == 404  # the isolation holds
    assert f"/jobs/{bobs.id}/" in _web(cast.staff).get("/queue/").content.decode()
    staff_rows = cast.api(cast.staff).get("/api/queue/").json()["jobs"]
    assert {row["id"] for row in staff_rows} == {bobs.id, mine.id}


def test_the_gpu_page_says_who_holds_each_gpu(cast, fake_gpus):
    mine_gpu, bobs_gpu = fake_gpus([80, 80])
    mine, bobs = _running(cast.alice, mine_gpu), _running(cast.bob, bobs_gpu, kind="fft")
    page = _web(cast.alice).get("/gpus/").content.decode()
    assert "bob · fft" in page and f"/jobs/{bobs.id}/" not in page
    assert f'<a href="/jobs/{mine.id}/">{mine.id}</a> alice · noop' in page
    api = {row["queue"]: row["holder"] for row in cast.api(cast.alice).get("/api/gpus/").json()}
    assert api[bobs_gpu.queue] == {"owner": "bob", "kind": "fft", "id": None}
    assert f"/jobs/{bobs.id}/" in _web(cast.staff).get("/gpus/").content.decode()


def test_it_shows_each_users_usage_against_fair_share_and_quota(cast, fake_gpus, r):
    [gpu] = fake_gpus([80])
    _running(cast.bob, gpu)
    Job.objects.create(owner=cast.alice, kind="noop", time_limit=60)
    Quota.objects.create(user=cast.bob, max_gpus=2)
    r.hset(keys.USAGE, str(cast.bob.id), json.dumps([3 * 3600.0, time.time()]))
    r.hset(keys.USAGE, str(cast.alice.id), json.dumps([3600.0, time.time()]))
    users = {u["user"]: u for u in cast.api(cast.alice).get("/api/queue/").json()["users"]}
    assert users["bob"]["running"] == 1 and users["bob"]["gpus"] == 1 and users["bob"]["max_gpus"] == 2
    assert users["alice"]["waiting"] == 1 and users["alice"]["max_gpus"] is None
    assert round(users["bob"]["usage_gpu_hours"], 1) == 3.0 and round(users["bob"]["usage_share"], 2) == 0.75
    assert users["alice"]["fair_share"] == 0.5
    page = _web(cast.alice).get("/queue/").content.decode()
    assert "1 of 2 (quota)" in page and "3.00 GPU h" in page


def _own_jobs(user, n: int, kind: str, status=Status.SUCCEEDED):
    Job.objects.bulk_create([Job(owner=user, kind=kind, time_limit=60, status=status) for _ in range(n)])


def test_the_job_list_filters_by_kind_and_search_and_counts_the_total(cast):
    _own_jobs(cast.alice, 60, "fft")
    _own_jobs(cast.alice, 3, "matmul", Status.FAILED)
    _own_jobs(cast.bob, 5, "matmul")
    web = _web(cast.alice)
    page = web.get("/").content.decode()
    assert "63 jobs · page 1 of 2" in page
    assert "3 jobs" in web.get("/?kind=matmul").content.decode()
    assert "3 jobs" in web.get("/?q=matm").content.decode()
    assert "3 jobs" in web.get("/?status=failed&kind=matmul").content.decode()
    one = Job.objects.filter(owner=cast.alice).first()
    assert "1 job<" in web.get(f"/?q={one.id}").content.decode()
    bogus = web.get("/?status=bogus")
    assert bogus.status_code == 400 and "unknown status" in bogus.content.decode()
    assert "<th>owner</th>" not in page
    assert "<th>owner</th>" in _web(cast.staff).get("/").content.decode()


def test_the_api_refuses_an_unknown_status_or_kind(cast):
    api = cast.api(cast.alice)
    answer = api.get("/api/jobs/?status=bogus")
    assert answer.status_code == 400 and "unknown status 'bogus'" in answer.json()["status"]
    assert api.get("/api/jobs/?kind=nope").status_code == 400
    _own_jobs(cast.alice, 2, "fft")
    assert api.get("/api/jobs/?q=fft").json()["count"] == 2


def test_a_search_for_a_digit_that_is_not_a_number_is_no_error(cast):
    # Found by the API fuzzer: "¹".isdigit() is True, but it is not an id.
    assert cast.api(cast.alice).get("/api/jobs/?q=¹").status_code == 200
    assert _web(cast.alice).get("/?q=¹").status_code == 200
    assert cast.api(cast.alice).get("/api/jobs/?q=%00").status_code == 400  # and a NUL is a 400, not a 500
