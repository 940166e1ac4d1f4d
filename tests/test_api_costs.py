"""What the job path's answers cost the database does not grow with their size: a batch reads its
owner's allowance once, a page of the list reads its dependencies in one query, a submission's
answer reads back nothing it just wrote."""

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext

from scheduler.jobs.models import GroupLimits, Job, JobEvent, Quota
from scheduler.jobs.submission import submit

pytestmark = pytest.mark.sqlite


def statements(call, table: str = "") -> tuple[int, object]:
    """How many statements `call` made (those naming `table`, if given), and what it returned."""
    with CaptureQueriesContext(connection) as queries:
        answer = call()
    return sum(f'"{table}"' in q["sql"] for q in queries.captured_queries), answer


def batch(api, n: int, **spec):
    return api.post("/api/jobs/batch/", {"jobs": [{"kind": "noop", **spec}] * n}, format="json")


def test_a_batch_reads_its_owners_quota_and_group_limits_once(cast):
    api = cast.api(cast.alice)
    for table in ("jobs_quota", "jobs_grouplimits"):
        read, answer = statements(lambda: batch(api, 100), table)
        assert answer.status_code == 201 and len(answer.json()["jobs"]) == 100
        assert read == 1, table
    assert JobEvent.objects.filter(status="waiting", message="submitted").count() == 200


def test_every_job_of_a_batch_keeps_to_the_time_limit_of_its_owners_groups(cast):
    short = Group.objects.create(name="short")
    GroupLimits.objects.create(group=short, max_time_limit=60)
    cast.alice.groups.add(short)
    api = cast.api(cast.alice)
    refused = api.post(
        "/api/jobs/batch/", {"jobs": [{"kind": "noop"}, {"kind": "noop", "time_limit": 61}]}, format="json"
    )
    assert refused.status_code == 400
    assert refused.json()["jobs"][0] == {} and "between 1 and 60" in refused.json()["jobs"][1]["time_limit"]
    assert Job.objects.count() == 0
    assert [j["time_limit"] for j in batch(api, 3).json()["jobs"]] == [60, 60, 60]  # the default, capped


def test_a_quota_set_by_staff_bounds_every_job_of_a_batch(cast):
    Quota.objects.create(user=cast.alice, max_priority=5)
    answer = cast.api(cast.alice).post(
        "/api/jobs/batch/", {"jobs": [{"kind": "noop", "priority": 5}, {"kind": "noop", "priority": 6}]}, format="json"
    )
    assert answer.status_code == 400 and "between -5 and 5" in answer.json()["jobs"][1]["priority"]
    assert Job.objects.count() == 0


def test_a_submitted_job_answers_its_dependencies_as_they_were_stored(cast):
    first, second = submit(cast.alice, [{"kind": "noop"}, {"kind": "noop"}])
    api = cast.api(cast.alice)
    answer = api.post("/api/jobs/", {"kind": "noop", "after": [second.id, first.id, second.id]}, format="json")
    assert answer.status_code == 201, answer.content
    job = answer.json()
    assert job["after"] == [first.id, second.id]
    assert api.get(f"/api/jobs/{job['id']}/").json()["after"] == [first.id, second.id]
    listed = {j["id"]: j["after"] for j in api.get("/api/jobs/").json()["results"]}
    assert listed == {job["id"]: [first.id, second.id], second.id: [], first.id: []}


def test_a_page_of_the_job_list_reads_its_dependencies_in_one_query(cast):
    [root] = submit(cast.alice, [{"kind": "noop"}])
    api = cast.api(cast.alice)
    submit(cast.alice, [{"kind": "noop", "after": [root.id]}] * 30)
    read, page = statements(lambda: api.get("/api/jobs/"), "jobs_job_after")
    assert len(page.json()["results"]) == 31 and read == 1
    assert all(j["after"] == [root.id] for j in page.json()["results"] if j["id"] != root.id)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite keeps Django's two inserts")
def test_a_batch_stores_its_jobs_and_their_submitted_events_in_one_statement(cast):
    api = cast.api(cast.alice)
    with CaptureQueriesContext(connection) as queries:
        answer = batch(api, 100, name="n", tags=["t"], priority=2)
    writes = [q["sql"] for q in queries.captured_queries if "INSERT" in q["sql"]]
    assert answer.status_code == 201 and len(writes) == 1 and "jobs_jobevent" in writes[0]
    ids = [j["id"] for j in answer.json()["jobs"]]
    assert ids == sorted(ids) and len(set(ids)) == 100
    stored = Job.objects.filter(id__in=ids)
    assert {(j.name, tuple(j.tags), j.priority, j.status) for j in stored} == {("n", ("t",), 2, "waiting")}
    assert [j["created_at"] for j in answer.json()["jobs"]] == [
        api.get(f"/api/jobs/{i}/").json()["created_at"] for i in ids
    ]
    assert JobEvent.objects.filter(job_id__in=ids, status="waiting", message="submitted").count() == 100
