"""All-reduce across a job's GPUs: each device builds its own seeded vector, and every device ends with
the sum of all of them, as a data-parallel training step sums its gradients.

On CuPy it runs NCCL's all-reduce (`cupy.cuda.nccl`, one communicator per visible device, in one
process); on NumPy it runs the same ring all-reduce that NCCL uses, over `devices` simulated devices.
Either way the result is checked: each device's sum against the sum of the local sums, and a window of
elements against the host's own computation of the same seeded values.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy

from gpu_tasks import costs
from gpu_tasks.arrays import is_gpu, uniform_slice
from gpu_tasks.base import Estimate, JobKind, Param
from gpu_tasks.params import SEED

WINDOW = 4096  # elements checked one by one against the host


def estimate_allreduce(*, n: int, rounds: int = 1, **_: Any) -> Estimate:
    """Per GPU: its vector and the generator's temporaries; each round's ring moves ~2x the vector."""
    return Estimate(2 * n * 8 + costs.OVERHEAD_BYTES, costs.generating(n) + rounds * costs.streaming(2 * n * 8))


def run_allreduce(xp: ModuleType, *, n: int, seed: int, rounds: int = 1, devices: int = 1) -> dict[str, Any]:
    """Sum one seeded float64 vector per device onto every device; the check that it came out right.
    `rounds` repeats the all-reduce on copies of the inputs (a training run's steps); the last is checked."""
    if is_gpu(xp):
        return _on_gpus(xp, n, seed, rounds)
    inputs = [uniform_slice(numpy, seed, rank, 0, n) for rank in range(devices)]
    for _ in range(rounds):
        parts = [p.copy() for p in inputs]
        ring_allreduce(parts)
    local = [float(p.sum()) for p in inputs]
    return _checked(n, seed, local, [float(p.sum()) for p in parts], [p[:WINDOW] for p in parts], "ring (NumPy)")


def ring_allreduce(parts: list[Any]) -> None:
    """In place: every buffer becomes the elementwise sum of all, in 2(d-1) neighbour-to-neighbour steps
    (reduce-scatter, then all-gather), each moving 1/d of a buffer, as NCCL's ring does."""
    d = len(parts)
    chunks = numpy.array_split(numpy.arange(len(parts[0])), d)
    for step in range(d - 1):  # rank r sends chunk (r - step) to r + 1, which adds it
        sent = [parts[r][chunks[(r - step) % d]].copy() for r in range(d)]
        for r in range(d):
            parts[(r + 1) % d][chunks[(r - step) % d]] += sent[r]
    for step in range(d - 1):  # rank r now owns the sum of chunk (r + 1): pass the sums round
        sent = [parts[r][chunks[(r + 1 - step) % d]].copy() for r in range(d)]
        for r in range(d):
            parts[(r + 1) % d][chunks[(r + 1 - step) % d]] = sent[r]


def _on_gpus(cupy: ModuleType, n: int, seed: int, rounds: int) -> dict[str, Any]:
    from cupy.cuda import nccl

    d = cupy.cuda.runtime.getDeviceCount()
    inputs, local = [], []
    for rank in range(d):
        with cupy.cuda.Device(rank):
            inputs.append(uniform_slice(cupy, seed, rank, 0, n))
            local.append(float(inputs[-1].sum()))
    comms = nccl.NcclCommunicator.initAll(d)
    for _ in range(rounds):
        parts = []
        for rank in range(d):
            with cupy.cuda.Device(rank):
                parts.append(inputs[rank].copy())
        nccl.groupStart()
        for rank, comm in enumerate(comms):
            with cupy.cuda.Device(rank):
                buf = parts[rank].data.ptr
                comm.allReduce(buf, buf, n, nccl.NCCL_FLOAT64, nccl.NCCL_SUM, cupy.cuda.Stream.null.ptr)
        nccl.groupEnd()
    sums, windows, buses = [], [], []
    for rank in range(d):
        with cupy.cuda.Device(rank) as dev:
            dev.synchronize()
            sums.append(float(parts[rank].sum()))
            windows.append(cupy.asnumpy(parts[rank][:WINDOW]))
            buses.append(dev.pci_bus_id)
    return _checked(n, seed, local, sums, windows, "NCCL") | {"pci_bus_ids": buses}


def _checked(n: int, seed: int, local: list[float], sums: list[float], windows: list[Any], via: str) -> dict:
    expected_sum = sum(local)
    width = min(n, WINDOW)
    expected = sum(uniform_slice(numpy, seed, rank, 0, width) for rank in range(len(local)))
    error = max(float(numpy.max(numpy.abs(w - expected))) for w in windows)
    spread = max(abs(s - expected_sum) for s in sums)
    return {
        "devices": len(local),
        "n": n,
        "via": via,
        "sum": expected_sum,
        "max_error": error,
        "sum_spread": spread,
        "correct": error <= 1e-12 * len(local) and spread <= 1e-9 * max(1.0, abs(expected_sum)),
    }


ALLREDUCE = JobKind(
    name="allreduce",
    title="All-reduce across GPUs",
    params=(
        Param("n", int, 1 << 20, 1, 1 << 28, help="Elements (float64) each GPU contributes"),
        Param("rounds", int, 1, 1, 100_000, help="How many all-reduces (steps of a training run)"),
        SEED,
    ),
    estimate=estimate_allreduce,
    run=run_allreduce,
    description="Sums one seeded vector per GPU onto every GPU (NCCL); checks the result. Ask for several GPUs.",
    tags=("multi-gpu", "communication"),
    multi_gpu=True,
)

KINDS = (ALLREDUCE,)
