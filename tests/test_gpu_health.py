"""Per-GPU health: NVML faults and failing jobs mark a GPU, routing leaves it, staff bring it back."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.record_snapshots import ReplayNvml, load_recording
from scheduler.dispatch.connections import redis_client
from scheduler.fleet import health
from scheduler.fleet import store as fleet
from scheduler.jobs.models import Job, Status
from scheduler.jobs.reaper import Reaper
from scheduler.jobs.release import release
from scheduler.jobs.submission import submit
from workers import gpu_health, service, telemetry
from workers.gpu import list_gpus
from workers.identity import WorkerIdentity

pytestmark = pytest.mark.sqlite
FIXTURES = Path(__file__).parent / "fixtures" / "snapshots"


def faulty_snapshots() -> list:
    nvml = ReplayNvml(load_recording(FIXTURES / "h200x2_faulty.json"))
    snaps = []
    for g in list_gpus(nvml):
        xids = gpu_health.XidWatch(nvml, nvml.nvmlDeviceGetHandleByUUID(g.uuid)).drain()
        args = {"running_job": None, "draining": False, "our_pids": set(), "now": 1.0}
        snaps.append(telemetry.snapshot(nvml, g, host="h200x2", xids=xids, **args))
    return snaps


def test_it_reads_xid_errors_and_pending_remaps_and_retired_pages_from_nvml():
    xid, remap = faulty_snapshots()
    assert not xid.healthy and xid.health_reason == "Xid 79 reported by the driver"  # Xid 13 is the job's own
    assert not remap.healthy
    assert "retired memory pages pending" in remap.health_reason
    assert "row remapping pending (2 uncorrectable rows)" in remap.health_reason


def test_a_recording_without_the_health_fields_reads_healthy():
    nvml = ReplayNvml(load_recording(FIXTURES / "recorded_h200x2_idle.json"))
    handle = nvml.nvmlDeviceGetHandleByIndex(0)
    assert gpu_health.problems(nvml, handle, gpu_health.XidWatch(nvml, handle).drain()) == []


def test_an_nvml_fault_marks_the_gpu_until_staff_clear_it_and_only_a_new_one_marks_it_again(r):
    uuid = "GPU-health-0"
    assert health.settle(r, uuid, "3 uncorrected ECC errors since the driver loaded").startswith("3 uncorrected")
    assert fleet.unhealthy(r) == {uuid: "3 uncorrected ECC errors since the driver loaded"}
    health.clear(r, uuid)
    assert health.settle(r, uuid, "3 uncorrected ECC errors since the driver loaded") == ""  # acknowledged
    assert health.settle(r, uuid, "4 uncorrected ECC errors since the driver loaded").startswith("4 uncorrected")


def test_jobs_failing_in_a_row_with_cuda_errors_mark_the_gpu(r, settings):
    settings.GPU_CUDA_FAILURES_UNHEALTHY = 3
    uuid = "GPU-health-1"
    health.job_ended(r, uuid, True, "illegal address")
    health.job_ended(r, uuid, True, "illegal address")
    health.job_ended(r, uuid, False)  # a job that ran fine in between: not "in a row"
    assert [health.job_ended(r, uuid, True, "illegal address") for _ in range(3)] == [False, False, True]
    assert "3 jobs in a row failed with CUDA errors" in fleet.unhealthy(r)[uuid]


def test_the_worker_publishes_the_mark_as_its_health(r):
    [snap, _] = faulty_snapshots()
    ident = WorkerIdentity(kind="gpu", uuid=snap.uuid, host="h200x2", queue=snap.queue)
    published = service._overridden(ident, snap)
    assert not published.healthy and published.health_reason == "Xid 79 reported by the driver"
    health.clear(r, snap.uuid)
    assert service._overridden(ident, replace(snap, healthy=True, health_reason="")).healthy


def test_an_unhealthy_gpu_is_drained_its_jobs_rerouted_shown_and_resumed_by_staff(
    transactional_db, live_cast, fake_gpus, r
):
    cast = live_cast
    sick, well = fake_gpus([80, 80])
    jobs = submit(cast.alice, [{"kind": "noop"} for _ in range(4)])  # two slots on each GPU
    on_sick = list(Job.objects.filter(queue=sick.queue).values_list("id", flat=True))
    assert len(on_sick) == 2
    fleet.mark_unhealthy(redis_client(), sick.uuid, "Xid 79 reported by the driver")
    Reaper().run()
    for job_id in on_sick:
        job = Job.objects.get(id=job_id)
        assert job.status == Status.WAITING and "is unhealthy: Xid 79" in job.events.last().message
    Job.objects.filter(queue=well.queue).update(status=Status.SUCCEEDED)
    release()
    assert set(Job.objects.filter(id__in=on_sick).values_list("queue", flat=True)) == {well.queue}
    assert len(jobs) == 4

    row = {g["uuid"]: g for g in cast.api(cast.alice).get("/api/gpus/").json()}[sick.uuid]
    assert row["healthy"] is False and row["health_reason"] == "Xid 79 reported by the driver"
    web = Client()
    web.force_login(cast.staff)
    assert "unhealthy: Xid 79" in web.get("/gpus/").content.decode()
    samples = [s for f in text_string_to_metric_families(web.get("/metrics").content.decode()) for s in f.samples]
    assert any(s.name == "gpuq_gpu_healthy" and s.labels["gpu"] == sick.uuid and s.value == 0 for s in samples)

    assert cast.api(cast.alice).post(f"/api/gpus/{sick.uuid}/resume/").status_code == 403
    resumed = cast.api(cast.staff).post(f"/api/gpus/{sick.uuid}/resume/").json()
    assert resumed["healthy"] is True and sick.uuid not in fleet.unhealthy(redis_client())
