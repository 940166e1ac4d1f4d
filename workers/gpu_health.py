"""A GPU's health from NVML: Xid errors, uncorrectable ECC errors, retired pages and row remaps.

Each read is guarded: GPUs and drivers that do not support one (consumer boards have no ECC, row
remapping exists from Ampere on, page retirement before it, MIG hides some) answer NotSupported
or, on older drivers, FunctionNotFound, and that read is then skipped. NVML comes in as a
parameter, as in `workers.gpu`, so recorded answers drive the same code in the tests.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

# Xids an application causes (a bad kernel, a killed context): the GPU is fine. The NVIDIA Kubernetes
# device plugin skips the same ones before it marks a GPU unhealthy.
APPLICATION_XIDS = frozenset({13, 31, 43, 45, 68, 109})
XID_CRITICAL_EVENT = 0x0000000000000008  # nvmlEventTypeXidCriticalError


def guarded(nvml: Any, fn: Callable[..., Any], *args: Any) -> Any:
    """NVML's answer, or None where this GPU or driver does not support the query."""
    unsupported = tuple(
        getattr(nvml, name) for name in ("NVMLError_NotSupported", "NVMLError_FunctionNotFound") if hasattr(nvml, name)
    )
    try:
        return fn(*args)
    except unsupported:
        return None


def problems(nvml: Any, handle: Any, xids: list[int]) -> list[str]:
    """Why this GPU should take no more jobs; empty when NVML reports nothing wrong."""
    found = [f"Xid {x} reported by the driver" for x in xids if x not in APPLICATION_XIDS]
    ecc = guarded(
        nvml, nvml.nvmlDeviceGetTotalEccErrors, handle, nvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED, nvml.NVML_VOLATILE_ECC
    )
    if ecc:
        found.append(f"{ecc} uncorrected ECC errors since the driver loaded")
    if guarded(nvml, nvml.nvmlDeviceGetRetiredPagesPendingStatus, handle):
        found.append("retired memory pages pending: reset the GPU")
    remap = guarded(nvml, nvml.nvmlDeviceGetRemappedRows, handle)
    if remap is not None:
        _corrected, uncorrected, pending, failed = remap
        if failed:
            found.append("a memory row remapping failed")
        elif pending:
            found.append(f"memory row remapping pending ({uncorrected} uncorrectable rows): reset the GPU")
    return found


class XidWatch:
    """Critical Xid events of one GPU, collected between snapshots (NVML queues them in an event set)."""

    def __init__(self, nvml: Any, handle: Any) -> None:
        self.nvml, self.events = nvml, None
        try:
            events = nvml.nvmlEventSetCreate()
            nvml.nvmlDeviceRegisterEvents(handle, XID_CRITICAL_EVENT, events)
            self.events = events
        except Exception as exc:  # not supported here (some boards, MIG, containers): no Xid watch
            log.warning("Xid events cannot be watched on this GPU (%s); ECC and remap reads still apply", exc)

    def drain(self) -> list[int]:
        """The Xids reported since the last call (waits for none)."""
        xids: list[int] = []
        while self.events is not None:
            try:
                event = self.nvml.nvmlEventSetWait_v2(self.events, 0)
            except self.nvml.NVMLError_Timeout:
                break
            xids.append(int(event.eventData))
        return xids
