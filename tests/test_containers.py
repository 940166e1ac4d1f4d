"""Container jobs against a real engine (Podman's Docker API here): run, fail, time out, cancel, refuse, clean up."""

from __future__ import annotations

import os

import pytest

from scheduler.jobs.models import ContainerImage, Job, LogLine
from tests import support
from tests.conftest import running_system
from tests.engine import job_containers, log_size_cap
from tests.test_e2e import run_cli, wait_final
from workers.identity import WorkerIdentity

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def containers_system(django_db_setup, django_db_blocker, redis_url, container_engine):
    with running_system(redis_url, hosts=("hostC",), DOCKER_HOST=container_engine.url) as system:
        yield system


@pytest.fixture
def live(containers_system, live_cast, container_engine):
    """The live system with the test image on the allowlist; afterwards no container of ours is left."""
    ContainerImage.objects.create(image=container_engine.image, description="busybox for the tests")
    yield containers_system
    containers_system.quiesce()
    support.wait_until(lambda: not job_containers(container_engine), 20, "the job containers to be removed")


def submit(live, cast, user=None, **params) -> dict:
    http = live.session(cast.token(user or cast.alice))
    time_limit = params.pop("time_limit", None)
    spec = {"kind": "container", "params": params, "time_limit": time_limit}
    response = http.post(f"{live.url}/api/jobs/", json=spec)
    assert response.status_code == 201, response.text
    return response.json()


def log_lines(job: dict) -> list[str]:
    return list(LogLine.objects.filter(job_id=job["id"]).order_by("n").values_list("text", flat=True))


def test_a_container_runs_and_its_output_and_exit_code_come_back(live, live_cast, container_engine):
    job = submit(
        live,
        live_cast,
        image=container_engine.image,
        command="""sh -c 'echo "hello from $GREETING"; echo to stderr >&2; id -u'""",
        env='GREETING="the queue"',
    )
    done = wait_final(live.session(live_cast.token(live_cast.alice)), live.url, job["id"])
    assert done["status"] == "succeeded", done
    assert done["result"]["exit_code"] == 0 and done["result"]["image"] == container_engine.image
    # stdout and stderr are two pipes: their lines interleave in no fixed order
    assert sorted(log_lines(done)[:3]) == ["65534", "hello from the queue", "to stderr"]


def test_a_failing_command_fails_the_job_with_its_exit_code(live, live_cast, container_engine):
    job = submit(live, live_cast, image=container_engine.image, command="sh -c 'echo about to fail; exit 7'")
    done = wait_final(live.session(live_cast.token(live_cast.alice)), live.url, job["id"])
    assert (done["status"], done["error_kind"], done["result"]["exit_code"]) == ("failed", "exit", 7)
    assert "exited with code 7" in done["error"] and "about to fail" in log_lines(done)


def test_the_time_limit_kills_the_container(live, live_cast, container_engine):
    job = submit(live, live_cast, image=container_engine.image, command="sleep 120", time_limit=2)
    done = wait_final(live.session(live_cast.token(live_cast.alice)), live.url, job["id"], timeout=40)
    assert (done["status"], done["error_kind"]) == ("failed", "timeout"), done
    assert "time limit of 2 s" in done["error"]


def test_cancelling_stops_the_container_and_the_settings_hold_on_it(live, live_cast, container_engine):
    job = submit(live, live_cast, image=container_engine.image, command="sleep 120")
    [container] = support.wait_until(lambda: job_containers(container_engine), 30, "the job's container to exist")
    container.reload()
    host, config = container.attrs["HostConfig"], container.attrs["Config"]
    assert config["User"] == "65534:65534" and host["Privileged"] is False
    assert "no-new-privileges" in host["SecurityOpt"] and host["NetworkMode"] == "none"
    assert host["Memory"] == 16 * 1024**3 and host["PidsLimit"] == 1024
    assert {"CHOWN", "SETUID", "NET_RAW"} <= set(host["CapDrop"])
    assert "CUDA_VISIBLE_DEVICES=" in config["Env"] and "NVIDIA_VISIBLE_DEVICES=void" in config["Env"]
    assert container.labels["gpuq.job"] == str(job["id"])
    # No swap beyond memory, a CPU limit, a read-only root with a /tmp, and a cap on the engine's log.
    assert host["MemorySwap"] == host["Memory"] and host["NanoCpus"] == min(8, os.cpu_count() or 1) * 10**9
    assert host["ReadonlyRootfs"] is True and "size=1g" in host["Tmpfs"]["/tmp"]
    assert log_size_cap(container_engine, container).lower().startswith("10m")

    http = live.session(live_cast.token(live_cast.alice))
    support.wait_until(lambda: http.get(f"{live.url}/api/jobs/{job['id']}/").json()["status"] == "running", 30)
    assert http.post(f"{live.url}/api/jobs/{job['id']}/cancel/").status_code == 200
    support.wait_until(lambda: not job_containers(container_engine), 15, "the cancelled job's container to go")
    assert Job.objects.get(id=job["id"]).status == "cancelled"


