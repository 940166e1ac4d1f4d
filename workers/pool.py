"""State of a pool process: its array module, set up once when the process starts.

CUDA is initialised here, in the process that runs jobs, never in the worker's parent: a CUDA
context does not survive a fork. Warm-up costs ~0.8 s for the context and ~0.3 s for cuBLAS
(measured), which must not land on the first job.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery.signals import worker_process_init

from gpu_tasks import runtime
from workers import identity

log = logging.getLogger(__name__)
_state: dict[str, Any] = {}


def array_module():
    if "xp" not in _state:
        _setup()
    return _state["xp"]


def describe() -> str:
    if identity.current().kind == "cpu":
        return f"CPU worker {identity.current().queue} (NumPy, no GPU)"
    return f"GPU {identity.current().uuid} ({identity.current().queue})"


def seen_bus_id() -> str | None:
    """The PCI bus id of the device this process computes on, as CUDA sees it (None on NumPy)."""
    xp = array_module()
    return xp.cuda.Device().pci_bus_id if runtime.backend(xp) == "cupy" else None


@worker_process_init.connect
def _setup(**_: Any) -> None:
    started = time.perf_counter()
    xp = runtime.array_module(prefer_gpu=identity.current().kind == "gpu")
    runtime.warm_up(xp)
    _state["xp"] = xp
    log.info("pool process ready on %s in %.2f s", describe(), time.perf_counter() - started)
