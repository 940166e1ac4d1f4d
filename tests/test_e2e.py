"""The whole path with real processes: HTTP through gunicorn, database, releaser, Celery, a worker."""

import json
import subprocess
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import pytest

from scheduler.dispatch.connections import redis_client
from scheduler.fleet import store as fleet
from tests import support
from tests.conftest import METRICS_TOKEN

pytestmark = [pytest.mark.sqlite, pytest.mark.slow]
FINAL = {"succeeded", "failed", "cancelled"}


@contextmanager
def draining(uuids: Iterable[str], reason: str) -> Iterator[None]:
    """Drain these GPUs for the block, so that the next jobs go to the others; resume them after."""
    r, uuids = redis_client(), list(uuids)
    for uuid in uuids:
        fleet.set_draining(r, uuid, True, reason)
    try:
        yield
    finally:
        for uuid in uuids:
            fleet.set_draining(r, uuid, False)


def wait_final(session, url: str, job_id: int, timeout: float = 60) -> dict:
    def final():
        job = session.get(f"{url}/api/jobs/{job_id}/").json()
        return job if job["status"] in FINAL else None

    return support.wait_until(final, timeout, f"job {job_id} to finish", every=0.1)


def test_a_job_submitted_over_http_runs_and_its_result_reads_back(live_system, live_cast):
    http = live_system.session(live_cast.token(live_cast.alice))
    response = http.post(f"{live_system.url}/api/jobs/", json={"kind": "stats", "params": {"size": 1000, "seed": 3}})
    assert response.status_code == 201, response.text
    job = wait_final(http, live_system.url, response.json()["id"])
    assert job["status"] == "succeeded", job
    assert job["queue"] in {s.queue for s in live_system.wait_for_gpus(2)}
    assert job["route_reason"] and job["attempts"] == 1
    statuses = [e["status"] for e in job["events"] if e["status"]]
    assert statuses == ["waiting", "queued", "running", "succeeded"]
    assert job["result"]["backend"] == "numpy" and job["result"]["gpu_time_s"] >= 0


def test_jobs_spread_over_both_workers(live_system, live_cast):
    http = live_system.session(live_cast.token(live_cast.alice))
    specs = [{"kind": "burn", "params": {"seconds": 0.3, "mib": 1}} for _ in range(6)]
    jobs = http.post(f"{live_system.url}/api/jobs/batch/", json={"jobs": specs}).json()["jobs"]
    done = [wait_final(http, live_system.url, j["id"]) for j in jobs]
    assert all(j["status"] == "succeeded" for j in done)
    assert len({j["queue"] for j in done}) == 2


