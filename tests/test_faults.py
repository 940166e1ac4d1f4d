"""Faults injected into real processes; afterwards every accepted job is final, recorded once."""

import signal
import threading

import pytest
import requests

from scheduler.jobs.models import Job, JobEvent, Status
from tests import support
from tests.test_e2e import wait_final

pytestmark = [pytest.mark.slow]


def post(live, token, path, body):
    return live.session(token).post(f"{live.url}{path}", json=body, timeout=30)


def wait_status(job_id: int, status: str, timeout: float = 60) -> Job:
    return support.wait_until(
        lambda: Job.objects.filter(id=job_id, status=status).first(), timeout, f"job {job_id} to be {status}"
    )


def assert_recorded_once(job_id: int) -> None:
    finals = JobEvent.objects.filter(job_id=job_id, status__in=[Status.SUCCEEDED, Status.FAILED, Status.CANCELLED])
    assert finals.count() == 1, list(finals.values_list("status", "message"))


def test_a_job_whose_worker_is_killed_runs_again_and_is_recorded_once(live_system, live_cast):
    token = live_cast.token(live_cast.alice)
    job_id = post(live_system, token, "/api/jobs/", {"kind": "burn", "params": {"seconds": 3, "mib": 1}}).json()["id"]
    running = wait_status(job_id, Status.RUNNING)
    host = next(h for h in live_system.workers if running.queue.endswith(h))
    live_system.workers[host].kill(signal.SIGKILL)
    job = wait_final(live_system.session(token), live_system.url, job_id, timeout=90)
    live_system.restart_worker(host)
    assert job["status"] == "succeeded" and job["attempts"] == 2, job
    assert_recorded_once(job_id)


def test_the_same_job_delivered_twice_has_one_result(live_system, live_cast):
    from scheduler.dispatch.celery_app import task_id
    from workers.tasks import run_job

    token = live_cast.token(live_cast.alice)
    job_id = post(live_system, token, "/api/jobs/", {"kind": "burn", "params": {"seconds": 1, "mib": 1}}).json()["id"]
    queued = support.wait_until(lambda: Job.objects.filter(id=job_id).exclude(queue="").first(), 30, "routing")
    run_job.apply_async(args=[job_id], queue=queued.queue, task_id=task_id(job_id))  # the duplicate
    job = wait_final(live_system.session(token), live_system.url, job_id)
    assert job["status"] == "succeeded" and job["attempts"] == 1
    assert_recorded_once(job_id)


def test_a_job_over_its_time_limit_is_stopped_and_the_worker_goes_on(live_system, live_cast):
    token = live_cast.token(live_cast.alice)
    slow = post(
        live_system, token, "/api/jobs/", {"kind": "burn", "params": {"seconds": 60, "mib": 1}, "time_limit": 2}
    )
    job = wait_final(live_system.session(token), live_system.url, slow.json()["id"], timeout=60)
    assert job["status"] == "failed" and job["error_kind"] == "timeout" and "time limit of 2 s" in job["error"]
    after = post(live_system, token, "/api/jobs/", {"kind": "noop"}).json()["id"]
    assert wait_final(live_system.session(token), live_system.url, after)["status"] == "succeeded"


def test_a_cancelled_queued_job_never_runs(live_system, live_cast):
    token = live_cast.token(live_cast.alice)
    blockers = [
        post(live_system, token, "/api/jobs/", {"kind": "burn", "params": {"seconds": 4, "mib": 1}}).json()
        for _ in range(6)
    ]
    waiting = post(live_system, token, "/api/jobs/", {"kind": "noop"}).json()
    cancel = live_system.session(token).post(f"{live_system.url}/api/jobs/{waiting['id']}/cancel/")
    assert cancel.status_code == 200 and cancel.json()["status"] == "cancelled"
    for b in blockers:
        wait_final(live_system.session(token), live_system.url, b["id"], timeout=90)
    assert not JobEvent.objects.filter(job_id=waiting["id"], status=Status.RUNNING).exists()
    assert Job.objects.get(id=waiting["id"]).status == Status.CANCELLED


def test_a_cancelled_running_job_stops_and_frees_its_worker(live_system, live_cast):
    token = live_cast.token(live_cast.alice)
    job_id = post(live_system, token, "/api/jobs/", {"kind": "burn", "params": {"seconds": 120, "mib": 1}}).json()["id"]
    running = wait_status(job_id, Status.RUNNING)
    live_system.session(token).post(f"{live_system.url}/api/jobs/{job_id}/cancel/")
    # The next job on that same worker starts within seconds, not after the 120 s burn.
    follow = post(live_system, token, "/api/jobs/", {"kind": "noop"}).json()["id"]
    done = wait_final(live_system.session(token), live_system.url, follow, timeout=30)
    assert done["status"] == "succeeded"
    assert Job.objects.get(id=job_id).status == Status.CANCELLED
    assert_recorded_once(job_id)
    assert running.queue


