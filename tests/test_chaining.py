"""A worker that finishes a job takes the next one from the head of its queue itself (or the run of short
jobs there that one message would carry), in the statement that records the success: the GPU waits for
one commit, not for a message as well. Its message, when it comes, finds the job taken. Each job's time
limits are kept by the worker, since one message may now run several jobs."""

import multiprocessing
import signal
import time

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from scheduler.jobs import lifecycle
from scheduler.jobs.models import Job, JobEvent, Status
from scheduler.jobs.submission import submit
from workers.job_limit import limits

# SQLite has no data-modifying CTEs: there a worker takes each job by its message (lifecycle.claim_next).
needs_postgresql = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL only")
LONG = {"kind": "burn", "params": {"seconds": 5, "mib": 1}}  # 5 s of expected work: never bundled


def committed_together(a: JobEvent, b: JobEvent) -> bool:
    """Whether two event rows were written by one transaction (PostgreSQL's xmin)."""
    with connection.cursor() as cur:
        cur.execute(f"SELECT DISTINCT xmin::text FROM {JobEvent._meta.db_table} WHERE id IN (%s, %s)", [a.id, b.id])
        return len(cur.fetchall()) == 1


@needs_postgresql
def test_the_head_of_a_queue_is_taken_in_release_order_with_the_last_success_in_one_statement(
    live_cast, fake_gpus, settings
):
    settings.GPU_SLOTS = 4  # all three released in one round, the urgent one first
    [gpu] = fake_gpus([80])
    low, urgent, later = submit(live_cast.alice, [LONG, {**LONG, "priority": 5}, LONG])
    first, lease, _, more = lifecycle.claim_next([], None, "fakehost", gpu.queue)
    assert [j.id for j in first] == [urgent.id] and more
    for expected in (low, later):
        done = [lifecycle.Done(first[0], lease, {}, "", timezone.now())]
        with CaptureQueriesContext(connection) as statements:
            nxt, lease, recorded, _ = lifecycle.claim_next(done, None, "fakehost", gpu.queue)
        assert len(statements) == 1 and recorded == {first[0].id} and [j.id for j in nxt] == [expected.id]
        success = JobEvent.objects.get(job_id=first[0].id, status=Status.SUCCEEDED)
        assert committed_together(success, JobEvent.objects.get(job_id=expected.id, status=Status.RUNNING))
        first = nxt
    assert lifecycle.claim_next([], None, "fakehost", gpu.queue)[0] == []  # nothing left queued


@needs_postgresql
def test_short_jobs_at_the_head_are_taken_as_their_bundle_would_carry_them_and_a_gang_is_left_alone(
    live_cast, fake_gpus, settings
):
    settings.GPU_SLOTS, settings.JOB_BUNDLE_MAX = 8, 3
    a, b = fake_gpus([80, 80], host="twogpus")
    shorts = submit(live_cast.alice, [{"kind": "noop"}] * 8)  # under JOB_BUNDLE_SECONDS: bundled when sent
    queues = [Job.objects.get(id=j.id).queue for j in shorts]
    queue = max(set(queues), key=queues.count)  # four of the eight at least
    mine = list(Job.objects.filter(queue=queue, status=Status.QUEUED).order_by("queued_at", "id"))
    claimed, _, _, more = lifecycle.claim_next([], None, "twogpus", queue)
    assert [j.id for j in claimed] == [j.id for j in mine[:3]] and more  # a bundle's worth, in release order
    for job in Job.objects.filter(status__in=[Status.QUEUED, Status.RUNNING]):
        lifecycle.cancel(job, "test")
    [gang] = submit(live_cast.staff, [{"kind": "allreduce", "params": {"n": 1 << 24, "rounds": 1000}, "gpus": 2}])
    leader = Job.objects.get(id=gang.id)
    assert leader.status == Status.QUEUED and len(leader.gang) == 2
    assert leader.work_estimate > settings.JOB_BUNDLE_SECONDS  # left for being on several GPUs, not for short
    assert lifecycle.claim_next([], None, "twogpus", leader.queue)[0] == []


def _stubborn(seconds: float, margin: float, recorded) -> None:
    """Sleeps through its soft limit, as a CUDA call does."""
    with limits(seconds, lambda: recorded.set(), margin=margin):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                time.sleep(0.05)
            except SoftTimeLimitExceeded:
                pass


def _punctual(recorded) -> None:
    with limits(0.2, lambda: recorded.set(), margin=0.2):
        pass
    time.sleep(1)  # past where the hard limit would have been


def test_a_job_past_its_hard_limit_is_recorded_and_its_process_killed():
    fork = multiprocessing.get_context("fork")
    recorded = fork.Event()
    child = fork.Process(target=_stubborn, args=(0.1, 0.2, recorded))
    child.start()
    child.join(20)
    assert child.exitcode == -signal.SIGKILL and recorded.is_set()


def test_a_job_that_ends_within_its_limits_is_not_stopped_after():
    fork = multiprocessing.get_context("fork")
    recorded = fork.Event()
    child = fork.Process(target=_punctual, args=(recorded,))
    child.start()
    child.join(20)
    assert child.exitcode == 0 and not recorded.is_set()


def _prepared_claims() -> int:
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE 'WITH d AS%%'")
        return cur.fetchone()[0]


@needs_postgresql
def test_the_workers_statement_is_prepared_once_per_connection_unless_turned_off(db, settings):
    settings.DB_PREPARED_STATEMENTS = False
    lifecycle.claim_next([], [2**40], "fakehost", "gpu.nowhere")
    assert _prepared_claims() == 0
    settings.DB_PREPARED_STATEMENTS = True
    for _ in range(3):
        lifecycle.claim_next([], [2**40], "fakehost", "gpu.nowhere")
    assert _prepared_claims() == 1
