"""On a GPU host: jobs through real pinned workers land on the GPU they were routed to, and GPU faults
(out of memory, a sticky CUDA error) fail only their job. Run with `pytest -m gpu`."""

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from scheduler.jobs.models import Job, Status
from tests import support
from tests.test_e2e import draining, wait_final

pytestmark = [pytest.mark.gpu, pytest.mark.slow]


def nvml_gpus():
    try:
        import pynvml

        from workers.gpu import list_gpus

        pynvml.nvmlInit()
        return list_gpus(pynvml)
    except Exception:
        return []


@pytest.fixture(scope="module")
def gpu_system(django_db_setup, django_db_blocker, redis_url):
    from django.db import connection

    from tests.conftest import LiveSystem, _forget_gpus

    gpus = nvml_gpus()
    if not gpus:
        pytest.skip("no NVIDIA GPU visible through NVML")
    system = LiveSystem(support.database_url(connection.settings_dict), redis_url, gpus=tuple(g.uuid for g in gpus))
    system.gpus = {g.uuid: g for g in gpus}
    yield system
    system.stop()
    _forget_gpus(redis_url, system.hosts)


def submit(system, token, spec):
    response = system.session(token).post(f"{system.url}/api/jobs/", json=spec, timeout=30)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_each_job_runs_on_the_gpu_it_was_routed_to(gpu_system, live_cast):
    from workers.gpu import normalize_bus_id

    token = live_cast.token(live_cast.alice)
    spec = {"kind": "matmul", "params": {"n": 4096, "repeat": 20}}
    ids = [submit(gpu_system, token, spec) for _ in range(4 * len(gpu_system.gpus))]
    jobs = [wait_final(gpu_system.session(token), gpu_system.url, i, timeout=180) for i in ids]
    assert all(j["status"] == "succeeded" for j in jobs), [j["error"] for j in jobs]
    for job in jobs:
        routed = gpu_system.gpus[job["gpu_uuid"]]
        assert job["result"]["backend"] == "cupy"
        assert normalize_bus_id(job["result"]["pci_bus_id"]) == normalize_bus_id(routed.bus_id)
    assert len({j["gpu_uuid"] for j in jobs}) == len(gpu_system.gpus)


@contextmanager
def only_on_gpu(system, uuid: str) -> Iterator[None]:
    """Drain the other GPUs, so that the next jobs run on `uuid`'s worker."""
    with draining([u for u in system.gpus if u != uuid], "test: only one GPU"):
        yield


def test_a_job_out_of_gpu_memory_fails_plainly_and_the_next_one_runs_on_the_same_gpu(gpu_system, live_cast):
    token = live_cast.token(live_cast.staff)
    oom = submit(gpu_system, token, {"kind": "fault", "params": {"mode": "oom", "mib": 4 * 1024 * 1024}})
    job = wait_final(gpu_system.session(token), gpu_system.url, oom, timeout=120)
    assert job["status"] == "failed" and job["error_kind"] == "oom"
    assert "out of GPU memory" in job["error"] and "GiB" in job["error"]
    with only_on_gpu(gpu_system, job["gpu_uuid"]):  # the GPU it failed on, read from the job, not guessed
        after = [submit(gpu_system, token, {"kind": "matmul", "params": {"n": 2048}}) for _ in range(2)]
        done = [wait_final(gpu_system.session(token), gpu_system.url, i, timeout=120) for i in after]
    assert all(j["status"] == "succeeded" for j in done), [j["error"] for j in done]
    assert {j["gpu_uuid"] for j in done} == {job["gpu_uuid"]}  # its memory pool was freed: the worker goes on


def test_a_sticky_cuda_error_fails_its_job_and_the_worker_comes_back_clean(gpu_system, live_cast):
    token = live_cast.token(live_cast.staff)
    sticky = submit(gpu_system, token, {"kind": "fault", "params": {"mode": "sticky"}})
    job = wait_final(gpu_system.session(token), gpu_system.url, sticky, timeout=120)
    assert job["status"] == "failed" and job["error_kind"] == "sticky", job
    with only_on_gpu(gpu_system, job["gpu_uuid"]):
        behind = [submit(gpu_system, token, {"kind": "matmul", "params": {"n": 1024}}) for _ in range(4)]
        done = [wait_final(gpu_system.session(token), gpu_system.url, i, timeout=180) for i in behind]
    assert all(j["status"] == "succeeded" for j in done), [j["error"] for j in done]
    assert {j["gpu_uuid"] for j in done} == {job["gpu_uuid"]}  # a clean pool process on the same GPU
    assert Job.objects.filter(id=sticky, status=Status.FAILED).count() == 1
