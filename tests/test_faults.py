"""Faults injected into real processes; afterwards every accepted job is final, recorded once."""

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import requests

from scheduler.jobs.models import Job, JobEvent, Status
from tests import support
from tests.test_chaining import committed_together, needs_postgresql
from tests.test_e2e import draining, wait_final

pytestmark = [pytest.mark.slow]


def post(live, token, path, body):
    return live.session(token).post(f"{live.url}{path}", json=body, timeout=30)


def wait_status(job_id: int, status: str, timeout: float = 60) -> Job:
    return support.wait_until(
        lambda: Job.objects.filter(id=job_id, status=status).first(), timeout, f"job {job_id} to be {status}"
    )


@contextmanager
def only_on(live, host: str) -> Iterator[None]:
    """Drain every other GPU of the live system, so that the next jobs run on `host`'s worker."""
    others = [s.uuid for s in live.wait_for_gpus(len(live.workers)) if s.host != host]
    with draining(others, "test: only one worker"):
        yield


def events(job_id: int) -> list[str]:
    return list(JobEvent.objects.filter(job_id=job_id).values_list("message", flat=True))


def assert_recorded_once(job_id: int) -> None:
    finals = JobEvent.objects.filter(job_id=job_id, status__in=[Status.SUCCEEDED, Status.FAILED, Status.CANCELLED])
    assert finals.count() == 1, list(finals.values_list("status", "message"))


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
    with only_on(live_system, "hostA"):
        slow = post(
            live_system, token, "/api/jobs/", {"kind": "burn", "params": {"seconds": 60, "mib": 1}, "time_limit": 2}
        )
        job = wait_final(live_system.session(token), live_system.url, slow.json()["id"], timeout=60)
        after = post(live_system, token, "/api/jobs/", {"kind": "noop"}).json()["id"]
        next_job = wait_final(live_system.session(token), live_system.url, after)
    assert job["status"] == "failed" and job["error_kind"] == "timeout" and "time limit of 2 s" in job["error"]
    assert next_job["status"] == "succeeded" and next_job["queue"] == job["queue"]  # the same worker goes on


def test_a_job_that_ignores_the_soft_limit_is_killed_by_the_hard_one_and_the_worker_goes_on(live_system, live_cast):
    """As a CUDA call would, the job sleeps through the soft limit: at the hard limit (time limit + 15 s)
    the worker's watchdog fails it as timed out and kills the pool process; the worker starts another."""
    token = live_cast.token(live_cast.staff)
    spec = {"kind": "fault", "params": {"mode": "stubborn", "seconds": 120}, "time_limit": 2}
    with only_on(live_system, "hostA"):
        stubborn = post(live_system, token, "/api/jobs/", spec).json()["id"]
        job = wait_final(live_system.session(token), live_system.url, stubborn, timeout=90)
        after = post(live_system, token, "/api/jobs/", {"kind": "noop"}).json()["id"]
        next_job = wait_final(live_system.session(token), live_system.url, after, timeout=60)
    assert (job["status"], job["error_kind"]) == ("failed", "timeout"), job
    assert "the worker stopped it" in job["error"]  # the watchdog's verdict, not the job's own
    assert next_job["status"] == "succeeded" and next_job["queue"] == job["queue"]
    assert_recorded_once(stubborn)


def test_a_cancelled_waiting_job_never_runs(live_system, live_cast):
    token = live_cast.token(live_cast.alice)
    blockers = [
        post(live_system, token, "/api/jobs/", {"kind": "burn", "params": {"seconds": 4, "mib": 1}}).json()
        for _ in range(6)
    ]
    waiting = post(live_system, token, "/api/jobs/", {"kind": "noop"}).json()
    assert Job.objects.get(id=waiting["id"]).status == Status.WAITING  # 4 slots, 6 blockers before it
    cancel = live_system.session(token).post(f"{live_system.url}/api/jobs/{waiting['id']}/cancel/")
    assert cancel.status_code == 200 and cancel.json()["status"] == "cancelled"
    for b in blockers:
        wait_final(live_system.session(token), live_system.url, b["id"], timeout=90)
    assert not JobEvent.objects.filter(job_id=waiting["id"], status=Status.RUNNING).exists()
    assert Job.objects.get(id=waiting["id"]).status == Status.CANCELLED


def test_a_cancelled_queued_job_never_runs_though_its_message_reaches_the_worker(live_system, live_cast):
    token = live_cast.token(live_cast.alice)
    with only_on(live_system, "hostA"):
        blocker = post(live_system, token, "/api/jobs/", {"kind": "burn", "params": {"seconds": 4, "mib": 1}}).json()
        wait_status(blocker["id"], Status.RUNNING)
        queued = post(live_system, token, "/api/jobs/", {"kind": "noop"}).json()
        assert wait_status(queued["id"], Status.QUEUED).queue  # released to hostA's queue, behind the blocker
        cancel = live_system.session(token).post(f"{live_system.url}/api/jobs/{queued['id']}/cancel/")
        assert cancel.status_code == 200 and cancel.json()["status"] == "cancelled"
        wait_final(live_system.session(token), live_system.url, blocker["id"], timeout=60)
        after = post(live_system, token, "/api/jobs/", {"kind": "noop"}).json()["id"]
        assert wait_final(live_system.session(token), live_system.url, after)["status"] == "succeeded"
    assert not JobEvent.objects.filter(job_id=queued["id"], status=Status.RUNNING).exists()
    assert Job.objects.get(id=queued["id"]).status == Status.CANCELLED
    assert_recorded_once(queued["id"])


