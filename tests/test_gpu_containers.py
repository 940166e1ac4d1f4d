"""On a GPU host with an engine that takes GPU requests (Podman 5.4 and the host's CDI spec, or Docker
with the NVIDIA toolkit): a container job sees exactly the GPU it was routed to, whatever NVIDIA_*
environment its image or its owner sets. Run with `pytest -m gpu` after benchmarks/engine-start.sh
and `python -m workers.cdi` (benchmarks/gpu-host-check.sh does both)."""

from __future__ import annotations

import re
from datetime import datetime

import pytest

from scheduler.jobs.models import ContainerImage
from tests import engine, support
from tests.conftest import running_system
from tests.test_containers import log_lines
from tests.test_doctor import doctor_command
from tests.test_e2e import wait_final
from tests.test_gpu_e2e import nvml_gpus
from workers import cdi, container_gpu

pytestmark = [pytest.mark.gpu, pytest.mark.slow]
LIST_GPUS = "sh -c 'nvidia-smi -L; ls /dev'"


@pytest.fixture(scope="module")
def gpu_image(container_engine):
    gpus = nvml_gpus()
    if not gpus:
        pytest.skip("no NVIDIA GPU visible through NVML")
    client = container_engine.client()
    try:
        mode = container_gpu.mode_for(client, "auto")
    except container_gpu.UnsupportedEngine as exc:
        pytest.skip(str(exc))
    named = set(cdi.spec_device_names())
    if mode == "cdi" and not all(cdi.device_name(g.uuid) in named for g in gpus):
        pytest.skip("no CDI spec names this host's GPUs: run python -m workers.cdi")
    try:
        return engine.gpu_image(container_engine)
    except engine.Unavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def gpu_containers(django_db_setup, django_db_blocker, redis_url, container_engine, gpu_image):
    gpus = nvml_gpus()
    with running_system(redis_url, gpus=tuple(g.uuid for g in gpus), DOCKER_HOST=container_engine.url) as system:
        system.gpus = {g.uuid: g for g in gpus}
        yield system


@pytest.fixture
def live(gpu_containers, live_cast, container_engine, gpu_image):
    ContainerImage.objects.create(image=gpu_image, description="busybox and glibc, for nvidia-smi")
    yield gpu_containers
    gpu_containers.quiesce()
    support.wait_until(lambda: not engine.job_containers(container_engine), 20, "the job containers to be removed")


def run_jobs(live, cast, image: str, count: int, command: str = LIST_GPUS, **params) -> list[dict]:
    http = live.session(cast.token(cast.alice))
    spec = {"kind": "container", "params": {"image": image, "command": command, **params}}
    ids = []
    for _ in range(count):
        response = http.post(f"{live.url}/api/jobs/", json=spec, timeout=30)
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    jobs = [wait_final(http, live.url, i, timeout=120) for i in ids]
    assert all(j["status"] == "succeeded" for j in jobs), [(j["error"], log(j)) for j in jobs]
    return jobs


def log(job: dict) -> list[str]:
    """What the container printed, as the job's numbered log keeps it."""
    return log_lines(job)


def gpus_listed(job: dict) -> list[str]:
    """The UUIDs `nvidia-smi -L` printed inside the job's container."""
    return [m.group(1) for line in log(job) if (m := re.search(r"\(UUID: (GPU-[0-9a-f-]+)\)", line))]


def gpu_nodes(job: dict) -> list[str]:
    return sorted(line for line in log(job) if re.fullmatch(r"nvidia\d+", line))


def test_it_gives_each_container_job_exactly_the_gpu_it_was_routed_to(live, live_cast, gpu_image):
    jobs = run_jobs(live, live_cast, gpu_image, 2 * len(live.gpus))
    for job in jobs:
        assert gpus_listed(job) == [job["gpu_uuid"]], log(job)
        assert len(gpu_nodes(job)) == 1, log(job)
    assert {j["gpu_uuid"] for j in jobs} == set(live.gpus)  # and it ran on every GPU


def test_nvidia_environment_from_the_image_or_the_user_does_not_widen_what_it_sees(live, live_cast, gpu_image):
    # The image says NVIDIA_VISIBLE_DEVICES=all (as NVIDIA's CUDA images do); the user may set no NVIDIA_* at all.
    [job] = run_jobs(live, live_cast, gpu_image, 1, command="sh -c 'env; nvidia-smi -L; ls /dev'")
    assert gpus_listed(job) == [job["gpu_uuid"]] and len(gpu_nodes(job)) == 1, log(job)
    assert f"NVIDIA_VISIBLE_DEVICES={job['gpu_uuid']}" in log(job)
    http = live.session(live_cast.token(live_cast.alice))
    for widen in ("NVIDIA_VISIBLE_DEVICES=all", "NVIDIA_DRIVER_CAPABILITIES=all", "NVIDIA_MIG_CONFIG_DEVICES=all"):
        spec = {"kind": "container", "params": {"image": gpu_image, "env": widen}}
        refused = http.post(f"{live.url}/api/jobs/", json=spec, timeout=30)
        assert refused.status_code == 400 and "set by the worker" in refused.text, (widen, refused.text)


def test_two_container_jobs_at_once_each_see_only_their_own_gpu(live, live_cast, gpu_image):
    if len(live.gpus) < 2:
        pytest.skip(f"one GPU on this host ({len(live.gpus)}): two at once needs two")
    jobs = run_jobs(live, live_cast, gpu_image, 2, command="sh -c 'nvidia-smi -L; ls /dev; sleep 4'")
    assert len({j["gpu_uuid"] for j in jobs}) == 2  # the router spreads two jobs over two idle GPUs
    for job in jobs:
        assert gpus_listed(job) == [job["gpu_uuid"]] and len(gpu_nodes(job)) == 1, log(job)
    first, second = sorted(jobs, key=lambda j: j["started_at"])
    assert datetime.fromisoformat(second["started_at"]) < datetime.fromisoformat(first["finished_at"])


def test_doctor_engine_checks_pass_for_every_gpu(redis_url, tmp_path, container_engine, gpu_image, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", container_engine.url)
    out = doctor_command(redis_url, tmp_path, "--engine", "--gpu-image", gpu_image, "--compose", "")
    engine_lines = [line for line in out.stdout.splitlines() if "GPU container" in line]
    assert engine_lines and all(line.startswith("✓") for line in engine_lines), out.stdout + out.stderr
    for gpu in nvml_gpus():
        assert f"the container sees exactly {gpu.uuid}" in out.stdout, out.stdout
