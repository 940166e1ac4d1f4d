"""Accounting, sacct-like: finished jobs with start, end and GPU time, totals by user and kind, as CSV."""

import csv
import io
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from scheduler.jobs.models import Job, Status

pytestmark = pytest.mark.sqlite


def _ended(user, kind: str, status: str, gpu_s: float, days_ago: float = 0.1) -> Job:
    end = timezone.now() - timedelta(days=days_ago)
    return Job.objects.create(
        owner=user,
        kind=kind,
        time_limit=60,
        status=status,
        queue="gpu.h.1",
        created_at=end - timedelta(seconds=gpu_s + 5),
        started_at=end - timedelta(seconds=gpu_s),
        finished_at=end,
    )


@pytest.fixture
def ended(cast):
    _ended(cast.alice, "fft", Status.SUCCEEDED, 1800)
    _ended(cast.alice, "fft", Status.FAILED, 1800)
    _ended(cast.alice, "matmul", Status.SUCCEEDED, 3600, days_ago=3)
    _ended(cast.bob, "fft", Status.SUCCEEDED, 7200)
    _ended(cast.bob, "fft", Status.SUCCEEDED, 7200, days_ago=40)  # outside every window but the year


def _web(user) -> Client:
    web = Client()
    web.force_login(user)
    return web


def test_it_totals_a_users_own_jobs_by_kind(cast, ended):
    context = _web(cast.alice).get("/accounting/?days=7").context
    assert [(t["name"], t["jobs"], t["failed"], round(t["gpu_hours"], 2)) for t in context["by_kind"]] == [
        ("fft", 2, 1, 1.0),
        ("matmul", 1, 0, 1.0),
    ]
    assert [t["name"] for t in context["by_user"]] == ["alice"]  # bob's jobs are not hers to see
    assert [t["jobs"] for t in _web(cast.alice).get("/accounting/?days=1").context["by_kind"]] == [2]


def test_staff_see_every_user_and_export_csv(cast, ended):
    web = _web(cast.staff)
    by_user = web.get("/accounting/?days=30").context["by_user"]
    assert [(t["name"], round(t["gpu_hours"], 2)) for t in by_user] == [("alice", 2.0), ("bob", 2.0)]
    answer = web.get("/accounting/?days=30&format=csv")
    assert answer["Content-Type"].startswith("text/csv") and "attachment" in answer["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.content.decode())))
    assert len(rows) == 4 and {r["owner"] for r in rows} == {"alice", "bob"}
    assert sorted(float(r["gpu_s"]) for r in rows) == [1800.0, 1800.0, 3600.0, 7200.0]
    assert all(r["finished"].endswith("+00:00") for r in rows)  # with its timezone


def test_a_job_page_offers_its_cli_command_and_a_filled_in_form(cast):
    job = Job.objects.create(
        owner=cast.alice, kind="matmul", time_limit=120, priority=3, params={"n": 512, "dtype": "float64"}
    )
    web = _web(cast.alice)
    page = web.get(f"/jobs/{job.id}/").content.decode()
    assert "submit-job matmul -p dtype=float64 -p n=512 --priority 3 --time-limit 120" in page
    form = web.get(f"/submit/?from={job.id}").content.decode()
    assert 'name="matmul.n" value="512"' in form and 'id="priority" value="3"' in form
    assert 'id="time_limit" value="120"' in form
    assert 'value="512"' not in _web(cast.bob).get(f"/submit/?from={job.id}").content.decode()  # not bob's


def test_numbers_are_shown_for_people():
    from scheduler.web.templatetags.units import binary_bytes, duration, human

    assert (human(70.166015625), human(525267.4), human(None), human(3)) == ("70.166", "525267", "—", 3)
    assert (binary_bytes(24 * 2**30), binary_bytes(129 * 2**20)) == ("24.0 GiB", "129.0 MiB")
    assert (duration(0.1234), duration(3725.4)) == ("0.12 s", "1 h 2 min 5 s")
