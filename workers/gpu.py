"""GPU identity: the one place where NVML indices, CUDA devices, PCI bus ids, UUIDs and queues meet.

Everything else asks this module (as dask-cuda's `utils.py` does for its workers). It never
initialises CUDA: NVML comes in as a parameter (the `pynvml` module, or a fake with the same
function names), and CUDA's view comes from a child process (`workers.cuda_probe`).

Workers run with `CUDA_DEVICE_ORDER=PCI_BUS_ID`, so CUDA index i is the i-th GPU in bus-id order;
NVML enumerates in bus-id order too. Indices are still resolved by sorting on the bus id, so that
nothing here depends on NVML's order.

Worked example, the 2 x H200 host of docs/ARCHITECTURE.md (a container that sees both GPUs)::

    NVML index  UUID            NVML busId        CuPy pci_bus_id  queue
    0           GPU-3f5b2d1e-…  00000000:00:06.0  0000:00:06.0     gpu.h200x2.3f5b2d1e
    1           GPU-c901ab12-…  00000000:00:07.0  0000:00:07.0     gpu.h200x2.c901ab12

    CUDA_VISIBLE_DEVICES=1 or =GPU-c901ab12-… or =GPU-c901 -> NVML index 1; CuPy then sees one device,
    Device(0), whose pci_bus_id 0000:00:07.0 normalizes to NVML's 00000000:00:07.0.
    NVML still lists both GPUs in that process: look its GPU up by UUID, never by CUDA's index 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from scheduler.dispatch.connections import as_text

GPU_UUID_PREFIX = "GPU-"
CPU_UUID_PREFIX = "CPU-"


class PinningError(ValueError):
    """A worker cannot be pinned to the GPU it was given; the message is for the person starting it."""


@dataclass(frozen=True)
class GpuIdentity:
    index: int  # NVML index (== CUDA index under CUDA_DEVICE_ORDER=PCI_BUS_ID); -1 for the CPU worker
    uuid: str
    bus_id: str  # normalized, see normalize_bus_id
    name: str
    memory_total: int  # bytes

    def __str__(self) -> str:
        return f"{self.index} {self.uuid} ({self.name})"


def normalize_bus_id(s: str | bytes) -> str:
    """One lower-case form of a PCI bus id, with a 4-hex-digit domain.

    >>> normalize_bus_id("00000000:00:07.0")  # NVML
    '0000:00:07.0'
    >>> normalize_bus_id("0000:00:07.0")  # CuPy
    '0000:00:07.0'
    >>> normalize_bus_id(b"00000000:3B:00.0")
    '0000:3b:00.0'
    >>> normalize_bus_id("3b:00.0")  # no domain: domain 0
    '0000:3b:00.0'
    """
    text = as_text(s).strip().lower()
    domain, rest = text.split(":", 1) if text.count(":") == 2 else ("0", text)
    return f"{int(domain, 16):04x}:{rest}"


def list_gpus(nvml: Any) -> list[GpuIdentity]:
    """Every GPU NVML sees, in NVML index order (NVML ignores CUDA_VISIBLE_DEVICES)."""
    return [_identity(nvml, i) for i in range(nvml.nvmlDeviceGetCount())]


def _identity(nvml: Any, index: int) -> GpuIdentity:
    handle = nvml.nvmlDeviceGetHandleByIndex(index)
    return GpuIdentity(
        index=index,
        uuid=as_text(nvml.nvmlDeviceGetUUID(handle)),
        bus_id=normalize_bus_id(nvml.nvmlDeviceGetPciInfo(handle).busId),
        name=as_text(nvml.nvmlDeviceGetName(handle)),
        memory_total=int(nvml.nvmlDeviceGetMemoryInfo(handle).total),
    )


def resolve_visible(value: str, gpus: Sequence[GpuIdentity]) -> GpuIdentity:
    """The one GPU a CUDA_VISIBLE_DEVICES value names: an index, a UUID or a unique UUID prefix.

    >>> h200 = [GpuIdentity(0, "GPU-3f5b2d1e-0000", "0000:00:06.0", "NVIDIA H200", 150754820096),
    ...         GpuIdentity(1, "GPU-c901ab12-0000", "0000:00:07.0", "NVIDIA H200", 150754820096)]
    >>> resolve_visible("1", h200).uuid
    'GPU-c901ab12-0000'
    >>> resolve_visible("GPU-c901", h200).bus_id
    '0000:00:07.0'
    """
    value = value.strip()
    if not value:
        raise PinningError(f"CUDA_VISIBLE_DEVICES is empty or unset: set it to the UUID of one GPU. {_listing(gpus)}")
    if "," in value:
        raise PinningError(
            f"CUDA_VISIBLE_DEVICES={value} names several GPUs; a worker serves exactly one. {_listing(gpus)}"
        )
    found = _by_index(value, gpus) if value.isdigit() else _by_uuid(value, gpus)
    if len(found) != 1:
        what = "matches several GPUs" if found else "names no GPU on this host"
        raise PinningError(f"CUDA_VISIBLE_DEVICES={value} {what}. {_listing(gpus)}")
    return found[0]


def _by_index(value: str, gpus: Sequence[GpuIdentity]) -> list[GpuIdentity]:
    in_bus_order = sorted(gpus, key=lambda g: g.bus_id)  # CUDA's order under CUDA_DEVICE_ORDER=PCI_BUS_ID
    index = int(value)
    return [in_bus_order[index]] if index < len(in_bus_order) else []


def _by_uuid(value: str, gpus: Sequence[GpuIdentity]) -> list[GpuIdentity]:
    # CUDA accepts any unique prefix of a UUID, "GPU-" included.
    return [g for g in gpus if g.uuid.lower().startswith(value.lower())]


def _listing(gpus: Sequence[GpuIdentity]) -> str:
    if not gpus:
        return "NVML finds no GPU on this host."
    return "GPUs on this host: " + "; ".join(str(g) for g in gpus) + "."


def check_cuda_matches(identity: GpuIdentity, cuda_bus_id: str, cuda_device_count: int) -> None:
    """Raise PinningError unless CUDA sees exactly one device, on the bus id NVML gave for `identity`."""
    if cuda_device_count != 1:
        raise PinningError(
            f"CUDA sees {cuda_device_count} devices where the worker for {identity} expects exactly one: "
            f"set CUDA_VISIBLE_DEVICES={identity.uuid}."
        )
    if normalize_bus_id(cuda_bus_id) != normalize_bus_id(identity.bus_id):
        raise PinningError(
            f"CUDA's device is on PCI bus {normalize_bus_id(cuda_bus_id)} but GPU {identity} is on "
            f"{identity.bus_id}: the worker would run on the wrong GPU. Pin it by UUID."
        )


def queue_name(host: str, uuid: str) -> str:
    """The Celery queue of the worker serving `uuid` on `host`: stable when GPUs are added or reordered.

    >>> queue_name("h200x2", "GPU-c901ab12-3d4e-5f60-7182-93a4b5c6d7e8")
    'gpu.h200x2.c901ab12'
    >>> queue_name("laptop", "CPU-laptop")
    'cpu.laptop'
    >>> queue_name("laptop", "CPU-laptop-1")
    'cpu.laptop.1'
    """
    if uuid.startswith(CPU_UUID_PREFIX):
        slot = uuid.removeprefix(f"{CPU_UUID_PREFIX}{host}").lstrip("-")
        return f"cpu.{host}.{slot}" if slot else f"cpu.{host}"
    return f"gpu.{host}.{uuid.removeprefix(GPU_UUID_PREFIX).replace('-', '')[:8].lower()}"


def cpu_identity(host: str, memory_total: int, slot: int = 0) -> GpuIdentity:
    """The identity of a host's CPU fallback worker (NumPy, no NVML); `slot` numbers several of one host,
    which stand in for its GPUs (tests, demos of multi-GPU jobs)."""
    uuid = f"{CPU_UUID_PREFIX}{host}" + (f"-{slot}" if slot else "")
    return GpuIdentity(slot, uuid, bus_id="", name="CPU (NumPy)", memory_total=memory_total)
