"""Telemetry from recorded NVML answers, and the fleet's Redis keys against a real Redis (the tests' DB)."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest
import redis

from benchmarks.record_snapshots import ReplayNvml, load_recording
from scheduler.fleet import store as fleet
from scheduler.fleet.snapshot import Snapshot
from tests.support import wait_until
from workers import telemetry
from workers.gpu import cpu_identity, list_gpus

FIXTURES = Path(__file__).parent / "fixtures" / "snapshots"
MiB = 2**20
SNAPSHOT_KEYS = {
    "host",
    "uuid",
    "name",
    "index",
    "bus_id",
    "queue",
    "kind",
    "memory_total",
    "memory_used",
    "memory_free",
    "memory_usable",
    "utilization",
    "temperature",
    "power_w",
    "running_job",
    "healthy",
    "health_reason",
    "draining",
    "last_seen",
    "processes",
}


def recording(label: str) -> dict:
    return load_recording(FIXTURES / f"{label}.json")


def take(rec: dict, index: int = 0, our_pids: set[int] = frozenset(), **kw) -> Snapshot:
    nvml = ReplayNvml(rec)
    args = {"host": rec["host"], "running_job": None, "draining": False, "our_pids": set(our_pids), "now": 100.0}
    return telemetry.snapshot(nvml, list_gpus(nvml)[index], **{**args, **kw})


@pytest.fixture
def r(redis_url):
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.flushdb()


@pytest.mark.parametrize(
    "label", ["h200x2_idle", "h200x2_busy", "h100x1", "recorded_h200x2_idle", "recorded_h200x2_busy"]
)
def test_it_rebuilds_the_recorded_snapshots(label):
    rec = recording(label)
    for snap in rec["snapshots"]:
        again = take(rec, snap.index, set(rec["our_pids"]), now=snap.last_seen)
        assert again == snap
        assert SNAPSHOT_KEYS <= set(snap.to_dict()) and Snapshot.from_json(snap.to_json()) == snap


def test_it_counts_memory_of_other_processes_as_foreign():
    busy = recording("h200x2_busy")
    ours, foreign = take(busy, 0, {41873}), take(busy, 1, {41873})
    assert ours.memory_usable == ours.memory_total == 143771 * MiB
    assert foreign.memory_foreign == 61856 * MiB
    assert foreign.memory_usable == (143771 - 61856) * MiB
    assert list(foreign.processes) == [{"pid": 52210, "memory": 61856 * MiB}]


def test_a_real_foreign_process_is_counted_against_its_gpu_only():
    idle, busy = recording("recorded_h200x2_busy")["snapshots"]
    assert idle.memory_usable == idle.memory_total
    assert busy.memory_foreign == busy.processes[0]["memory"] > 60 * 2**30
    assert busy.memory_usable == busy.memory_total - busy.memory_foreign


def test_a_process_becomes_foreign_when_it_is_not_ours():
    snap = take(recording("h200x2_busy"), 0, our_pids=set())
    assert snap.memory_usable == (143771 - 21042) * MiB


def test_it_reads_load_and_identity():
    snap = take(recording("h200x2_busy"), 1, running_job=7, draining=True)
    assert (snap.queue, snap.bus_id, snap.kind) == ("gpu.h200x2.c901ab12", "0000:00:07.0", "gpu")
    assert (snap.utilization, snap.temperature, snap.power_w) == (88.0, 54, 540.877)
    assert (snap.running_job, snap.draining, snap.last_seen) == (7, True, 100.0)


def test_it_tolerates_queries_the_gpu_does_not_support():
    rec = recording("h100x1")
    rec["devices"][0].update(power_mw=None, ecc_uncorrected=None, utilization_gpu=None, temperature=None)
    snap = take(rec)
    assert (snap.power_w, snap.utilization, snap.temperature) == (None, None, None)
    assert snap.healthy is True


def test_it_tolerates_processes_without_memory_figures():
    rec = recording("h200x2_busy")
    rec["devices"][1]["processes"][0]["usedGpuMemory"] = None
    assert take(rec, 1).memory_usable == 143771 * MiB


def test_uncorrected_ecc_errors_make_a_gpu_unhealthy():
    rec = recording("h100x1")
    rec["devices"][0]["ecc_uncorrected"] = 2
    snap = take(rec)
    assert snap.healthy is False
    assert "2 uncorrected ECC errors" in snap.health_reason


def test_the_cpu_worker_reports_the_same_keys():
    snap = telemetry.cpu_snapshot(cpu_identity("laptop", 0), host="laptop", running_job=None, draining=False, now=5.0)
    assert SNAPSHOT_KEYS <= set(snap.to_dict())
    assert (snap.kind, snap.queue, snap.note) == ("cpu", "cpu.laptop", "no NVML: CPU worker")
    assert 0 < snap.memory_free <= snap.memory_usable == snap.memory_total
    assert 0 <= snap.utilization <= 100 and snap.temperature is None


def test_a_published_snapshot_is_live_until_its_ttl(r):
    snap = recording("h200x2_idle")["snapshots"][0]
    fleet.publish(r, snap, ttl=0.5)
    assert fleet.live_snapshots(r) == [snap]
    wait_until(lambda: not fleet.live_snapshots(r), timeout=3)
    assert [g["uuid"] for g in fleet.known_gpus(r)] == [snap.uuid]


def test_the_fleet_remembers_static_facts_and_the_largest_gpu(r):
    assert fleet.largest_gpu_memory(fleet.known_gpus(r)) is None
    for label in ["h100x1", "h200x2_idle"]:
        for snap in recording(label)["snapshots"]:
            fleet.publish(r, snap, ttl=10)
    known = fleet.known_gpus(r)
    assert [g["queue"] for g in known] == ["gpu.h100x1.7d2e9a44", "gpu.h200x2.3f5b2d1e", "gpu.h200x2.c901ab12"]
    assert set(known[0]) == set(fleet.STATIC_FIELDS)
    assert fleet.largest_gpu_memory(fleet.known_gpus(r)) == 143771 * MiB
    assert len(fleet.live_snapshots(r)) == 3


def test_history_is_capped(r, monkeypatch):
    monkeypatch.setattr(fleet, "HISTORY_POINTS", 5)
    snap = recording("h200x2_busy")["snapshots"][1]
    for t in range(8):
        fleet.publish(r, replace(snap, last_seen=float(t)), ttl=10)
    points = fleet.history(r, snap.uuid)
    assert [p["t"] for p in points] == [3.0, 4.0, 5.0, 6.0, 7.0]
    assert points[-1] == {"t": 7.0, "memory_used": snap.memory_used, "utilization": 88.0, "temperature": 54}


def test_draining_and_health_flags_round_trip(r):
    fleet.set_draining(r, "GPU-a", True, "driver update")
    fleet.mark_unhealthy(r, "GPU-b", "3 CUDA errors in a row")
    assert fleet.draining(r) == {"GPU-a": "driver update"}
    assert fleet.unhealthy(r) == {"GPU-b": "3 CUDA errors in a row"}
    fleet.set_draining(r, "GPU-a", False)
    fleet.clear_unhealthy(r, "GPU-b")
    assert fleet.draining(r) == {} and fleet.unhealthy(r) == {}


def test_a_snapshot_becomes_the_routers_gpu_state():
    snap = recording("h200x2_busy")["snapshots"][1]
    state = fleet.to_gpu_state(snap, slots=2, concurrency=1, held_jobs=1, held_work=2.5, held_memory=3)
    assert (state.queue, state.memory_usable, state.utilization) == (snap.queue, (143771 - 61856) * MiB, 88.0)
    assert (state.healthy, state.draining, state.held_jobs, state.held_work) == (True, False, 1, 2.5)


def test_the_publisher_keeps_publishing_and_marks_a_failing_gpu_unhealthy(r):
    snap = recording("h100x1")["snapshots"][0]
    calls = []

    def collect() -> Snapshot:
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("GPU is lost")
        return snap

    publisher = telemetry.Publisher(r, collect, interval=0.02, ttl=5)
    publisher.start()
    try:
        live = wait_until(lambda: len(calls) > 2 and [s for s in fleet.live_snapshots(r) if not s.healthy])
    finally:
        publisher.stop()
    assert "telemetry failed: RuntimeError: GPU is lost" in live[0].health_reason
    assert not publisher.is_alive()


def test_the_publisher_stops_promptly(r):
    publisher = telemetry.Publisher(r, lambda: recording("h100x1")["snapshots"][0], interval=60, ttl=5)
    publisher.start()
    wait_until(lambda: fleet.live_snapshots(r))
    started = time.monotonic()
    publisher.stop()
    assert time.monotonic() - started < 1 and not publisher.is_alive()
