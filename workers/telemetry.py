"""What a worker tells the fleet about its GPU (or its CPU), and the thread that publishes it.

Readings come from NVML, passed in as a module (the real `pynvml` or a fake driven by recorded
fixtures), so this module never needs a GPU to be tested. A GPU is always found by UUID: NVML
ignores CUDA_VISIBLE_DEVICES, so NVML's index 0 is not the pinned worker's CUDA device 0.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from scheduler.fleet import store as fleet
from scheduler.fleet.snapshot import Snapshot
from workers import gpu_health
from workers.gpu import GpuIdentity, as_text, queue_name

log = logging.getLogger(__name__)


def snapshot(
    nvml: Any,
    identity: GpuIdentity,
    *,
    host: str,
    running_job: int | None,
    draining: bool,
    our_pids: set[int],
    now: float,
    xids: Sequence[int] = (),
) -> Snapshot:
    """One reading of a GPU: memory (ours vs foreign), load, health (with the Xids seen since the last
    reading), draining, processes."""
    handle = nvml.nvmlDeviceGetHandleByUUID(identity.uuid)
    memory = nvml.nvmlDeviceGetMemoryInfo(handle)
    processes = _processes(nvml, handle)
    foreign = sum(p["memory"] for p in processes if p["pid"] not in our_pids)
    return Snapshot(
        **_header(identity, host, "gpu", running_job, draining, now),
        memory_total=int(memory.total),
        memory_used=int(memory.used),
        memory_free=int(memory.free),
        memory_foreign=foreign,
        memory_usable=int(memory.total) - foreign,
        **_load(nvml, handle),
        **_health(nvml, handle, list(xids)),
        processes=tuple(processes),
    )


def _header(identity: GpuIdentity, host: str, kind: str, running_job: int | None, draining: bool, now: float) -> dict:
    return {
        "host": host,
        "uuid": identity.uuid,
        "name": identity.name,
        "index": identity.index,
        "bus_id": identity.bus_id,
        "queue": queue_name(host, identity.uuid),
        "kind": kind,
        "running_job": running_job,
        "draining": draining,
        "last_seen": now,
    }


def _processes(nvml: Any, handle: Any) -> list[dict]:
    # usedGpuMemory is None where the driver may not tell (no permission, some containers).
    return [
        {"pid": int(p.pid), "memory": int(p.usedGpuMemory or 0)}
        for p in nvml.nvmlDeviceGetComputeRunningProcesses(handle)
    ]


def _load(nvml: Any, handle: Any) -> dict:
    utilization = unless_unsupported(nvml, nvml.nvmlDeviceGetUtilizationRates, handle)
    power_mw = unless_unsupported(nvml, nvml.nvmlDeviceGetPowerUsage, handle)
    return {
        "utilization": None if utilization is None else float(utilization.gpu),
        "temperature": unless_unsupported(nvml, nvml.nvmlDeviceGetTemperature, handle, nvml.NVML_TEMPERATURE_GPU),
        "power_w": None if power_mw is None else power_mw / 1000,
    }


def _health(nvml: Any, handle: Any, xids: list[int]) -> dict:
    found = gpu_health.problems(nvml, handle, xids)
    return {"healthy": not found, "health_reason": "; ".join(found)}


def unless_unsupported(nvml: Any, fn: Callable[..., Any], *args: Any) -> Any:
    """NVML's answer, or None where this GPU or driver does not support the query (MIG, some boards)."""
    try:
        return fn(*args)
    except nvml.NVMLError_NotSupported:
        return None


def cpu_snapshot(identity: GpuIdentity, *, host: str, running_job: int | None, draining: bool, now: float) -> Snapshot:
    """The same reading for the CPU fallback worker: memory from /proc/meminfo, load average as utilization."""
    total, available = _meminfo()
    return Snapshot(
        **_header(identity, host, "cpu", running_job, draining, now),
        # As on a GPU, usable is total minus what others hold; on a CPU we cannot tell ours from theirs.
        memory_total=total,
        memory_used=total - available,
        memory_free=available,
        memory_usable=total,
        utilization=min(100.0, 100.0 * os.getloadavg()[0] / (os.cpu_count() or 1)),
        note="no NVML: CPU worker",
    )


def _meminfo(path: Path = Path("/proc/meminfo")) -> tuple[int, int]:
    fields = dict(line.split(":", 1) for line in path.read_text().splitlines() if ":" in line)
    kib = {k: int(v.split()[0]) * 1024 for k, v in fields.items() if k in ("MemTotal", "MemAvailable")}
    return kib["MemTotal"], kib.get("MemAvailable", 0)


class Publisher(threading.Thread):
    """Publishes `collect()` to the fleet every `interval` seconds, with a TTL of `ttl`, until stopped.

    A failing collect (NVML gone, GPU fallen off the bus) is logged; the last snapshot is then
    published as unhealthy with the error as its reason, so routing avoids the GPU and staff see why.
    """

    def __init__(self, redis_client: Any, collect: Callable[[], Snapshot], interval: float, ttl: float) -> None:
        super().__init__(name="gpuq-telemetry", daemon=True)
        self.redis, self.collect, self.interval, self.ttl = redis_client, collect, interval, ttl
        self.last: Snapshot | None = None
        self._stopped = threading.Event()

    def run(self) -> None:
        while not self._stopped.is_set():
            self.publish_once()
            self._stopped.wait(self.interval)

    def publish_once(self) -> None:
        snap = self._collect()
        if snap is None:
            return
        try:
            fleet.publish(self.redis, snap, self.ttl)
        except Exception:  # Redis restarting: the next interval tries again
            log.exception("could not publish telemetry of %s", snap.queue)

    def _collect(self) -> Snapshot | None:
        try:
            self.last = self.collect()
            return self.last
        except Exception as exc:
            log.exception("telemetry collection failed")
            reason = f"telemetry failed: {type(exc).__name__}: {as_text(exc)}"
            if self.last is None:
                return None
            return replace(self.last, healthy=False, health_reason=reason, last_seen=time.time())

    def stop(self, timeout: float | None = None) -> None:
        self._stopped.set()
        if self.is_alive():
            self.join(timeout)
