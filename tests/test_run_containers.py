"""`run` jobs on a multi-user deployment: in a real engine's container (Podman's Docker API here), as the owner's
own uid, with the uploaded dir as cwd, staff's mounts (datasets read-only), outputs copied back out; and never
as a local process, whether at submission or at the worker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scheduler.jobs import submission
from scheduler.jobs.models import ContainerImage, Job, Mount
from tests import support
from tests.conftest import running_system
from tests.engine import job_containers
from tests.test_e2e import run_cli, wait_final

pytestmark = [pytest.mark.slow]

TRAIN_SH = """\
echo "CUDA_VISIBLE_DEVICES=[$CUDA_VISIBLE_DEVICES]"
echo "uid $(id -u) in $(pwd)"
cat /mounts/imagenet/labels.txt
echo overwritten > /mounts/imagenet/labels.txt || echo "dataset is read-only"
echo "from the job" > "$GPUQ_MOUNT_ALICE_WS/notes.txt" && echo "workspace written"
echo "weights 42" > outputs/model.txt
echo "done" >&2
"""


@pytest.fixture(scope="module")
def deployment(django_db_setup, django_db_blocker, redis_url, container_engine, tmp_path_factory):
    files = tmp_path_factory.mktemp("deployment")
    env = {
        "MULTI_USER": "true",
        "DOCKER_HOST": container_engine.url,
        "RUN_DEFAULT_IMAGE": container_engine.image,
        "RESULTS_DIR": str(files / "results"),
        "JOBS_DIR": str(files / "jobs"),
    }
    with running_system(redis_url, hosts=("hostM",), **env) as system:
        yield system


@pytest.fixture
def live(deployment, live_cast, container_engine, tmp_path):
    ContainerImage.objects.create(image=container_engine.image, description="busybox for the tests")
    data, workspace = tmp_path / "imagenet", tmp_path / "ws-alice"
    data.mkdir()
    (data / "labels.txt").write_text("cat\ndog\n")
    workspace.mkdir()
    workspace.chmod(0o777)  # the test cannot chown to the job's uid in every sandbox; staff would
    Mount.objects.create(name="imagenet", kind=Mount.DATASET, path=str(data), everyone=True)
    Mount.objects.create(name="alice-ws", kind=Mount.WORKSPACE, path=str(workspace)).users.add(live_cast.alice)
    yield deployment
    deployment.quiesce()
    support.wait_until(lambda: not job_containers(container_engine), 20, "the job containers to be removed")


def test_a_script_runs_in_a_container_as_its_owner_with_its_mounts_and_outputs(live, live_cast, tmp_path):
    token = live_cast.token(live_cast.alice)
    root = tmp_path / "project"
    root.mkdir()
    (root / "train.sh").write_text(TRAIN_SH)
    args = ["--working-dir", str(root), "--mount", "imagenet", "--mount", "alice-ws", "--wait", "--json"]
    out = run_cli(live, token, "run", *args, "--", "sh", "train.sh")
    assert out.returncode == 0, out.stdout + out.stderr
    job = json.loads(out.stdout)[0]
    assert (job["runner"], job["params"]["image"]) == ("container", live.env()["RUN_DEFAULT_IMAGE"])
    logs = run_cli(live, token, "logs", str(job["id"]))
    uid = 100000 + live_cast.alice.id
    assert logs.stdout.splitlines() == [
        "CUDA_VISIBLE_DEVICES=[]",
        f"uid {uid} in /work",
        "cat",
        "dog",
        "dataset is read-only",
        "workspace written",
    ]
    assert "Read-only file system" in logs.stderr and logs.stderr.strip().endswith("done")
    assert (Path(tmp_path) / "imagenet" / "labels.txt").read_text() == "cat\ndog\n"
    notes = tmp_path / "ws-alice" / "notes.txt"
    assert notes.read_text() == "from the job\n" and notes.stat().st_uid == uid
    fetched = run_cli(live, token, "outputs", str(job["id"]), "-o", str(tmp_path / "out"))
    assert fetched.returncode == 0, fetched.stderr
    assert (tmp_path / "out" / "model.txt").read_text() == "weights 42\n"


def test_another_users_workspace_cannot_be_mounted(live, live_cast):
    out = run_cli(live, live_cast.token(live_cast.bob), "run", "--mount", "alice-ws", "--", "true")
    assert out.returncode == 2 and "may not mount 'alice-ws'" in out.stderr
    assert not Job.objects.filter(owner=live_cast.bob).exists()


def test_a_multi_user_deployment_refuses_a_local_process_at_submission_and_at_the_worker(live, live_cast, settings):
    token = live_cast.token(live_cast.alice)
    refused = run_cli(live, token, "run", "--runner", "local", "--", "true")
    assert refused.returncode == 2 and "only in containers" in refused.stderr
    # A row that claims the local runner anyway (written past the API): the worker will not run it.
    settings.MULTI_USER = False
    spec = {"kind": "run", "params": {"command": "touch /tmp/gpuq-should-not-exist", "runner": "local"}}
    [job] = submission.submit(live_cast.alice, [spec])
    done = wait_final(live.session(token), live.url, job.id)
    assert (done["status"], done["error_kind"]) == ("failed", "refused") and "only in containers" in done["error"]
    assert not Path("/tmp/gpuq-should-not-exist").exists()


def test_a_failing_container_names_its_exit_code_and_stderr(live, live_cast):
    token = live_cast.token(live_cast.alice)
    out = run_cli(live, token, "run", "--wait", "--json", "--", "sh", "-c", "echo oops >&2; exit 4")
    done = wait_final(live.session(token), live.url, json.loads(out.stdout)[0]["id"])
    assert (done["status"], done["error_kind"], done["result"]["exit_code"]) == ("failed", "exit", 4)
    assert done["error"].endswith("Last lines of stderr:\noops")


def test_cancelling_a_silent_container_stops_and_removes_it(live, live_cast, container_engine):
    # A command that prints nothing: the engine answers a log request only once there is output, so the
    # worker must not wait on it before watching for the cancellation.
    token = live_cast.token(live_cast.alice)
    job = json.loads(run_cli(live, token, "run", "--json", "--", "sleep", "300").stdout)[0]
    support.wait_until(lambda: job_containers(container_engine), 30, "the job's container to exist")
    support.wait_until(lambda: Job.objects.get(id=job["id"]).status == "running", 30, "the job to run")
    assert run_cli(live, token, "cancel", str(job["id"])).returncode == 0
    support.wait_until(lambda: not job_containers(container_engine), 20, "the cancelled job's container to go")
    assert Job.objects.get(id=job["id"]).status == "cancelled"