def run_cli(live_system, token: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = live_system.env(GPUQ_URL=live_system.url, GPUQ_TOKEN=token, GPUQ_CONFIG="/nonexistent/cli.json")
    return subprocess.run(
        [support.python(), "-m", "cli.submit_job", *args],
        env=env,
        cwd=support.ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        input=stdin,
    )


def test_the_cli_submits_waits_and_prints_a_correct_result(live_system, live_cast):
    out = run_cli(
        live_system,
        live_cast.token(live_cast.alice),
        "matmul",
        "--param",
        "n=64",
        "--param",
        "dtype=float64",
        "--param",
        "seed=5",
        "--wait",
        "--json",
    )
    assert out.returncode == 0, out.stderr
    [job] = json.loads(out.stdout)
    from gpu_tasks.arrays import host_matrices

    a, b = host_matrices(64, "float64", 5)
    assert job["status"] == "succeeded"
    assert job["result"]["checksum"] == pytest.approx(float((a @ b).sum()), rel=1e-9)


def test_the_cli_exits_non_zero_when_a_job_fails(live_system, live_cast):
    out = run_cli(live_system, live_cast.token(live_cast.staff), "fault", "--param", "mode=raise", "--wait", "--json")
    assert out.returncode == 1
    [job] = json.loads(out.stdout)
    assert job["status"] == "failed" and "fault injected" in job["error"]


def test_the_cli_refuses_bad_parameters_with_the_allowed_range(live_system, live_cast):
    out = run_cli(live_system, live_cast.token(live_cast.alice), "matmul", "--param", "n=0")
    assert out.returncode == 2
    assert "n" in out.stderr and "between" in out.stderr and "Traceback" not in out.stderr


def test_the_cli_says_plainly_when_the_token_is_wrong_or_the_server_is_away(live_system, live_cast, tmp_path):
    bad = run_cli(live_system, "not-a-token", "list")
    assert bad.returncode == 3 and "token" in bad.stderr
    env = live_system.env(
        GPUQ_URL=f"http://127.0.0.1:{support.free_port()}", GPUQ_TOKEN="x", GPUQ_CONFIG=str(tmp_path / "none.json")
    )
    away = subprocess.run(
        [support.python(), "-m", "cli.submit_job", "list"],
        env=env,
        cwd=support.ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert away.returncode == 3 and "cannot reach" in away.stderr


def test_a_batch_file_runs_whole_and_the_summary_lists_every_job(live_system, live_cast, tmp_path):
    batch = tmp_path / "jobs.jsonl"
    batch.write_text("\n".join(json.dumps({"kind": "fft", "params": {"n": 256 * (i + 1)}}) for i in range(4)) + "\n")
    out = run_cli(live_system, live_cast.token(live_cast.alice), "--batch", str(batch), "--wait", "--json")
    assert out.returncode == 0, out.stderr
    jobs = json.loads(out.stdout)
    assert [j["params"]["n"] for j in jobs] == [256, 512, 768, 1024]
    assert all(j["status"] == "succeeded" for j in jobs)


def test_a_malformed_batch_file_stores_nothing(live_system, live_cast, tmp_path):
    batch = tmp_path / "jobs.jsonl"
    batch.write_text('{"kind": "fft", "params": {"n": 256}}\n{"kind": "fft", "params": \n')
    out = run_cli(live_system, live_cast.token(live_cast.alice), "--batch", str(batch))
    assert out.returncode == 2 and "jobs.jsonl:2" in out.stderr
    http = live_system.session(live_cast.token(live_cast.alice))
    assert http.get(f"{live_system.url}/api/jobs/").json()["count"] == 0


def test_metrics_count_the_jobs_that_ran(live_system, live_cast):
    from prometheus_client.parser import text_string_to_metric_families

    http = live_system.session(live_cast.token(live_cast.alice))
    jobs = http.post(f"{live_system.url}/api/jobs/batch/", json={"jobs": [{"kind": "noop"}] * 3}).json()["jobs"]
    for j in jobs:
        assert wait_final(http, live_system.url, j["id"])["status"] == "succeeded"
    scrape = http.get(f"{live_system.url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    families = {f.name: f for f in text_string_to_metric_families(scrape.text)}
    succeeded = {s.labels["kind"]: s.value for s in families["gpuq_jobs"].samples if s.labels["status"] == "succeeded"}
    assert succeeded["noop"] == 3
    counts = [s.value for s in families["gpuq_job_duration_seconds"].samples if s.name.endswith("_count")]
    assert counts and counts[0] >= 3
    utilization = [s for s in families["gpuq_gpu_utilization_percent"].samples]
    assert {s.labels["host"] for s in utilization} >= {"hostA", "hostB"}


def test_fair_share_lets_a_small_user_through_a_flood_on_real_workers(live_system, live_cast):
    """Bound: bob's 5 jobs, submitted after alice's 60, all finish before alice's 30th does."""
    alice = live_system.session(live_cast.token(live_cast.alice))
    bob = live_system.session(live_cast.token(live_cast.bob))
    burn = {"kind": "burn", "params": {"seconds": 0.1, "mib": 1}}
    flood = alice.post(f"{live_system.url}/api/jobs/batch/", json={"jobs": [burn] * 60}).json()["jobs"]
    small = bob.post(f"{live_system.url}/api/jobs/batch/", json={"jobs": [burn] * 5}).json()["jobs"]
    last_of_bob = max(wait_final(bob, live_system.url, j["id"])["finished_at"] for j in small)
    alice_before = sum(
        1
        for j in flood
        if (alice.get(f"{live_system.url}/api/jobs/{j['id']}/").json()["finished_at"] or "~") < last_of_bob
    )
    assert alice_before < 30, alice_before
    live_system.quiesce()