def test_the_jobs_of_a_worker_gone_for_good_go_to_the_other_gpu(live_system, live_cast):
    token = live_cast.token(live_cast.alice)
    live_system.workers["hostB"].kill(signal.SIGKILL)
    jobs = [post(live_system, token, "/api/jobs/", {"kind": "noop"}).json()["id"] for _ in range(4)]
    try:
        done = [wait_final(live_system.session(token), live_system.url, j, timeout=90) for j in jobs]
    finally:
        live_system.restart_worker("hostB")
    assert all(j["status"] == "succeeded" and j["queue"].endswith("hostA") for j in done), done


def test_a_web_server_restarted_during_batches_leaves_no_half_batch(live_system, live_cast):
    token, answers = live_cast.token(live_cast.alice), {}

    def send(batch: int) -> None:
        specs = [{"kind": "stats", "params": {"size": 10, "seed": batch * 1000 + i}} for i in range(200)]
        try:
            answers[batch] = post(live_system, token, "/api/jobs/batch/", {"jobs": specs}).status_code
        except requests.RequestException:
            answers[batch] = None

    threads = [threading.Thread(target=send, args=(b,)) for b in range(8)]
    for t in threads:
        t.start()
    live_system.web.kill(signal.SIGKILL)
    live_system.web.start()
    for t in threads:
        t.join()
    support.wait_until(lambda: support.http_ok(f"{live_system.url}/api/schema/"), 60, "gunicorn back")
    stored: dict[int, int] = {}
    for params in Job.objects.filter(kind="stats").values_list("params", flat=True):
        stored[params["seed"] // 1000] = stored.get(params["seed"] // 1000, 0) + 1
    for batch, code in answers.items():
        assert stored.get(batch, 0) in (0, 200), (batch, code, stored)
        if code == 201:
            assert stored[batch] == 200
    live_system.quiesce()


def test_database_away_while_jobs_finish_loses_nothing(django_db_setup, transactional_db, live_cast, redis_url):
    """The worker reaches PostgreSQL through a proxy that the test cuts for a few seconds."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the database outage is injected with a TCP proxy in front of PostgreSQL")
    settings_dict = dict(connection.settings_dict)
    proxy = support.TcpProxy(settings_dict.get("HOST") or "127.0.0.1", int(settings_dict.get("PORT") or 5432))
    from tests.conftest import LiveSystem

    db_via_proxy = support.database_url({**settings_dict, "HOST": "127.0.0.1", "PORT": proxy.port})
    system = LiveSystem(db_via_proxy, redis_url, hosts=("hostDB",))
    try:
        token = live_cast.token(live_cast.alice)
        ids = [
            post(system, token, "/api/jobs/", {"kind": "burn", "params": {"seconds": 1.5, "mib": 1}}).json()["id"]
            for _ in range(3)
        ]
        wait_status(ids[0], Status.RUNNING)
        proxy.cut(seconds=5)
        for job_id in ids:
            job = support.wait_until(
                lambda job_id=job_id: Job.objects.filter(id=job_id, status=Status.SUCCEEDED).first(),
                120,
                f"job {job_id} to succeed",
            )
            assert job.attempts == 1
            assert_recorded_once(job_id)
        assert "database unreachable" in system.workers["hostDB"].log()  # the fault did land
    finally:
        system.stop()
        proxy.close()
        from tests.conftest import _forget_gpus

        _forget_gpus(redis_url, ("hostDB",))


def test_redis_restarted_while_1000_jobs_are_queued_loses_none(django_db_setup, transactional_db, live_cast, tmp_path):
    """Redis as deployed (AOF everysec) restarted under load: every job still finishes."""
    from django.db import connection

    from tests.conftest import LiveSystem

    port = support.free_port()
    cmd = [
        "redis-server",
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(tmp_path),
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--save",
        "",
    ]
    redis_proc = support.Proc("redis-aof", cmd, dict(__import__("os").environ))
    url = f"redis://127.0.0.1:{port}/0"
    support.wait_until(lambda: support.redis_pings(url), 10, "redis-server")
    system = LiveSystem(support.database_url(connection.settings_dict), url, hosts=("hostR1", "hostR2"))
    try:
        token = live_cast.token(live_cast.alice)
        for _ in range(4):
            specs = [{"kind": "noop"}] * 250
            assert post(system, token, "/api/jobs/batch/", {"jobs": specs}).status_code == 201
        support.wait_until(lambda: Job.objects.filter(status=Status.SUCCEEDED).count() >= 50, 120, "50 jobs done")
        redis_proc.stop()
        redis_proc.start()
        support.wait_until(lambda: support.redis_pings(url), 10, "redis-server back")
        support.wait_until(
            lambda: Job.objects.filter(status=Status.SUCCEEDED).count() == 1000, 400, "all 1000 jobs to succeed"
        )
        assert Job.objects.exclude(status=Status.SUCCEEDED).count() == 0
    finally:
        system.stop()
        redis_proc.stop()
