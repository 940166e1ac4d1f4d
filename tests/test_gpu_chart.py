"""A GPU's chart over the API and on its page: telemetry over the chosen range, and the jobs that ran on
the GPU meanwhile, shown to everyone as the lab queue shows them (kind, owner, state, times), their ids
to their owner and staff only."""

import json
import math
import time
from datetime import UTC, datetime

import pytest
from django.test import Client

from scheduler.dispatch import keys
from scheduler.fleet import rollup
from scheduler.jobs.models import Job, Status

pytestmark = pytest.mark.sqlite
HOUR = 3600


def _ago(seconds: float) -> datetime:
    return datetime.fromtimestamp(time.time() - seconds, UTC)


def _ran(user, queue: str, started: float, finished: float | None, kind="burn", **fields) -> Job:
    """A job that ran on `queue` from `started` until `finished` seconds ago (None: it still runs)."""
    return Job.objects.create(
        owner=user,
        kind=kind,
        time_limit=HOUR,
        queue=queue,
        status=Status.RUNNING if finished is None else Status.SUCCEEDED,
        started_at=_ago(started),
        finished_at=None if finished is None else _ago(finished),
        params={"secret": 1},
        **fields,
    )


def hours_of_minutes(r, uuid: str, hours: float, memory_total: int = 80 * 2**30) -> None:
    """Minute points over the last `hours`, as the publishing path would have left them: a load that
    rises and falls, three readings a minute apart by up to 27 points."""
    now, pipe = rollup.minute(time.time()), r.pipeline(transaction=False)
    for m in range(int(hours * 60), 0, -1):
        level, memory = 50 + 35 * math.sin(m / 25), int(memory_total * (0.4 + 0.25 * math.sin(m / 70)))
        readings = [
            {"t": now - 60 * m + s, "utilization": min(100.0, max(0.0, level + d)), "memory_used": memory}
            for s, d in ((0, -15), (20, 0), (40, 12))
        ]
        pipe.rpush(keys.gpu_minutes(uuid), json.dumps(rollup.fold(readings)))
    pipe.execute()


def _chart(cast, user, gpu, minutes=None) -> dict:
    query = "" if minutes is None else f"?minutes={minutes}"
    response = cast.api(user).get(f"/api/gpus/{gpu.uuid}/chart/{query}")
    assert response.status_code == 200, response.content
    return response.json()


def test_it_gives_everyone_the_jobs_that_ran_on_the_gpu_and_only_their_own_ids(cast, fake_gpus):
    gpu, other = fake_gpus([80, 80])
    bobs = _ran(cast.bob, gpu.queue, started=2 * HOUR, finished=HOUR, kind="fft")
    mine = _ran(cast.alice, gpu.queue, started=600, finished=None)
    _ran(cast.alice, other.queue, started=600, finished=None)  # another GPU's
    _ran(cast.bob, gpu.queue, started=5 * HOUR, finished=4 * HOUR)  # before the range
    jobs = _chart(cast, cast.alice, gpu)["jobs"]
    assert [(j["id"], j["owner"], j["kind"], j["status"], j["mine"]) for j in jobs] == [
        (mine.id, "alice", "burn", "running", True),
        (None, "bob", "fft", "succeeded", False),
    ]
    assert jobs[0]["finished_at"] is None and datetime.fromisoformat(jobs[1]["finished_at"]) == bobs.finished_at
    assert "secret" not in json.dumps(jobs)
    assert [j["id"] for j in _chart(cast, cast.staff, gpu)["jobs"]] == [mine.id, bobs.id]


def test_a_multi_gpu_job_is_marked_on_each_of_its_gpus(cast, fake_gpus):
    leader, member, elsewhere = fake_gpus([80, 80, 80])
    gang = [{"queue": g.queue, "uuid": g.uuid} for g in (leader, member)]
    job = _ran(cast.alice, leader.queue, started=60, finished=None, gpus=2, gang=gang)
    assert [j["id"] for j in _chart(cast, cast.alice, member)["jobs"]] == [job.id]
    assert _chart(cast, cast.alice, elsewhere)["jobs"] == []


def test_the_range_chooses_between_recent_readings_and_minute_points_over_hours(cast, fake_gpus, r):
    [gpu] = fake_gpus([80])
    hours_of_minutes(r, gpu.uuid, hours=24)
    day, short = _chart(cast, cast.alice, gpu, 1440), _chart(cast, cast.alice, gpu, 15)
    assert day["step"] == 60 and day["end"] - day["start"] == 24 * HOUR
    assert len(day["points"]) == 24 * 60 + 1  # every minute point, then the last seconds folded into one
    assert day["points"][0]["t"] < day["start"] + 60 and day["points"][0]["n"] == 3
    assert short["step"] == 1 and len(short["points"]) == 15 + 1  # the minute points in range, then the reading
    assert short["points"][-1]["n"] == 1 and short["memory_total"] == gpu.memory_total


def test_it_answers_400_for_a_range_out_of_bounds_and_404_for_an_unknown_gpu(cast, fake_gpus):
    [gpu] = fake_gpus([80])
    api = cast.api(cast.alice)
    for bad in ("0", "lots", str(7 * 24 * 60 + 1)):
        response = api.get(f"/api/gpus/{gpu.uuid}/chart/?minutes={bad}")
        assert response.status_code == 400 and "minutes" in response.json()
    assert api.get("/api/gpus/GPU-nowhere/chart/").status_code == 404


def test_it_is_for_signed_in_users_only(cast, fake_gpus):
    [gpu] = fake_gpus([80])
    assert Client().get(f"/api/gpus/{gpu.uuid}/chart/").status_code in (401, 403)
    assert Client().get(f"/gpus/{gpu.uuid}/").status_code == 302  # to the login page


def test_the_chart_is_in_the_openapi_schema(cast):
    schema = cast.api(cast.alice).get("/api/schema/?format=json").json()
    chart = schema["paths"]["/api/gpus/{uuid}/chart/"]["get"]
    assert [p["name"] for p in chart["parameters"] if p["in"] == "query"] == ["minutes"]
    assert "utilization_max" in schema["components"]["schemas"]["SeriesPoint"]["properties"]


def test_the_gpu_page_lists_the_jobs_of_its_range_and_links_only_to_visible_ones(cast, fake_gpus):
    [gpu] = fake_gpus([80])
    bobs = _ran(cast.bob, gpu.queue, started=2 * HOUR, finished=HOUR, kind="fft")
    mine = _ran(cast.alice, gpu.queue, started=600, finished=None)
    web = Client()
    web.force_login(cast.alice)
    page = web.get(f"/gpus/{gpu.uuid}/").content.decode()
    assert f'href="/jobs/{mine.id}/"' in page and f"/jobs/{bobs.id}/" not in page and "fft" in page
    assert 'aria-current="page">3 h<' in page
    short = web.get(f"/gpus/{gpu.uuid}/?minutes=15").content.decode()
    assert "fft" not in short and f'href="/jobs/{mine.id}/"' in short
    assert web.get("/gpus/GPU-nowhere/").status_code == 404
    for listing in ("/gpus/", "/queue/"):  # the GPU table and the running job's row in the lab queue
        assert f'href="/gpus/{gpu.uuid}/"' in web.get(listing).content.decode()
