"""Record what NVML says about this host's GPUs, for the tests' fixtures; and replay such a recording.

On a GPU host (the lead re-records `tests/fixtures/snapshots/` this way):

    python benchmarks/record_snapshots.py tests/fixtures/snapshots --label h200x2_idle
    python benchmarks/record_snapshots.py tests/fixtures/snapshots --label h200x2_busy --hold-gib 60

`--hold-gib N` starts a child process that holds N GiB on the last GPU with CuPy and keeps it busy
while recording: a foreign process, as another user's would be. A recording keeps NVML's raw
answers per device (null where NVML answered NotSupported) and the snapshots `workers.telemetry`
built from them. `ReplayNvml` answers NVML's calls from the raw part, so tests drive the real
identity and telemetry code with it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scheduler.fleet.snapshot import Snapshot  # noqa: E402
from workers import gpu_health, telemetry  # noqa: E402
from workers.gpu import as_text, list_gpus  # noqa: E402

SYNTHETIC = "synthetic until re-recorded on a GPU host by benchmarks/record_snapshots.py"


def record_device(nvml: Any, index: int) -> dict:
    """NVML's raw answers for one device, as JSON (None where NotSupported)."""
    h = nvml.nvmlDeviceGetHandleByIndex(index)
    memory = nvml.nvmlDeviceGetMemoryInfo(h)
    utilization = telemetry.unless_unsupported(nvml, nvml.nvmlDeviceGetUtilizationRates, h)
    return {
        "index": index,
        "uuid": as_text(nvml.nvmlDeviceGetUUID(h)),
        "name": as_text(nvml.nvmlDeviceGetName(h)),
        "busId": as_text(nvml.nvmlDeviceGetPciInfo(h).busId),
        "memory": {"total": memory.total, "used": memory.used, "free": memory.free},
        "utilization_gpu": None if utilization is None else utilization.gpu,
        "temperature": telemetry.unless_unsupported(nvml, nvml.nvmlDeviceGetTemperature, h, nvml.NVML_TEMPERATURE_GPU),
        "power_mw": telemetry.unless_unsupported(nvml, nvml.nvmlDeviceGetPowerUsage, h),
        "ecc_uncorrected": telemetry.unless_unsupported(
            nvml, nvml.nvmlDeviceGetTotalEccErrors, h, nvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED, nvml.NVML_VOLATILE_ECC
        ),
        "processes": [
            {"pid": p.pid, "usedGpuMemory": p.usedGpuMemory} for p in nvml.nvmlDeviceGetComputeRunningProcesses(h)
        ],
        "retired_pages_pending": gpu_health.guarded(nvml, nvml.nvmlDeviceGetRetiredPagesPendingStatus, h),
        "remapped_rows": _listed(gpu_health.guarded(nvml, nvml.nvmlDeviceGetRemappedRows, h)),
        "xid_events": gpu_health.XidWatch(nvml, h).drain(),
    }


def _listed(value: Any) -> list | None:
    return None if value is None else list(value)


def record(nvml: Any, host: str, *, source: str, our_pids: set[int], now: float) -> dict:
    """A whole recording: raw devices, and the telemetry snapshots built from the same NVML."""
    return {
        "source": source,
        "host": host,
        "driver": as_text(nvml.nvmlSystemGetDriverVersion()),
        "recorded_at": now,
        "our_pids": sorted(our_pids),
        "devices": [record_device(nvml, i) for i in range(nvml.nvmlDeviceGetCount())],
        "snapshots": [
            telemetry.snapshot(
                nvml, g, host=host, running_job=None, draining=False, our_pids=our_pids, now=now
            ).to_dict()
            for g in list_gpus(nvml)
        ],
    }


def load_recording(path: str | Path) -> dict:
    """A recording, its snapshots as Snapshot objects."""
    data = json.loads(Path(path).read_text())
    return {**data, "snapshots": [Snapshot.from_dict(s) for s in data["snapshots"]]}


