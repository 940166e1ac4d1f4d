"""Late binding: jobs wait in the database and are released once each, in the right order."""

import subprocess
import threading

import pytest
from django.db import close_old_connections, connection

from scheduler.jobs import lifecycle
from scheduler.jobs.models import Job, JobEvent, Quota, Status
from scheduler.jobs.release import release
from scheduler.jobs.submission import submit
from tests import support

pytestmark = pytest.mark.sqlite


def noop_jobs(user, n, **extra):
    return submit(user, [{"kind": "noop", **extra} for _ in range(n)])


def test_jobs_wait_while_no_worker_is_alive(live_cast):
    [job] = noop_jobs(live_cast.alice, 1)
    job.refresh_from_db()
    assert job.status == Status.WAITING and job.wait_reason == "no GPU worker is alive"


def test_a_job_submitted_to_an_idle_gpu_is_released_at_once(transactional_db, live_cast, fake_gpus):
    [gpu] = fake_gpus([80])
    [job] = noop_jobs(live_cast.alice, 1)
    job.refresh_from_db()
    assert job.status == Status.QUEUED and job.queue == gpu.queue and job.route_reason


def test_each_gpu_holds_only_its_slots(transactional_db, live_cast, fake_gpus, settings):
    fake_gpus([80, 80])
    noop_jobs(live_cast.alice, 10)
    held = Job.objects.filter(status=Status.QUEUED)
    assert held.count() == 2 * settings.GPU_SLOTS
    assert Job.objects.filter(status=Status.WAITING).count() == 10 - 2 * settings.GPU_SLOTS


def test_short_jobs_feed_a_gpu_past_its_slots_and_long_ones_do_not(transactional_db, live_cast, fake_gpus, settings):
    settings.GPU_FEED_SECONDS, settings.GPU_MAX_HELD = 0.5, 8
    fake_gpus([80, 80])
    noop_jobs(live_cast.alice, 20)  # no expected work: each GPU takes up to GPU_MAX_HELD
    assert Job.objects.filter(status=Status.QUEUED).count() == 16
    Job.objects.all().delete()
    submit(live_cast.alice, [{"kind": "burn", "params": {"seconds": 0.4, "mib": 1}}] * 6)
    assert Job.objects.filter(status=Status.QUEUED).count() == 2 * settings.GPU_SLOTS  # 0.8 s > the feed


def test_a_late_high_priority_job_passes_waiting_low_priority_ones(transactional_db, live_cast, fake_gpus):
    [gpu] = fake_gpus([80])
    noop_jobs(live_cast.alice, 5)
    [urgent] = noop_jobs(live_cast.alice, 1, priority=5)
    _finish_all_held(gpu.queue)
    urgent.refresh_from_db()
    assert urgent.status == Status.QUEUED
    assert Job.objects.filter(status=Status.WAITING, priority=0).count() == 2  # 5 - 2 first - 1 beside it


def _finish_all_held(queue: str) -> None:
    """Stand in for the worker: run and finish whatever the GPU holds, then release again."""
    for job in Job.objects.filter(queue=queue, status=Status.QUEUED):
        claimed, lease = lifecycle.claim(job.id, "fakehost", queue)
        lifecycle.finish(claimed, lease, Status.SUCCEEDED, result={})
    release()


def test_fair_share_lets_a_small_user_pass_a_flood(transactional_db, live_cast, fake_gpus):
    [gpu] = fake_gpus([80])
    submit(live_cast.alice, [{"kind": "burn", "params": {"seconds": 1, "mib": 1}}] * 200)
    submit(live_cast.bob, [{"kind": "burn", "params": {"seconds": 1, "mib": 1}}] * 5)
    started = []
    for _ in range(20):
        started += list(
            Job.objects.filter(queue=gpu.queue, status=Status.QUEUED).values_list("owner__username", flat=True)
        )
        _finish_all_held(gpu.queue)
    # Bound: in any 20 rounds (40 jobs), bob's 5 jobs all run; alice is never starved either.
    assert started.count("bob") == 5 and started.count("alice") >= 20


def test_a_gpu_quota_holds_jobs_with_the_reason(transactional_db, live_cast, fake_gpus):
    fake_gpus([80, 80, 80])
    Quota.objects.create(user=live_cast.alice, max_gpus=1)
    noop_jobs(live_cast.alice, 6)
    for _ in range(3):
        release()
        assert Job.objects.filter(status=Status.QUEUED).values("queue").distinct().count() == 1
    waiting = Job.objects.filter(status=Status.WAITING).first()
    assert waiting.wait_reason.startswith("quota:")


def test_a_job_runs_only_after_its_dependencies_succeeded(transactional_db, live_cast, fake_gpus):
    [gpu] = fake_gpus([80])
    [first] = noop_jobs(live_cast.alice, 1)
    [second] = submit(live_cast.alice, [{"kind": "noop", "after": [first.id]}])
    second.refresh_from_db()
    assert second.status == Status.WAITING
    _finish_all_held(gpu.queue)
    second.refresh_from_db()
    assert second.status == Status.QUEUED