def test_an_image_off_the_allowlist_is_refused_and_nothing_is_stored(live, live_cast):
    http = live.session(live_cast.token(live_cast.alice))
    spec = {"kind": "container", "params": {"image": "docker.io/library/ubuntu:24.04", "command": "true"}}
    response = http.post(f"{live.url}/api/jobs/", json=spec)
    assert response.status_code == 400
    assert "not on the allowlist" in response.json()["params"]["image"]
    assert not Job.objects.filter(kind="container").exists()


def test_a_missing_image_fails_with_a_clear_message(live, live_cast):
    ContainerImage.objects.create(image="localhost/gpuq-never-built:1")
    job = submit(live, live_cast, image="localhost/gpuq-never-built:1", command="true")
    done = wait_final(live.session(live_cast.token(live_cast.alice)), live.url, job["id"])
    assert (done["status"], done["error_kind"]) == ("failed", "image")
    assert "is not on the container engine" in done["error"] and "docker pull" in done["error"]


def test_the_cli_runs_a_container_job_and_shows_its_log(live, live_cast, container_engine):
    token = live_cast.token(live_cast.alice)
    image = f"image={container_engine.image}"
    out = run_cli(live, token, "container", "--param", image, "--param", "command=echo from the cli", "--wait")
    assert out.returncode == 0, out.stdout + out.stderr
    job_id = Job.objects.get(kind="container").id
    logs = run_cli(live, token, "logs", str(job_id))
    assert logs.returncode == 0 and "from the cli" in logs.stdout
    # A text parameter is taken as typed: `true` is the command, not a JSON boolean.
    typed = run_cli(live, token, "container", "--param", image, "--param", "command=true", "--wait", "--json")
    assert typed.returncode == 0, typed.stdout + typed.stderr