class ReplayNvml:
    """Answers the NVML calls `workers.gpu` and `workers.telemetry` make, from a recording's devices."""

    NVML_TEMPERATURE_GPU = 0
    NVML_MEMORY_ERROR_TYPE_UNCORRECTED = 1
    NVML_VOLATILE_ECC = 0

    class NVMLError(Exception):
        pass

    class NVMLError_NotSupported(NVMLError):
        pass

    class NVMLError_NotFound(NVMLError):
        pass

    class NVMLError_Timeout(NVMLError):
        pass

    def __init__(self, recording: dict, as_bytes: bool = False) -> None:
        self.devices, self.driver = recording["devices"], recording.get("driver", "")
        self.as_bytes = as_bytes  # older pynvml answered bytes

    def _text(self, s: str) -> str | bytes:
        return s.encode() if self.as_bytes else s

    def _field(self, handle: int, name: str) -> Any:
        value = self.devices[handle].get(name)  # not in an older recording: as NotSupported
        if value is None:
            raise self.NVMLError_NotSupported(name)
        return value

    def nvmlSystemGetDriverVersion(self) -> str | bytes:
        return self._text(self.driver)

    def nvmlDeviceGetCount(self) -> int:
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return index

    def nvmlDeviceGetHandleByUUID(self, uuid: str | bytes) -> int:
        found = [i for i, d in enumerate(self.devices) if d["uuid"] == as_text(uuid)]
        if not found:
            raise self.NVMLError_NotFound(as_text(uuid))
        return found[0]

    def nvmlDeviceGetUUID(self, handle: int) -> str | bytes:
        return self._text(self.devices[handle]["uuid"])

    def nvmlDeviceGetName(self, handle: int) -> str | bytes:
        return self._text(self.devices[handle]["name"])

    def nvmlDeviceGetPciInfo(self, handle: int) -> SimpleNamespace:
        return SimpleNamespace(busId=self._text(self.devices[handle]["busId"]))

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> SimpleNamespace:
        return SimpleNamespace(**self.devices[handle]["memory"])

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> SimpleNamespace:
        return SimpleNamespace(gpu=self._field(handle, "utilization_gpu"), memory=0)

    def nvmlDeviceGetTemperature(self, handle: int, sensor: int) -> int:
        return self._field(handle, "temperature")

    def nvmlDeviceGetPowerUsage(self, handle: int) -> int:
        return self._field(handle, "power_mw")

    def nvmlDeviceGetTotalEccErrors(self, handle: int, error_type: int, counter_type: int) -> int:
        return self._field(handle, "ecc_uncorrected")

    def nvmlDeviceGetComputeRunningProcesses(self, handle: int) -> list[SimpleNamespace]:
        return [SimpleNamespace(**p) for p in self.devices[handle]["processes"]]

    def nvmlDeviceGetRetiredPagesPendingStatus(self, handle: int) -> int:
        return self._field(handle, "retired_pages_pending")

    def nvmlDeviceGetRemappedRows(self, handle: int) -> tuple[int, int, int, int]:
        return tuple(self._field(handle, "remapped_rows"))

    # Xid events: a recording's `xid_events` are delivered once, to the first watch that drains them.
    def nvmlEventSetCreate(self) -> list[int]:
        return []

    def nvmlDeviceRegisterEvents(self, handle: int, event_types: int, events: list[int]) -> None:
        if self.devices[handle].get("xid_events") is None:
            raise self.NVMLError_NotSupported("events")
        events.append(handle)

    def nvmlEventSetWait_v2(self, events: list[int], timeout_ms: int) -> SimpleNamespace:
        for handle in events:
            pending = self.devices[handle]["xid_events"]
            if pending:
                return SimpleNamespace(eventType=8, eventData=pending.pop(0), device=handle)
        raise self.NVMLError_Timeout("no event")


HOLDER = """
import sys, cupy
held = cupy.zeros(int(float(sys.argv[1]) * 2**30), dtype=cupy.uint8)
a = cupy.ones((4096, 4096), dtype=cupy.float32)
print("holding", flush=True)
while True:
    a = a @ a / 4096
"""


@contextlib.contextmanager
def holding(nvml: Any, uuid: str, gib: float) -> Iterator[None]:
    """A foreign process holding `gib` GiB on GPU `uuid` and keeping it busy, for as long as the block runs."""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": uuid, "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
    child = subprocess.Popen([sys.executable, "-c", HOLDER, str(gib)], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "holding", "the holder failed"
        time.sleep(2.0)  # utilization is averaged over NVML's last sample period (~1 s)
        yield
    finally:
        child.kill()
        child.wait()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    import pynvml

    pynvml.nvmlInit()
    host = args.host or socket.gethostname()
    gpus = list_gpus(pynvml)
    hold = holding(pynvml, gpus[-1].uuid, args.hold_gib) if args.hold_gib else contextlib.nullcontext()
    with hold:
        data = record(
            pynvml,
            host,
            source=f"recorded on {host} by benchmarks/record_snapshots.py",
            our_pids={os.getpid()},
            now=time.time(),
        )
    out = Path(args.out_dir) / f"{args.label or host}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote {out}: {len(data['devices'])} GPUs, driver {data['driver']}")
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out_dir")
    p.add_argument("--label", help="file name without .json (default: the host name)")
    p.add_argument("--host", help="host name to record (default: this host's)")
    p.add_argument("--hold-gib", type=float, default=0.0, help="hold this much on the last GPU while recording")
    return p


if __name__ == "__main__":
    sys.exit(main())
