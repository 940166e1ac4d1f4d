"""The doctor's checks, fed the versions and GPU lists of hosts this machine is not."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests import support
from workers import doctor, engine_checks, gpu

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "compose" / "docker-compose.yml"
H200 = [
    gpu.GpuIdentity(0, "GPU-3f5b2d1e-8a7c-4b1e-9d2f-6a0b1c2d3e4f", "0000:00:06.0", "NVIDIA H200", 150754820096),
    gpu.GpuIdentity(1, "GPU-c901ab12-3d4e-5f60-7182-93a4b5c6d7e8", "0000:00:07.0", "NVIDIA H200", 150754820096),
]
no_nvml = pytest.mark.skipif(doctor.load_nvml() is not None, reason="this host has NVML")


def test_driver_older_than_runtime_major_names_both_versions():
    finding = doctor.check_driver_runtime(12040, 13020)
    assert not finding.ok
    assert "The NVIDIA driver supports CUDA 12.4 but this image's CUDA runtime is 13.2" in finding.message
    assert "CUPY_PACKAGE=cupy-cuda12x" in finding.message and "CUDA_BASE=nvidia/cuda:12.4" in finding.message


def test_newer_minor_of_the_drivers_major_passes():
    assert doctor.check_driver_runtime(13000, 13020).ok


def test_no_driver_is_said_plainly():
    finding = doctor.check_driver_runtime(0, 12060)
    assert not finding.ok and "no NVIDIA driver" in finding.message


def test_two_gpus_for_one_worker_are_refused():
    finding = doctor.check_visible_gpus("0,1", H200)
    assert not finding.ok and "several GPUs" in finding.message


def test_a_uuid_of_no_gpu_here_is_refused():
    finding = doctor.check_visible_gpus("GPU-deadbeef", H200)
    assert not finding.ok and "names no GPU on this host" in finding.message


def test_no_gpu_at_all_is_refused():
    finding = doctor.check_visible_gpus("0", [])
    assert not finding.ok and "NVML finds no GPU" in finding.message


def test_a_uuid_names_its_gpu():
    finding = doctor.check_visible_gpus(H200[1].uuid, H200)
    assert finding.ok and "GPU 1 NVIDIA H200" in finding.message


def test_cuda_on_another_bus_than_nvml_fails():
    assert doctor.check_nvml_cuda_agree(H200[1], "0000:00:07.0").ok
    finding = doctor.check_nvml_cuda_agree(H200[1], "0000:00:06.0")
    assert not finding.ok and "wrong GPU" in finding.message


def test_a_cuda_error_is_reported_with_the_gpu():
    (finding,) = doctor.check_cuda_view(H200[0], {"error": "CUDARuntimeError: cudaErrorNoDevice"})
    assert not finding.ok and H200[0].uuid in finding.message and "cudaErrorNoDevice" in finding.message


def test_redis_at_a_closed_port_is_unreachable():
    port = support.free_port()
    finding = doctor.check_redis(f"redis://:secret@127.0.0.1:{port}/0")
    assert not finding.ok
    assert f"cannot reach Redis at 127.0.0.1:{port}" in finding.message and "secret" not in finding.message


def test_redis_of_the_tests_answers(redis_url):
    assert doctor.check_redis(redis_url).ok


def test_database_of_the_tests_answers(db):
    assert doctor.check_database().ok


def test_gpu_missing_from_the_compose_file_fails():
    assert doctor.check_gpu_in_compose(H200[1].uuid, COMMITTED).ok
    finding = doctor.check_gpu_in_compose("GPU-00000000-aaaa-bbbb-cccc-000000000000", COMMITTED)
    assert not finding.ok and "no worker" in finding.message and "manage.py compose" in finding.message


@no_nvml
def test_worker_preflight_without_nvml_fails_plainly():
    (finding,) = doctor.worker_preflight("0")
    assert not finding.ok and "NVML is not available" in finding.message


def doctor_command(redis_url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, REDIS_URL=redis_url, DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3")
    return subprocess.run(
        [support.python(), "manage.py", "doctor", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


@no_nvml
def test_doctor_on_this_host_passes_and_skips_gpu_checks(redis_url, tmp_path):
    out = doctor_command(redis_url, tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "✓ Redis" in out.stdout and "✓ database" in out.stdout
    assert "no NVML on this host: GPU checks skipped" in out.stdout


def test_doctor_fails_on_a_driver_older_than_the_runtime(redis_url, tmp_path):
    out = doctor_command(redis_url, tmp_path, "--driver-version", "12040", "--runtime-version", "13020")
    assert out.returncode == 1
    assert "✗ CUDA driver vs runtime: The NVIDIA driver supports CUDA 12.4" in out.stdout


def test_doctor_fails_when_redis_is_unreachable(tmp_path):
    out = doctor_command(f"redis://127.0.0.1:{support.free_port()}/0", tmp_path)
    assert out.returncode == 1 and "✗ Redis: cannot reach Redis" in out.stdout


@pytest.mark.gpu
def test_worker_preflight_passes_for_each_gpu_here():
    from workers.cuda_probe import cuda_view

    nvml = doctor.load_nvml()
    if nvml is None:
        pytest.skip("no NVML on this host")
    for found in gpu.list_gpus(nvml):
        os.environ["CUDA_VISIBLE_DEVICES"] = found.uuid
        try:
            findings = doctor.worker_preflight(found.uuid, nvml, cuda_view())
        finally:
            os.environ.pop("CUDA_VISIBLE_DEVICES")
        assert all(f.ok for f in findings), [str(f) for f in findings]


# --- the container engine ------------------------------------------------------------------------------------


@no_nvml
def test_doctor_checks_the_engine_it_is_pointed_at(redis_url, tmp_path, container_engine, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", container_engine.url)
    out = doctor_command(redis_url, tmp_path, "--engine")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "✓ container engine:" in out.stdout and container_engine.url in out.stdout
    assert "no GPUs on this host: GPU container checks skipped" in out.stdout


def test_doctor_says_plainly_when_no_engine_answers(redis_url, tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    out = doctor_command(redis_url, tmp_path, "--engine")
    assert out.returncode == 1 and "✗ container engine: no engine answers at unix://" in out.stdout


PODMAN = {"Components": [{"Name": "Podman Engine", "Version": "5.4.2"}]}
OLD_PODMAN = {"Components": [{"Name": "Podman Engine", "Version": "4.3.1"}]}
DOCKER_CDI = {"Runtimes": {"runc": {}}, "DiscoveredDevices": [{"Source": "cdi", "ID": "nvidia.com/gpu=all"}]}


@pytest.mark.parametrize(
    "info, version, cdi_names, ok",
    [
        ({"Runtimes": {"runc": {}, "nvidia": {}}}, None, (), True),
        (DOCKER_CDI, None, (), True),
        ({"Runtimes": {"runc": {}, "crun": {}}}, None, (), False),  # no toolkit, no CDI
        ({"Runtimes": {"crun": {}}}, PODMAN, ("nvidia.com/gpu=GPU-3f5b2d1e", "nvidia.com/gpu=0"), True),
        ({"Runtimes": {"crun": {}}}, PODMAN, (), False),  # Podman 5.4 without a spec on the host
        ({"Runtimes": {"runc": {}}}, None, ("nvidia.com/gpu=0",), False),  # Docker, its CDI off: spec unused
    ],
)
def test_gpu_runtime_is_an_nvidia_runtime_or_cdi_devices_an_engine_takes(info, version, cdi_names, ok):
    finding = engine_checks.check_gpu_runtime(info, version, cdi_names)
    assert finding.ok is ok
    if not ok:
        assert "NVIDIA Container Toolkit" in finding.message and "python -m workers.cdi" in finding.message


def test_podman_too_old_for_gpu_requests_is_named_with_the_version_that_takes_them():
    finding = engine_checks.check_gpu_runtime({"Runtimes": {"runc": {}}}, OLD_PODMAN, ("nvidia.com/gpu=0",))
    assert not finding.ok and "Podman 4.3 ignores GPU device requests" in finding.message


def test_a_gpu_container_must_see_exactly_the_gpu_it_was_given():
    one = "GPU 0: NVIDIA H200 (UUID: GPU-3f5b2d1e)\n"
    assert engine_checks.gpus_seen("probe", "GPU-3f5b2d1e", one).ok
    both = one + "GPU 1: NVIDIA H200 (UUID: GPU-c901ab12)\n"
    finding = engine_checks.gpus_seen("probe", "GPU-3f5b2d1e", both)
    assert not finding.ok and "sees 2 GPU(s)" in finding.message
