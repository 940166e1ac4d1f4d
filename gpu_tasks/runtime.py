"""Running a kind on a worker: choose the array module, warm it up, time the run, classify failures.

CuPy is imported inside functions only: CUDA must not start at import time or in a parent process
that forks (a forked CUDA context is broken).
"""

from __future__ import annotations

import itertools
import logging
import sys
import time
import traceback
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy

from gpu_tasks.arrays import is_gpu, sync
from gpu_tasks.base import JobKind, Output
from gpu_tasks.params import validate
from gpu_tasks.registry import KINDS, get_kind

__all__ = [
    "array_module",
    "sync",
    "execute",
    "produce",
    "classify_error",
    "free_memory_pool",
    "warm_up",
    "smallest",
    "backend",
]

log = logging.getLogger(__name__)

OOM_MARKERS = (
    "cudaErrorMemoryAllocation",
    "CUDA_ERROR_OUT_OF_MEMORY",
    "CUBLAS_STATUS_ALLOC_FAILED",
    "CUFFT_ALLOC_FAILED",
)
# Errors after which the CUDA context is unusable: every later call in this process fails too.
STICKY_MARKERS = (
    "cudaErrorIllegalAddress",
    "CUDA_ERROR_ILLEGAL_ADDRESS",
    "cudaErrorLaunchFailure",
    "CUDA_ERROR_LAUNCH_FAILED",
    "cudaErrorIllegalInstruction",
    "CUDA_ERROR_ILLEGAL_INSTRUCTION",
    "cudaErrorMisalignedAddress",
    "CUDA_ERROR_MISALIGNED_ADDRESS",
    "cudaErrorHardwareStackError",
    "CUDA_ERROR_HARDWARE_STACK_ERROR",
    "cudaErrorInvalidPc",
    "CUDA_ERROR_INVALID_PC",
    "cudaErrorAssert",
    "CUDA_ERROR_ASSERT",
    "cudaErrorECCUncorrectable",
    "CUDA_ERROR_ECC_UNCORRECTABLE",
)
CUDA_ERROR_CLASSES = (
    ("cupy_backends.cuda.api.runtime", "CUDARuntimeError"),
    ("cupy_backends.cuda.api.driver", "CUDADriverError"),
    ("cupy.cuda.driver", "CUDADriverError"),
    ("cupy_backends.cuda.libs.cublas", "CUBLASError"),
    ("cupy.cuda.cufft", "CuFFTError"),
)


def array_module(prefer_gpu: bool = True) -> ModuleType:
    """CuPy when wanted, importable and a device is visible; NumPy otherwise."""
    if prefer_gpu and _gpu_present():
        import cupy

        return cupy
    return numpy


def _gpu_present() -> bool:
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception as exc:  # ImportError, cudaErrorNoDevice, cudaErrorInsufficientDriver, ...
        log.warning("no usable GPU, running on NumPy: %s: %s", type(exc).__name__, exc)
        return False


def backend(xp: ModuleType) -> str:
    """The backend name: cupy or numpy."""
    return "cupy" if is_gpu(xp) else "numpy"


def execute(kind_name: str, params: dict[str, Any], xp: ModuleType) -> dict[str, Any]:
    """Run a kind on already validated params; its summary plus `gpu_time_s` and `backend`."""
    return produce(kind_name, params, xp).summary


def produce(kind_name: str, params: dict[str, Any], xp: ModuleType, devices: int = 1) -> Output:
    """`execute`, keeping the kind's result array (None where it has none) for the worker to save;
    a multi-GPU kind is told how many devices it has (NumPy simulates that many)."""
    kind = get_kind(kind_name)
    run = kind.run
    if run is None:
        raise ValueError(f"kind {kind_name!r} has no array function: its runner runs it")
    given = {**params, "devices": devices} if kind.multi_gpu else params
    began = time.time()
    output, seconds = _timed(xp, lambda: _run(run, xp, given))
    # Host clock around the kernels (after their sync): the benchmark's GPU idle gap between two jobs
    # is one job's `gpu_ended_at` to the next one's `gpu_began_at` on the same GPU.
    timing = {"gpu_time_s": seconds, "gpu_began_at": began, "gpu_ended_at": time.time()}
    return Output({**output.summary, **timing, "backend": backend(xp)}, output.array)


def _run(run: Callable[..., dict[str, Any] | Output], xp: ModuleType, params: dict[str, Any]) -> Output:
    try:
        returned = run(xp, **params)
        sync(xp)
        return returned if isinstance(returned, Output) else Output(returned)
    except BaseException as exc:
        # The traceback's frames hold the job's arrays: drop their locals so the pool can free them.
        traceback.clear_frames(exc.__traceback__)
        raise


def _timed(xp: ModuleType, fn: Callable[[], Output]) -> tuple[Output, float]:
    """fn() and its duration: between CUDA events on a GPU, by the host clock on NumPy."""
    if not is_gpu(xp):
        started = time.perf_counter()
        return fn(), time.perf_counter() - started
    start, end = xp.cuda.Event(), xp.cuda.Event()
    start.record()
    result = fn()
    end.record()
    end.synchronize()
    return result, xp.cuda.get_elapsed_time(start, end) / 1000


def classify_error(exc: BaseException) -> str:
    """What went wrong: oom (out of memory), sticky (the CUDA context is poisoned: exit) or error."""
    if isinstance(exc, MemoryError) or _cuda_error_with(exc, OOM_MARKERS):
        return "oom"
    if _cuda_error_with(exc, STICKY_MARKERS):
        return "sticky"
    return "error"


def _cuda_error_with(exc: BaseException, markers: tuple[str, ...]) -> bool:
    """Whether exc, or an exception it was raised from, is a CuPy CUDA error naming one of `markers`."""
    classes = _cuda_error_classes()
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return False
        if classes and isinstance(seen, classes) and any(m in str(seen) for m in markers):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _cuda_error_classes() -> tuple[type, ...]:
    # Only where CuPy is already loaded: classifying an error must never be what starts CUDA.
    found = (getattr(sys.modules.get(module), name, None) for module, name in CUDA_ERROR_CLASSES)
    return tuple(c for c in found if isinstance(c, type))


def free_memory_pool(xp: ModuleType) -> None:
    """Give CuPy's cached device and pinned memory (and cuFFT plans) back to the driver; no-op on NumPy."""
    if not is_gpu(xp):
        return
    xp.fft.config.get_plan_cache().clear()
    xp.get_default_memory_pool().free_all_blocks()
    xp.get_default_pinned_memory_pool().free_all_blocks()


def warm_up(xp: ModuleType) -> None:
    """Run every public kind once at its smallest, so the CUDA context, cuBLAS and cuFFT handles and each
    kind's compiled kernels exist before the first job (measured: ~0.8 s context, ~0.3 s first matmul)."""
    for kind in KINDS.values():
        # Multi-GPU kinds run in a child of their own (workers/gang.py): nothing of theirs to warm here.
        if kind.run is None or kind.staff_only or kind.multi_gpu:
            continue
        for params in smallest(kind):
            kind.run(xp, **params)
    sync(xp)


def smallest(kind: JobKind) -> list[dict[str, Any]]:
    """The kind's cheapest parameters, once per combination of choices (each dtype has its own kernels)."""
    base = {p.name: p.default if p.minimum is None else p.minimum for p in kind.params}
    chosen = [[(p.name, c) for c in p.choices] for p in kind.params if p.choices]
    return [validate(kind, base | dict(combination)) for combination in itertools.product(*chosen)]
