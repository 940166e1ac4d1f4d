"""On a GPU host: `submit-job run` trains examples/train.py on the GPU the job was routed to, which is the only
one it sees, and its checkpoint downloads. Run with `pytest -m gpu`."""

from __future__ import annotations

import json

import pytest

from tests.conftest import running_system
from tests.test_e2e import run_cli, wait_final
from tests.test_gpu_e2e import nvml_gpus

pytestmark = [pytest.mark.gpu, pytest.mark.slow]

SEES = "import cupy, os; print(cupy.cuda.runtime.getDeviceCount(), os.environ['CUDA_VISIBLE_DEVICES'])"


@pytest.fixture(scope="module")
def gpu_system(django_db_setup, django_db_blocker, redis_url, tmp_path_factory):
    gpus = nvml_gpus()
    if not gpus:
        pytest.skip("no NVIDIA GPU visible through NVML")
    files = tmp_path_factory.mktemp("run-gpu")
    env = {"RUN_JOBS_IN": "local", "RESULTS_DIR": str(files / "results"), "JOBS_DIR": str(files / "jobs")}
    with running_system(redis_url, gpus=tuple(g.uuid for g in gpus), **env) as system:
        yield system


def test_a_training_script_runs_on_its_gpu_and_saves_a_checkpoint(gpu_system, live_cast, tmp_path):
    token = live_cast.token(live_cast.alice)
    args = ["run", "--working-dir", ".", "--time-limit", "300", "--wait", "--json"]
    out = run_cli(gpu_system, token, *args, "--", "python3", "examples/train.py", "--steps", "50")
    assert out.returncode == 0, out.stdout + out.stderr
    job = wait_final(gpu_system.session(token), gpu_system.url, json.loads(out.stdout.splitlines()[-1])[0]["id"])
    log = run_cli(gpu_system, token, "logs", str(job["id"])).stdout
    assert "training on NVIDIA" in log and f"CUDA_VISIBLE_DEVICES='{job['gpu_uuid']}'" in log, log
    fetched = run_cli(gpu_system, token, "outputs", str(job["id"]), "-o", str(tmp_path / "ckpt"))
    assert fetched.returncode == 0 and (tmp_path / "ckpt" / "checkpoint.npz").stat().st_size > 1000


def test_each_run_job_sees_only_the_gpu_it_was_routed_to(gpu_system, live_cast):
    token = live_cast.token(live_cast.alice)
    for _ in range(2):
        out = run_cli(gpu_system, token, "run", "--wait", "--json", "--", "python3", "-c", SEES)
        assert out.returncode == 0, out.stdout + out.stderr
        job = json.loads(out.stdout.splitlines()[-1])[0]
        log = run_cli(gpu_system, token, "logs", str(job["id"])).stdout.split()
        assert log == ["1", job["gpu_uuid"]], log
