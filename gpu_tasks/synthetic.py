"""Synthetic kinds for testing the queue itself: burn (hold memory, keep busy), noop, fault (staff only)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

from gpu_tasks import costs
from gpu_tasks.arrays import is_gpu, sync
from gpu_tasks.base import Estimate, JobKind, MiB, Param

BUSY_N = 256  # side of the small matmul that keeps the device busy between clock checks
STICKY_SOURCE = 'extern "C" __global__ void poison() { *(volatile int*)0 = 1; }'

SECONDS = Param("seconds", float, 1.0, 0, 3600, help="How long, in seconds")


def estimate_burn(*, seconds: float, mib: int, **_: Any) -> Estimate:
    """Exactly what it holds, for exactly as long as it is told."""
    return Estimate(mib * MiB + costs.OVERHEAD_BYTES, seconds)


def run_burn(xp: ModuleType, *, seconds: float, mib: int) -> dict[str, Any]:
    """Hold `mib` MiB of real (written) memory and run small matmuls (at least one) until `seconds` have passed."""
    held = xp.ones(mib * MiB // 4, dtype=xp.float32)
    a = xp.ones((BUSY_N, BUSY_N), dtype=xp.float32)
    started = time.monotonic()
    iterations = 0
    while iterations == 0 or time.monotonic() - started < seconds:
        a = xp.tanh(a @ a * (1.0 / BUSY_N))  # tanh keeps the values bounded however long it runs
        sync(xp)
        iterations += 1
    return {"seconds": time.monotonic() - started, "mib": mib, "iterations": iterations, "held_bytes": held.nbytes}


def run_noop(xp: ModuleType) -> dict[str, Any]:
    """Nothing at all: what dispatch costs on its own."""
    return {}


def estimate_fault(*, mode: str, seconds: float, **_: Any) -> Estimate:
    """Deliberately small: an `oom` fault must get past admission to fail where it is meant to."""
    return Estimate(costs.OVERHEAD_BYTES, seconds if mode in ("sleep", "stubborn") else 0.0)


def run_fault(xp: ModuleType, *, mode: str, seconds: float, mib: int) -> dict[str, Any]:
    """Fail (or sleep) the way `mode` names, to test how the queue copes."""
    FAULTS[mode](xp, seconds=seconds, mib=mib)
    return {"mode": mode}


def _raise(xp: ModuleType, **_: Any) -> None:
    raise RuntimeError("fault injected: raise")


def _exit(xp: ModuleType, **_: Any) -> None:
    os._exit(1)  # no cleanup, no exception: what a crashing worker process looks like


def _oom(xp: ModuleType, *, mib: int, **_: Any) -> None:
    held = xp.ones(mib * MiB // 4, dtype=xp.float32)
    sync(xp)
    raise RuntimeError(f"fault injected: oom, but {held.nbytes} bytes fit")


def _sleep(xp: ModuleType, *, seconds: float, **_: Any) -> None:
    time.sleep(seconds)


def _stubborn(xp: ModuleType, *, seconds: float, **_: Any) -> None:
    """Sleeps through the soft time limit, as a CUDA call does: only the hard limit's kill stops it."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            time.sleep(max(0.0, deadline - time.monotonic()))
        except BaseException:  # noqa: S110 (SoftTimeLimitExceeded: ignored, which is the point)
            continue


def _sticky(xp: ModuleType, **_: Any) -> None:
    if not is_gpu(xp):
        raise RuntimeError("sticky CUDA error needs a GPU")
    xp.RawKernel(STICKY_SOURCE, "poison")((1,), (1,), ())
    sync(xp)  # raises cudaErrorIllegalAddress; the context is unusable from here on


FAULTS: dict[str, Callable[..., None]] = {
    "raise": _raise,
    "exit": _exit,
    "oom": _oom,
    "sleep": _sleep,
    "stubborn": _stubborn,
    "sticky": _sticky,
}

BURN = JobKind(
    name="burn",
    title="Burn",
    params=(SECONDS, Param("mib", int, 64, 0, 1_000_000, help="Memory to hold, in MiB")),
    estimate=estimate_burn,
    run=run_burn,
    description="Holds memory and keeps the GPU busy for a set time (for queue and routing tests).",
    tags=("synthetic",),
)

NOOP = JobKind(
    name="noop",
    title="No-op",
    params=(),
    estimate=lambda **_: Estimate(0, 0.0),
    run=run_noop,
    description="Does nothing; measures dispatch latency.",
    tags=("synthetic", "benchmark"),
)

FAULT = JobKind(
    name="fault",
    title="Fault injection",
    params=(
        Param(
            "mode",
            str,
            choices=tuple(FAULTS),
            help="raise, exit (kills the worker process), oom, sleep, stubborn (ignores the soft time limit), sticky",
        ),
        SECONDS,
        Param("mib", int, 1 << 40, 1, 1 << 40, help="MiB the oom mode asks for (the default fits nowhere)"),
    ),
    estimate=estimate_fault,
    run=run_fault,
    staff_only=True,
    description="Fails on purpose, in the way `mode` names, to test how the queue copes.",
    tags=("synthetic",),
)

KINDS = (BURN, NOOP, FAULT)
