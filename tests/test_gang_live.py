"""Multi-GPU jobs with real processes: two CPU workers of one host standing in for its two GPUs."""

import json
import threading
from pathlib import Path

import pytest

from tests import support
from tests.conftest import running_system
from tests.test_e2e import run_cli, wait_final

pytestmark = [pytest.mark.sqlite, pytest.mark.slow]
HOST = "mgpu"
LONG = {"n": 65536, "rounds": 50_000}  # ~2 ms a round on NumPy: far longer than any test waits


@pytest.fixture(scope="module")
def system(django_db_setup, django_db_blocker, redis_url):
    with running_system(redis_url, hosts=(HOST,), per_host=2) as system:
        yield system


@pytest.fixture
def http(system, live_cast):
    yield system.session(live_cast.token(live_cast.alice))
    system.quiesce()


def submit(http, system, gpus=2, params=None, **extra) -> dict:
    spec = {"kind": "allreduce", "params": params or {"n": 4096}, "gpus": gpus, **extra}
    response = http.post(f"{system.url}/api/jobs/", json=spec)
    assert response.status_code == 201, response.text
    return response.json()


def job_of(http, system, job_id: int) -> dict:
    return http.get(f"{system.url}/api/jobs/{job_id}/").json()


def wait_status(http, system, job_id: int, status: str, timeout: float = 60) -> dict:
    return support.wait_until(
        lambda: (j := job_of(http, system, job_id))["status"] == status and j, timeout, f"job {job_id} {status}"
    )


def gang_children() -> list[int]:
    """Processes running a multi-GPU job's kind (workers/gang_child.py)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if b"workers.gang_child" in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return found


def test_a_two_gpu_job_sees_exactly_its_gpus_and_sums_right(system, http):
    job = wait_final(http, system.url, submit(http, system)["id"])
    assert job["status"] == "succeeded", job
    uuids = [m["uuid"] for m in job["gang"]]
    assert sorted(uuids) == sorted(s.uuid for s in system.wait_for_gpus(2))
    assert job["queue"] == job["gang"][0]["queue"]
    result = job["result"]
    assert (result["devices"], result["correct"], result["via"]) == (2, True, "ring (NumPy)")
    assert result["visible_devices"] == ",".join(uuids) and result["nccl_nvls_enable"] == "0"


def test_cancel_stops_it_and_frees_both_gpus_at_once(system, http):
    job = submit(http, system, params=LONG)
    wait_status(http, system, job["id"], "running")
    support.wait_until(gang_children, 30, "the job's process to start")
    assert http.post(f"{system.url}/api/jobs/{job['id']}/cancel/").status_code == 200
    support.wait_until(lambda: not gang_children(), 30, "the job's process to end")
    after = wait_final(http, system.url, submit(http, system)["id"])
    assert after["status"] == "succeeded" and after["attempts"] == 1


def test_a_time_limit_fails_it_as_one_and_frees_both_gpus(system, http):
    job = wait_final(http, system.url, submit(http, system, params=LONG, time_limit=2)["id"])
    assert job["status"] == "failed" and job["error_kind"] == "timeout", job
    support.wait_until(lambda: not gang_children(), 30, "the job's process to end")
    assert wait_final(http, system.url, submit(http, system)["id"])["status"] == "succeeded"


def test_a_killed_leader_sends_it_back_to_waiting_and_it_runs_again(system, http):
    job = submit(http, system, params={"n": 65536, "rounds": 4000})
    running = wait_status(http, system, job["id"], "running")
    leader = next(name for name, args in system.worker_args.items() if _queue(int(args[-1])) == running["queue"])
    system.workers[leader].kill()
    support.wait_until(lambda: not gang_children(), 30, "the job's process to die with its worker")
    system.workers[leader] = system.start_worker(leader)
    done = wait_final(http, system.url, job["id"], timeout=120)
    assert done["status"] == "succeeded" and done["attempts"] == 2, done
    assert any("back to waiting" in e["message"] for e in done["events"])


def test_a_stream_of_one_gpu_jobs_does_not_starve_it_and_it_starts_when_estimated(system, http, live_cast):
    bob = system.session(live_cast.token(live_cast.bob))
    stop, stream = threading.Event(), []

    def flow():
        while not stop.is_set():
            spec = {"kind": "burn", "params": {"seconds": 1.5, "mib": 1}, "time_limit": 3}
            stream.append(bob.post(f"{system.url}/api/jobs/", json=spec).json()["id"])
            stop.wait(0.5)  # 2 jobs a second against 1.3 a second of capacity: the backlog grows

    feeder = threading.Thread(target=flow)
    feeder.start()
    try:
        support.wait_until(lambda: len(stream) > 6, 30, "a backlog of one-GPU jobs")
        gang = submit(http, system, time_limit=30)
        told = support.wait_until(lambda: _estimate(job_of(http, system, gang["id"])), 30, "an estimate")
        reservation = support.wait_until(lambda: _reservation(gang["id"]), 30, "the reservation")
        started = wait_status(http, system, gang["id"], "running", timeout=60)
    finally:
        stop.set()
        feeder.join()
    began = _epoch(started["started_at"])
    assert began <= reservation["latest"] + 2  # the bound, plus a release round
    assert told["text"].startswith(f"reserved GPUs 0-1 of {HOST} for job {gang['id']}; starts ")
    print(f"estimated start {told['starts_at']:.1f}, started {began:.1f}: off by {began - told['starts_at']:+.1f} s")
    assert abs(began - told["starts_at"]) < 5
    assert bob.get(f"{system.url}/api/jobs/{stream[-1]}/").json()["status"] != "succeeded"  # still flowing


def _estimate(job: dict) -> dict | None:
    told = job.get("forecast") or {}
    return told if told.get("starts_at") else None


def _queue(slot: int) -> str:
    from workers.gpu import cpu_identity, queue_name

    return queue_name(HOST, cpu_identity(HOST, 0, slot).uuid)


def _reservation(job_id: int) -> dict | None:
    from scheduler.jobs.forecast import stored

    held = stored().get("reservation")
    return held if held and held["job_id"] == job_id else None


def _epoch(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_the_cli_submits_on_several_gpus_and_shows_the_estimate(system, http, live_cast):
    token = live_cast.token(live_cast.alice)
    done = run_cli(system, token, "allreduce", "--gpus", "2", "--param", "n=2048", "--wait", "--json")
    assert done.returncode == 0, done.stderr
    [job] = json.loads(done.stdout)
    assert job["gpus"] == 2 and len(job["gang"]) == 2
    refused = run_cli(system, token, "allreduce", "--gpus", "3", "--json")
    assert refused.returncode == 2 and "needs 3 GPUs of one host" in refused.stderr
    holder = submit(http, system, params=LONG)
    wait_status(http, system, holder["id"], "running")
    waiting = submit(http, system)
    support.wait_until(lambda: _estimate(job_of(http, system, waiting["id"])), 30, "an estimate")
    shown = run_cli(system, token, "show", str(waiting["id"]))
    assert f"reserved GPUs 0-1 of {HOST} for job {waiting['id']}; starts" in " ".join(shown.stdout.split())
    for job in (waiting, holder):
        http.post(f"{system.url}/api/jobs/{job['id']}/cancel/")