def test_a_cancelled_running_job_stops_and_frees_its_worker(live_system, live_cast):
    token = live_cast.token(live_cast.alice)
    with only_on(live_system, "hostA"):
        job_id = post(live_system, token, "/api/jobs/", {"kind": "burn", "params": {"seconds": 120, "mib": 1}}).json()[
            "id"
        ]
        running = wait_status(job_id, Status.RUNNING)
        live_system.session(token).post(f"{live_system.url}/api/jobs/{job_id}/cancel/")
        # The next job on that same worker starts within seconds, not after the 120 s burn.
        follow = post(live_system, token, "/api/jobs/", {"kind": "noop"}).json()["id"]
        done = wait_final(live_system.session(token), live_system.url, follow, timeout=30)
    assert done["status"] == "succeeded" and done["queue"] == running.queue
    assert Job.objects.get(id=job_id).status == Status.CANCELLED
    assert_recorded_once(job_id)


def test_the_jobs_of_a_worker_gone_for_good_go_to_the_other_gpu(live_system, live_cast):
    token = live_cast.token(live_cast.alice)
    body = {"jobs": [{"kind": "burn", "params": {"seconds": 5, "mib": 1}}] * 4}  # two slots on each GPU
    jobs = [j["id"] for j in post(live_system, token, "/api/jobs/batch/", body).json()["jobs"]]
    on_b = support.wait_until(
        lambda: list(Job.objects.filter(id__in=jobs, queue="cpu.hostB").values_list("id", flat=True)), 30, "hostB"
    )
    live_system.workers["hostB"].kill(signal.SIGKILL)
    try:
        done = [wait_final(live_system.session(token), live_system.url, j, timeout=90) for j in jobs]
    finally:
        live_system.restart_worker("hostB")
    assert all(j["status"] == "succeeded" for j in done), done
    for job_id in on_b:  # each went back to waiting because its GPU fell silent, and ran on hostA
        assert any("GPU queue cpu.hostB stopped publishing telemetry" in m for m in events(job_id)), events(job_id)
        assert Job.objects.get(id=job_id).queue == "cpu.hostA"
        assert_recorded_once(job_id)


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


def test_a_hung_releaser_does_not_stop_the_queue(live_system, live_cast):
    """SIGSTOP the releaser: its heartbeat goes stale and the idle workers release in its place."""
    token = live_cast.token(live_cast.alice)
    releaser = live_system.releaser.popen
    os.killpg(releaser.pid, signal.SIGSTOP)
    try:
        body = {"jobs": [{"kind": "burn", "params": {"seconds": 0.2, "mib": 1}}] * 20}
        jobs = post(live_system, token, "/api/jobs/batch/", body).json()["jobs"]
        done = [wait_final(live_system.session(token), live_system.url, j["id"], timeout=90) for j in jobs]
    finally:
        os.killpg(releaser.pid, signal.SIGCONT)
    assert [j["status"] for j in done] == ["succeeded"] * 20
    assert {j["queue"].rsplit(".", 1)[-1] for j in done} == {"hostA", "hostB"}
    assert releaser.poll() is None  # the releaser itself was stopped all along, not replaced


@needs_postgresql
def test_back_to_back_jobs_each_run_once_the_next_claimed_with_the_last_success(live_system, live_cast):
    token = live_cast.token(live_cast.alice)
    http = live_system.session(token)
    spec = {"kind": "burn", "params": {"seconds": 0.5, "mib": 1}}
    with only_on(live_system, "hostA"):
        answer = http.post(f"{live_system.url}/api/jobs/batch/", json={"jobs": [spec] * 3})
        ids = [j["id"] for j in answer.json()["jobs"]]
        jobs = [wait_final(http, live_system.url, i, timeout=60) for i in ids]
    assert [(j["status"], j["attempts"]) for j in jobs] == [(Status.SUCCEEDED, 1)] * 3
    for job_id in ids:
        assert_recorded_once(job_id)
        assert JobEvent.objects.filter(job_id=job_id, status=Status.RUNNING).count() == 1  # its message ran nothing
    # The second was queued behind the first (two slots): the first one's worker took it as it finished.
    success = JobEvent.objects.get(job_id=ids[0], status=Status.SUCCEEDED)
    assert committed_together(success, JobEvent.objects.get(job_id=ids[1], status=Status.RUNNING))


@needs_postgresql
def test_a_job_its_worker_took_from_its_queue_is_cancelled_like_any_running_job(live_system, live_cast):
    token = live_cast.token(live_cast.alice)
    http = live_system.session(token)
    specs = [
        {"kind": "burn", "params": {"seconds": 0.5, "mib": 1}},
        {"kind": "burn", "params": {"seconds": 120, "mib": 1}},
    ]
    with only_on(live_system, "hostA"):
        first, long = (
            j["id"] for j in http.post(f"{live_system.url}/api/jobs/batch/", json={"jobs": specs}).json()["jobs"]
        )
        # Begun, not only claimed: a job claimed early (workers/early_claim.py) is running before its event.
        support.wait_until(lambda: JobEvent.objects.filter(job_id=long, status=Status.RUNNING).exists(), 60, "begun")
        success = JobEvent.objects.get(job_id=first, status=Status.SUCCEEDED)
        assert committed_together(success, JobEvent.objects.get(job_id=long, status=Status.RUNNING))  # taken, not sent
        http.post(f"{live_system.url}/api/jobs/{long}/cancel/")
        follow = post(live_system, token, "/api/jobs/", {"kind": "noop"}).json()["id"]
        assert wait_final(http, live_system.url, follow, timeout=60)["status"] == Status.SUCCEEDED
    assert Job.objects.get(id=long).status == Status.CANCELLED
    assert Job.objects.get(id=follow).queue == Job.objects.get(id=long).queue  # the same worker went on
    for job_id in (first, long, follow):
        assert_recorded_once(job_id)
