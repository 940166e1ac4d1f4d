"""Settling which GPU a worker serves, before any CUDA use in the worker's own process."""

from __future__ import annotations

import os

from workers import doctor, gpu
from workers.cuda_probe import cuda_view
from workers.gpu import PinningError
from workers.identity import WorkerIdentity


def pin_worker(visible: str | None, host: str) -> WorkerIdentity:
    """Resolve CUDA_VISIBLE_DEVICES (index or UUID) to one GPU, check CUDA agrees, pin to its UUID."""
    nvml = _nvml()
    chosen = gpu.resolve_visible(visible or "", gpu.list_gpus(nvml))
    # The UUID is right whether this process sees one GPU or all of them (docs/ARCHITECTURE.md).
    os.environ["CUDA_VISIBLE_DEVICES"] = chosen.uuid
    seen = cuda_view()
    if "error" in seen:
        raise PinningError(f"CUDA could not use GPU {chosen.uuid} (CUDA_VISIBLE_DEVICES={visible}): {seen['error']}")
    finding = doctor.check_driver_runtime(seen["driver"], seen["runtime"])
    if not finding.ok:
        raise PinningError(finding.message)
    gpu.check_cuda_matches(chosen, seen["bus_id"], seen["count"])
    return WorkerIdentity("gpu", host, chosen.uuid, gpu.queue_name(host, chosen.uuid), chosen.name, chosen.bus_id)


def cpu_worker(host: str, slot: int = 0) -> WorkerIdentity:
    ident = gpu.cpu_identity(host, 0, slot)
    return WorkerIdentity("cpu", host, ident.uuid, gpu.queue_name(host, ident.uuid), "CPU (NumPy)", "")


def _nvml():
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception as exc:  # no library, no driver: no GPU worker on this host
        raise PinningError(
            f"NVML is not available ({exc}): this host has no usable NVIDIA driver. "
            "Start a CPU worker with `python -m workers --cpu`, or fix the driver."
        ) from None
    return pynvml
