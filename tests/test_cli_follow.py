"""The CLI's conversation: ids and states while it waits, what to do after Ctrl-C, `wait ID`, the array's
id, summaries, and refusals with exit codes (2 for the user's mistake, 3 for the server or the token)."""

import json
import re
import signal
import subprocess

import pytest

from tests import support
from tests.test_e2e import run_cli

pytestmark = [pytest.mark.slow]


@pytest.fixture
def alice(live_cast) -> str:
    return live_cast.token(live_cast.alice)


def test_wait_says_the_job_id_and_each_state(live_system, alice):
    out = run_cli(live_system, alice, "noop", "--wait")
    assert out.returncode == 0, out.stderr
    [job_id] = {int(i) for i in re.findall(r"job (\d+)", out.stderr)}
    # queued where its submission released it to an idle GPU (scheduler/jobs/idle_release.py), else waiting
    assert re.search(rf"submitted: job {job_id} \((waiting|queued)\)", out.stderr), out.stderr
    assert f"job {job_id}: succeeded" in out.stderr
    assert "1 job: 1 succeeded" in out.stdout


def test_ctrl_c_while_waiting_names_the_job_that_goes_on(live_system, alice):
    env = live_system.env(GPUQ_URL=live_system.url, GPUQ_TOKEN=alice, GPUQ_CONFIG="/nonexistent/cli.json")
    proc = subprocess.Popen(
        [support.python(), "-m", "cli.submit_job", "burn", "-p", "seconds=30", "-p", "mib=1", "--wait"],
        env=env,
        cwd=support.ROOT,
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        # As at a terminal: a test run started in the background (`make test &`) ignores SIGINT, and a
        # Python started with SIGINT ignored keeps ignoring it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    first = proc.stderr.readline()  # "submitted: job N (waiting)": the id is known before we interrupt
    job_id = int(first.split("job ")[1].split()[0])
    proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert f"job {job_id} goes on" in rest and f"submit-job wait {job_id}" in rest
    cancelled = run_cli(live_system, alice, "cancel", str(job_id))
    assert cancelled.returncode == 0, cancelled.stderr


def test_wait_follows_jobs_already_submitted_and_exits_1_when_one_failed(live_system, live_cast, alice):
    staff = live_cast.token(live_cast.staff)
    http = live_system.session(staff)
    ok = http.post(f"{live_system.url}/api/jobs/", json={"kind": "noop"}).json()["id"]
    bad = http.post(f"{live_system.url}/api/jobs/", json={"kind": "fault", "params": {"mode": "raise"}}).json()["id"]
    out = run_cli(live_system, staff, "wait", str(ok), "--json")
    assert out.returncode == 0 and json.loads(out.stdout)[0]["status"] == "succeeded"
    both = run_cli(live_system, staff, "wait", str(ok), str(bad))
    assert both.returncode == 1 and "2 jobs: 1 succeeded, 1 failed" in " ".join(both.stdout.split())
    assert run_cli(live_system, alice, "wait", str(ok)).returncode == 2  # not hers: "not found"


def test_an_array_says_its_id_for_array_cancel(live_system, alice):
    out = run_cli(live_system, alice, "fft", "--array", "n=256,512", "--json")
    assert out.returncode == 0, out.stderr
    array_id = out.stderr.split("array ")[1].split(":")[0]
    assert f"submit-job array-cancel {array_id}" in out.stderr
    assert run_cli(live_system, alice, "array-cancel", array_id).returncode == 0


def test_list_refuses_an_unknown_status_and_stray_arguments(live_system, alice):
    bogus = run_cli(live_system, alice, "list", "--status", "bogus")
    assert bogus.returncode == 2 and "unknown status 'bogus'" in bogus.stderr
    stray = run_cli(live_system, alice, "list", "extra")
    assert stray.returncode == 2 and "unexpected: extra" in stray.stderr
    param = run_cli(live_system, alice, "matmul", "512")
    assert param.returncode == 2 and "--param NAME=VALUE" in param.stderr
    assert run_cli(live_system, alice, "show").returncode == 2


def test_a_refused_token_names_where_it_was_read(live_system, tmp_path):
    out = run_cli(live_system, "not-a-token", "list")
    assert out.returncode == 3 and "refused the token from $GPUQ_TOKEN" in out.stderr
    config = tmp_path / "cli.json"
    config.write_text(json.dumps({"url": live_system.url, "token": "stale"}))
    env = live_system.env(GPUQ_CONFIG=str(config))
    env.pop("GPUQ_TOKEN", None), env.pop("GPUQ_URL", None)
    from_file = subprocess.run(
        [support.python(), "-m", "cli.submit_job", "list"], env=env, cwd=support.ROOT, capture_output=True, text=True
    )
    assert from_file.returncode == 3 and f"refused the token from {config}" in from_file.stderr


def test_login_checks_the_token_then_saves_it(live_system, alice, tmp_path):
    config = tmp_path / "gpuq" / "cli.json"
    env = live_system.env(GPUQ_CONFIG=str(config))
    env.pop("GPUQ_TOKEN", None), env.pop("GPUQ_URL", None)

    def cli(*args: str) -> subprocess.CompletedProcess:
        command = [support.python(), "-m", "cli.submit_job", *args]
        return subprocess.run(command, env=env, cwd=support.ROOT, capture_output=True, text=True, timeout=60)

    wrong = cli("login", "--url", live_system.url, "--token", "wrong")
    assert wrong.returncode == 3 and not config.exists()
    assert cli("login", "--url", live_system.url, "--token", alice).returncode == 0
    assert json.loads(config.read_text()) == {"url": live_system.url, "token": alice}
    assert cli("list").returncode == 0  # later commands need neither flag


def test_the_lab_queue_in_the_cli_shows_owners_but_not_others_ids(live_system, live_cast, alice):
    http = live_system.session(live_cast.token(live_cast.bob))
    bobs = http.post(f"{live_system.url}/api/jobs/", json={"kind": "burn", "params": {"seconds": 20, "mib": 1}})
    out = run_cli(live_system, alice, "queue", "--json")
    assert out.returncode == 0, out.stderr
    rows = [j for j in json.loads(out.stdout)["jobs"] if j["owner"] == "bob"]
    assert rows and all(j["id"] is None for j in rows)
    table = run_cli(live_system, alice, "queue")
    assert "bob" in table.stdout and "unfinished jobs in the lab" in table.stdout
    gpus = support.wait_until(
        lambda: (out := run_cli(live_system, alice, "gpus")).returncode == 0 and "bob · burn" in out.stdout and out,
        30,
        "bob's burn on a GPU in `submit-job gpus`",
    )
    assert "GiB" in gpus.stdout  # memory at GPU scale, not MiB
    http.post(f"{live_system.url}/api/jobs/{bobs.json()['id']}/cancel/")


def test_the_python_client_submits_waits_and_reads_the_array(live_system, live_cast, alice):
    from gpuq import Client, Error

    client = Client(live_system.url, alice)
    job = client.submit("matmul", n=64, dtype="float64").wait(timeout=60)
    assert job.status == "succeeded" and job.array().shape == (64, 64)
    assert [j.id for j in client.jobs(kind="matmul")] == [job.id]
    with pytest.raises(Error, match="between"):
        client.submit("matmul", n=3)
    slow = client.submit("burn", seconds=30, mib=1)
    with pytest.raises(TimeoutError, match=f"job {slow.id} still"):
        slow.wait(timeout=0.5)
    assert slow.cancel().status == "cancelled"