def test_the_form_submits_a_container_job_with_its_time_limit(live, live_cast, container_engine, client):
    client.force_login(live_cast.alice)
    response = client.post(
        "/submit/",
        {
            "kind": "container",
            "container.image": container_engine.image,
            "container.command": "echo from the form",
            "time_limit": "30",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    job = Job.objects.get(kind="container")
    assert job.time_limit == 30
    done = wait_final(live.session(live_cast.token(live_cast.alice)), live.url, job.id)
    assert done["status"] == "succeeded" and "from the form" in log_lines(done)
    page = client.get(f"/jobs/{job.id}/").content.decode()
    assert "from the form" in page


def test_only_staff_change_the_allowlist(cast):
    alice, staff = cast.api(cast.alice), cast.api(cast.staff)
    assert alice.post("/api/images/", {"image": "team/train:1"}, format="json").status_code == 403
    made = staff.post("/api/images/", {"image": "team/train:1", "allow_network": True}, format="json")
    assert made.status_code == 201 and made.json()["added_by"] == "sam"
    assert [i["image"] for i in alice.get("/api/images/").json()["results"]] == ["team/train:1"]
    assert staff.post("/api/images/", {"image": "has space"}, format="json").status_code == 400
    assert alice.delete(f"/api/images/{made.json()['id']}/").status_code == 403
    assert staff.delete(f"/api/images/{made.json()['id']}/").status_code == 204


@pytest.mark.parametrize(
    "params, field, message",
    [
        ({"command": "echo 'unclosed"}, "command", "cannot be split"),
        ({"env": "NOEQUALS"}, "env", "is not NAME=VALUE"),
        ({"env": "CUDA_VISIBLE_DEVICES=0"}, "env", "set by the worker"),
        ({"image": "two words"}, "image", "without spaces"),
        ({"env": "NVIDIA_DRIVER_CAPABILITIES=all"}, "env", "set by the worker"),
        ({"env": "NVIDIA_MIG_CONFIG_DEVICES=all"}, "env", "set by the worker"),
        ({"env": "NVIDIA_GDRCOPY=enabled"}, "env", "set by the worker"),
        ({"env": "nvidia_imex_channels=0"}, "env", "set by the worker"),
    ],
)
def test_bad_container_parameters_are_a_400_naming_the_field(cast, params, field, message):
    ContainerImage.objects.create(image="team/train:1")
    spec = {"kind": "container", "params": {"image": "team/train:1", **params}}
    response = cast.api(cast.alice).post("/api/jobs/", spec, format="json")
    assert response.status_code == 400 and message in response.json()["params"][field]


def test_a_gpu_worker_gives_the_container_exactly_its_gpu(cast):
    from workers.containers import create_options

    entry = ContainerImage.objects.create(image="team/train:1", allow_network=True)
    job = Job(id=5, attempts=1, params={"image": "team/train:1", "command": "python train.py --epochs 2", "env": ""})
    worker = WorkerIdentity("gpu", "node1", "GPU-1234", "gpu.node1.GPU-1234")
    options = create_options(job, entry, worker)
    [request] = options["device_requests"]
    assert request["DeviceIDs"] == ["GPU-1234"] and request["Capabilities"] == [["gpu"]]
    assert options["environment"]["CUDA_VISIBLE_DEVICES"] == options["environment"]["NVIDIA_VISIBLE_DEVICES"]
    assert options["environment"]["CUDA_VISIBLE_DEVICES"] == "GPU-1234"
    assert options["command"] == ["python", "train.py", "--epochs", "2"]
    assert options["environment"]["NVIDIA_DRIVER_CAPABILITIES"] == "compute,utility"
    assert options["network_mode"] == "gpuq-jobs"  # this entry grants a network: its own, not the default bridge
    [request] = create_options(job, entry, worker, gpu_mode="cdi")["device_requests"]
    assert (request["Driver"], request["DeviceIDs"]) == ("cdi", ["nvidia.com/gpu=GPU-1234"])


def test_root_runs_only_where_staff_allowed_it_for_the_image(cast, settings):
    from workers.containers import ContainerFailed, create_options

    entry = ContainerImage.objects.create(image="team/train:1")
    job = Job(id=5, attempts=1, params={"image": "team/train:1", "command": "", "env": ""})
    worker = WorkerIdentity("cpu", "node1", "CPU-node1", "cpu.node1")
    settings.CONTAINER_USER = "0:0"
    with pytest.raises(ContainerFailed, match="root, which staff have not allowed"):
        create_options(job, entry, worker)
    entry.allow_root = True
    assert create_options(job, entry, worker)["user"] == "0:0"


def test_a_container_gets_the_cpus_asked_for_but_never_more_than_the_host_has(cast, settings):
    from workers.containers import create_options

    entry = ContainerImage.objects.create(image="team/train:1")
    job = Job(id=5, attempts=1, params={"image": "team/train:1", "command": "", "env": ""})
    worker = WorkerIdentity("cpu", "node1", "CPU-node1", "cpu.node1")
    settings.CONTAINER_CPUS = 0.5
    assert create_options(job, entry, worker)["nano_cpus"] == 500_000_000
    settings.CONTAINER_CPUS = 4096.0  # the engine would refuse to start it
    assert create_options(job, entry, worker)["nano_cpus"] == os.cpu_count() * 1_000_000_000


def test_a_networked_image_runs_on_its_own_network_and_an_allowed_root_as_root(live, live_cast, container_engine):
    ContainerImage.objects.filter(image=container_engine.image).update(allow_network=True, allow_root=True)
    job = submit(live, live_cast, image=container_engine.image, command="sh -c 'id -u; sleep 30'")
    [container] = support.wait_until(lambda: job_containers(container_engine), 30, "the job's container to exist")
    container.reload()
    assert list(container.attrs["NetworkSettings"]["Networks"]) == ["gpuq-jobs"]
    http = live.session(live_cast.token(live_cast.alice))
    support.wait_until(lambda: "0" in log_lines(http.get(f"{live.url}/api/jobs/{job['id']}/").json()), 30, "id -u")
    http.post(f"{live.url}/api/jobs/{job['id']}/cancel/")


def test_a_killed_workers_container_is_swept_when_it_starts_again_and_never_two_attempts_run(
    live, live_cast, container_engine
):
    job = submit(live, live_cast, image=container_engine.image, command="sleep 120")
    [first] = support.wait_until(lambda: job_containers(container_engine), 30, "the job's container to exist")
    live.workers["hostC"].kill()  # SIGKILL: nothing of the worker is left to remove its container
    assert [c.name for c in job_containers(container_engine)] == [first.name]  # still running on the GPU
    seen: list[set[str]] = []
    live.workers["hostC"] = live.start_worker("hostC")
    # Swept by the worker's start, before the lost lease (10 s + grace) even sends the job back to waiting.
    support.wait_until(lambda: not job_containers(container_engine), 12, "the killed worker's container to go")
    assert Job.objects.get(id=job["id"]).attempts == 1

    def second_attempt():
        names = {c.name for c in job_containers(container_engine)}
        seen.append(names)
        return names and first.name not in names

    support.wait_until(second_attempt, 90, "the first attempt's container to go and the second's to start")
    assert all(len(names) <= 1 for names in seen), seen
    assert Job.objects.get(id=job["id"]).attempts == 2
    live.wait_for_gpus(1)
    live.session(live_cast.token(live_cast.alice)).post(f"{live.url}/api/jobs/{job['id']}/cancel/")  # its sleep 120