def test_a_failed_dependency_fails_the_chain_with_the_reason(transactional_db, live_cast, fake_gpus):
    [gpu] = fake_gpus([80])
    [first] = noop_jobs(live_cast.alice, 1)
    [second] = submit(live_cast.alice, [{"kind": "noop", "after": [first.id]}])
    [third] = submit(live_cast.alice, [{"kind": "noop", "after": [second.id]}])
    claimed, lease = lifecycle.claim(first.id, "fakehost", gpu.queue)
    lifecycle.finish(claimed, lease, Status.FAILED, error="boom")
    for job, cause in ((second, first), (third, second)):
        job.refresh_from_db()
        assert job.status == Status.FAILED and f"job {cause.id} did not succeed" in job.error


def test_an_array_expands_its_grid_and_cancels_whole(cast):
    api = cast.api(cast.alice)
    response = api.post(
        "/api/arrays/", {"kind": "fft", "params": {"dims": 1}, "grid": {"n": [256, 512, 1024]}}, format="json"
    )
    assert response.status_code == 201, response.content
    array = response.json()
    assert sorted(Job.objects.filter(array_id=array["id"]).values_list("params__n", flat=True)) == [256, 512, 1024]
    cancelled = api.post(f"/api/arrays/{array['id']}/cancel/").json()
    assert cancelled["counts"] == {"cancelled": 3}


def _release_in_threads(n: int) -> None:
    barrier = threading.Barrier(n)

    def worker():
        barrier.wait()
        try:
            release()
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_racing_releasers_never_release_a_job_twice(transactional_db, live_cast, fake_gpus, settings, live_env):
    fake_gpus([80] * 4)
    Job.objects.bulk_create([Job(owner=live_cast.alice, kind="noop", time_limit=60) for _ in range(40)])
    procs = [
        subprocess.Popen([support.python(), "manage.py", "releaser", "--once"], cwd=support.ROOT, env=live_env)
        for _ in range(4)
    ]
    _release_in_threads(8)
    for p in procs:
        assert p.wait(timeout=120) == 0
    queued_events = JobEvent.objects.filter(status=Status.QUEUED)
    assert queued_events.count() == Job.objects.filter(status=Status.QUEUED).count() == 4 * settings.GPU_SLOTS
    assert queued_events.values("job").distinct().count() == queued_events.count()


def test_a_job_whose_attempts_keep_dying_fails_as_poisoned(transactional_db, live_cast, fake_gpus, settings):
    [gpu] = fake_gpus([80])
    [job] = noop_jobs(live_cast.alice, 1)
    for attempt in range(1, settings.JOB_MAX_ATTEMPTS + 1):
        release()
        lifecycle.claim(job.id, "fakehost", gpu.queue)
        lifecycle.requeue(job.id, "worker lost")
        job.refresh_from_db()
        assert job.status == (Status.FAILED if attempt == settings.JOB_MAX_ATTEMPTS else Status.WAITING)
    assert job.error_kind == "poisoned" and f"{settings.JOB_MAX_ATTEMPTS} attempts" in job.error


def test_a_finished_job_wakes_the_releaser_loop_or_releases_itself_when_none_is_alive(
    transactional_db, live_cast, fake_gpus, r
):
    from scheduler.jobs.release import ALIVE_KEY, WAKE_KEY, nudge

    [gpu] = fake_gpus([80])
    waiting = Job.objects.create(owner=live_cast.alice, kind="noop", time_limit=60)  # bypasses submit's release
    r.set(ALIVE_KEY, 1, ex=5)
    nudge()
    waiting.refresh_from_db()
    assert waiting.status == Status.WAITING and r.llen(WAKE_KEY) == 1  # the loop's job, one wake however many
    nudge()
    assert r.llen(WAKE_KEY) == 1
    r.delete(ALIVE_KEY)
    nudge()
    waiting.refresh_from_db()
    assert waiting.status == Status.QUEUED and waiting.queue == gpu.queue


def test_the_releaser_loop_runs_a_round_as_soon_as_it_is_woken(transactional_db, live_cast, fake_gpus, live_env, r):
    from scheduler.jobs.release import ALIVE_KEY, nudge

    [gpu] = fake_gpus([80])
    # A long interval: only a wake can make it release within the test's time.
    releaser = support.Proc(
        "releaser-wake", [support.python(), "manage.py", "releaser"], {**live_env, "RELEASER_INTERVAL": "60"}
    )
    try:
        support.wait_until(lambda: r.exists(ALIVE_KEY), 30, "the releaser loop to say it is alive")
        waiting = Job.objects.create(owner=live_cast.alice, kind="noop", time_limit=60)
        nudge()
        support.wait_until(lambda: Job.objects.get(id=waiting.id).status == Status.QUEUED, 5, "the woken round")
        assert Job.objects.get(id=waiting.id).queue == gpu.queue
    finally:
        releaser.stop()
