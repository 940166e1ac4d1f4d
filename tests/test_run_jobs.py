"""`submit-job run` end to end with real processes: the CLI packs and uploads a dir, a CPU worker runs the
command as a local process in it, its log follows live, its outputs download; failures say what happened."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from scheduler.jobs.models import Job
from tests import support
from tests.conftest import running_system
from tests.test_e2e import run_cli, wait_final

pytestmark = [pytest.mark.slow]

TRAIN = """\
import os, pathlib, sys, time
print("CUDA_VISIBLE_DEVICES=" + repr(os.environ.get("CUDA_VISIBLE_DEVICES")))
print("runner " + os.environ["GPUQ_RUNNER"] + " in " + ",".join(sorted(os.listdir("."))))
print("waiting for go", flush=True)
go = pathlib.Path(os.environ["GO_FILE"])
while not go.exists():
    time.sleep(0.05)
pathlib.Path("outputs/model.txt").write_text("weights 42\\n")
print("checkpoint written to " + os.environ["GPUQ_OUTPUTS"], file=sys.stderr)
"""


@pytest.fixture(scope="module")
def run_system(django_db_setup, django_db_blocker, redis_url, tmp_path_factory):
    files = tmp_path_factory.mktemp("run-system")
    env = {
        "RUN_JOBS_IN": "local",
        "RESULTS_DIR": str(files / "results"),
        "JOBS_DIR": str(files / "jobs"),
        "OUTPUT_MAX_BYTES": "200000",
        "USER_OUTPUT_MAX_BYTES": "300000",
    }
    with running_system(redis_url, hosts=("hostR",), **env) as system:
        yield system


@pytest.fixture
def live(run_system, live_cast):
    yield run_system
    run_system.quiesce()


def project(tmp_path: Path, script: str = TRAIN) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "train.py").write_text(script)
    (root / ".gitignore").write_text("data/\n")
    (root / "data").mkdir()
    (root / "data" / "huge.bin").write_bytes(b"0" * 100_000)
    return root


def submitted(out: subprocess.CompletedProcess) -> dict:
    assert out.returncode == 0, out.stdout + out.stderr
    return json.loads(out.stdout)[0]


def test_a_script_runs_in_its_uploaded_dir_its_log_follows_live_and_its_outputs_download(live, live_cast, tmp_path):
    token = live_cast.token(live_cast.alice)
    root, go = project(tmp_path), tmp_path / "go"
    args = ["--working-dir", str(root), "--name", "first try", "--tag", "exp1", "--time-limit", "60"]
    out = run_cli(live, token, "run", *args, "--env", f"GO_FILE={go}", "--json", "--", "python", "train.py")
    job = submitted(out)
    assert (job["kind"], job["runner"], job["name"], job["tags"]) == ("run", "local", "first try", ["exp1"])

    follower = subprocess.Popen(
        [support.python(), "-m", "cli.submit_job", "logs", str(job["id"]), "-f"],
        env=live.env(GPUQ_URL=live.url, GPUQ_TOKEN=token, GPUQ_CONFIG="/nonexistent"),
        cwd=support.ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen = [follower.stdout.readline().strip() for _ in range(3)]
    # Read while the script still waits for us: the log came live, not at the end.
    assert Job.objects.get(id=job["id"]).status == "running"
    assert seen == ["CUDA_VISIBLE_DEVICES=''", "runner local in .gitignore,outputs,train.py", "waiting for go"]
    go.touch()
    rest, errors = follower.communicate(timeout=60)
    assert follower.returncode == 0 and rest == ""
    assert "checkpoint written to " in errors and errors.strip().endswith("/outputs")

    done = wait_final(live.session(token), live.url, job["id"])
    assert done["status"] == "succeeded", done
    assert done["result"]["exit_code"] == 0 and done["result"]["outputs"]["files"] == 1
    assert done["gpu_seconds"] > 0
    dest = tmp_path / "downloaded"
    fetched = run_cli(live, token, "outputs", str(job["id"]), "-o", str(dest))
    assert fetched.returncode == 0, fetched.stderr
    assert (dest / "model.txt").read_text() == "weights 42\n"
    [listed] = json.loads(run_cli(live, token, "list", "--kind", "run", "--json").stdout)
    assert (listed["name"], listed["tags"], listed["runner"]) == ("first try", ["exp1"], "local")


def test_an_unchanged_dir_is_not_sent_twice(live, live_cast, tmp_path):
    token, root = live_cast.token(live_cast.alice), project(tmp_path, "print('hello')\n")
    first = run_cli(live, token, "run", "--working-dir", str(root), "--", "python", "train.py")
    second = run_cli(live, token, "run", "--working-dir", str(root), "--wait", "--", "python", "train.py")
    assert "files sent" in first.stderr and "unchanged" in second.stderr, second.stderr
    assert second.returncode == 0 and "hello" in second.stdout
    assert "warning: no time limit given" in second.stderr


@pytest.mark.parametrize(
    "code, kind, words",
    [
        (
            "import sys; print('loading'); print('bad config', file=sys.stderr); sys.exit(3)",
            "exit",
            "exited with code 3",
        ),
        ("raise MemoryError()", "oom", "out of host memory"),
        (
            "import sys; sys.exit('cupy.cuda.memory.OutOfMemoryError: Out of memory allocating 8 GiB')",
            "oom",
            "GPU memory",
        ),
        ("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", "oom", "killed by SIGKILL"),
    ],
)
def test_a_failure_says_what_happened_with_the_last_lines_of_stderr(live, live_cast, code, kind, words):
    token = live_cast.token(live_cast.alice)
    out = run_cli(live, token, "run", "--wait", "--json", "--", "python", "-c", code)
    assert out.returncode == 1
    done = wait_final(live.session(token), live.url, json.loads(out.stdout)[0]["id"])
    assert (done["status"], done["error_kind"]) == ("failed", kind), done
    assert words in done["error"] and done["gpu_seconds"] is not None
    if kind == "exit":
        assert done["result"]["exit_code"] == 3 and done["error"].endswith("Last lines of stderr:\nbad config")


def writer_of(size: int) -> str:
    return f"import os; open(os.environ['GPUQ_OUTPUTS'] + '/blob', 'wb').write(b'x' * {size})"


def test_outputs_over_the_per_job_or_per_user_cap_are_not_kept_and_say_so(live, live_cast):
    token = live_cast.token(live_cast.bob)
    over = run_cli(live, token, "run", "--wait", "--json", "--", "python", "-c", writer_of(250_000))
    done = wait_final(live.session(token), live.url, json.loads(over.stdout)[0]["id"])
    assert (done["status"], done["error_kind"]) == ("failed", "outputs")
    assert "OUTPUT_MAX_BYTES" in done["error"] and done["result"]["outputs"]["kept"] is False
    kept = run_cli(live, token, "run", "--wait", "--json", "--", "python", "-c", writer_of(180_000))
    assert kept.returncode == 0, kept.stderr
    refused = run_cli(live, token, "run", "--wait", "--json", "--", "python", "-c", writer_of(180_000))
    done = wait_final(live.session(token), live.url, json.loads(refused.stdout)[0]["id"])
    assert done["error_kind"] == "outputs" and "USER_OUTPUT_MAX_BYTES" in done["error"]
    nothing = run_cli(live, token, "outputs", str(done["id"]))
    assert nothing.returncode == 2 and "kept no outputs" in nothing.stderr


def test_cancel_and_the_time_limit_end_the_process_and_all_it_started(live, live_cast, tmp_path):
    token, pids = live_cast.token(live_cast.alice), tmp_path / "pids"
    script = _starts_a_child_and_writes_both_pids(pids)
    out = run_cli(live, token, "run", "--json", "--", "python", "-c", script)
    job = submitted(out)
    support.wait_until(lambda: pids.exists() and pids.read_text(), 30, "the job to start")
    assert run_cli(live, token, "cancel", str(job["id"])).returncode == 0
    for pid in map(int, pids.read_text().split()):
        support.wait_until(lambda pid=pid: not _alive(pid), 15, f"process {pid} to end")
    timed = run_cli(live, token, "run", "--time-limit", "2", "--wait", "--json", "--", "sleep", "60")
    done = wait_final(live.session(token), live.url, json.loads(timed.stdout)[0]["id"])
    assert (done["status"], done["error_kind"]) == ("failed", "timeout") and "time limit of 2 s" in done["error"]


def test_a_worker_killed_outright_takes_its_local_process_and_all_it_started_with_it(live, live_cast, tmp_path):
    token, pids = live_cast.token(live_cast.alice), tmp_path / "pids"
    script = _starts_a_child_and_writes_both_pids(pids)
    job = submitted(run_cli(live, token, "run", "--json", "--", "python", "-c", script))
    support.wait_until(lambda: pids.exists() and pids.read_text(), 30, "the job to start")
    started = list(map(int, pids.read_text().split()))
    live.restart_worker("hostR")  # SIGKILL: the worker stops nothing itself
    for pid in started:
        support.wait_until(lambda pid=pid: not _alive(pid), 15, f"process {pid} to end")
    assert run_cli(live, token, "cancel", str(job["id"])).returncode == 0  # its next attempt, if one began


def _starts_a_child_and_writes_both_pids(pids: Path) -> str:
    return (
        "import os, subprocess; child = subprocess.Popen(['sleep', '300']); "
        f"open({str(pids)!r}, 'w').write(f'{{os.getpid()}} {{child.pid}}'); child.wait()"
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"  # a zombie has ended


def test_the_readme_example_trains_and_saves_a_checkpoint(live, live_cast, tmp_path):
    token = live_cast.token(live_cast.alice)
    out = run_cli(
        live, token, "run", "--working-dir", ".", "--wait", "--", "python", "examples/train.py", "--steps", "20"
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "training on CPU (NumPy)" in out.stdout and "saved " in out.stdout
    job_id = Job.objects.filter(kind="run").latest("id").id
    fetched = run_cli(live, token, "outputs", str(job_id), "-o", str(tmp_path / "ckpt"))
    assert fetched.returncode == 0 and (tmp_path / "ckpt" / "checkpoint.npz").stat().st_size > 1000
