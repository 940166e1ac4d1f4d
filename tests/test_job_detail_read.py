"""The detail a waiter is answered with: one statement on PostgreSQL, the same JSON as the ORM's read."""

import pytest
from django.db import connection
from django.http import Http404
from django.utils import timezone

from scheduler.api import serializers as s
from scheduler.jobs import detail
from scheduler.jobs.models import Job, JobEvent, Status
from scheduler.jobs.submission import submit


def _as_the_orm_reads_it(job_id):
    job = Job.objects.select_related("owner").prefetch_related("events").get(pk=job_id)
    return s.JobDetailSerializer(job).data


def _finished(job):
    now = timezone.now()
    Job.objects.filter(id=job.id).update(
        status=Status.SUCCEEDED, result={"x": [1, 2]}, queue="q", started_at=now, finished_at=now, attempts=1
    )
    JobEvent.objects.create(job=job, at=now, status=Status.SUCCEEDED, message="succeeded in 0.0 s")


def test_it_answers_exactly_what_the_serializer_answers_from_the_orm(cast):
    [first] = submit(cast.alice, [{"kind": "noop", "name": "first", "tags": ["a"]}])
    [second] = submit(cast.alice, [{"kind": "noop", "after": [first.id]}])
    _finished(first)
    for job in (first, second):
        assert s.job_detail(detail.visible(cast.alice, job.id)) == _as_the_orm_reads_it(job.id)
    assert s.job_detail(detail.visible(cast.alice, second.id))["after"] == [first.id]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite reads it through the ORM")
def test_it_reads_the_job_its_owner_events_and_dependencies_in_one_statement(cast, django_assert_num_queries):
    [first] = submit(cast.alice, [{"kind": "noop"}])
    [second] = submit(cast.alice, [{"kind": "noop", "after": [first.id]}])
    _finished(second)
    with django_assert_num_queries(1):
        assert s.job_detail(detail.visible(cast.alice, second.id))["events"]


def test_others_see_a_job_only_as_staff(cast):
    [job] = submit(cast.alice, [{"kind": "noop"}])
    assert detail.visible(cast.staff, job.id).owner.username == "alice"
    with pytest.raises(Http404):
        detail.visible(cast.bob, job.id)
    with pytest.raises(Http404):
        detail.visible(cast.alice, job.id + 1000)
