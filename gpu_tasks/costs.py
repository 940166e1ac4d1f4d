"""What work costs on an H100-class GPU: the figures every kind's estimate is built from."""

from __future__ import annotations

import math

import numpy

from gpu_tasks.base import MiB

# Dense GEMM throughput; FP32 measured at 51 TFLOP/s (8192^3, CuPy on H200/H100, docs/ARCHITECTURE.md).
GEMM_FLOPS = {"float16": 400e12, "float32": 50e12, "float64": 50e12}
BANDWIDTH = 2.5e12  # bytes/s an elementwise kernel reaches of HBM3's ~3.3 TB/s
LAUNCH_S = 16e-6  # a tiny kernel launch, measured
OVERHEAD_BYTES = 128 * MiB  # generator and summary slices (~96 MiB measured), cuBLAS/cuFFT workspaces
HASH_BYTES = 96  # bytes moved per generated value: ~6 uint64 passes, read and write
CHUNK = 1 << 22  # elements per slice when generating or reducing: bounds temporaries to ~100 MiB


def itemsize(dtype: str) -> int:
    """Bytes per element of a dtype named by text."""
    return numpy.dtype(dtype).itemsize


def streaming(nbytes: float, launches: int = 1) -> float:
    """Seconds to stream `nbytes` through memory in `launches` kernels."""
    return nbytes / BANDWIDTH + launches * LAUNCH_S


def generating(count: int) -> float:
    """Seconds to generate `count` seeded values with `arrays.uniform` and reduce them once."""
    return streaming(count * HASH_BYTES, launches=12 * math.ceil(count / CHUNK))


def gemm(n: int, dtype: str) -> float:
    """Seconds for one n x n x n matrix product."""
    return 2 * n**3 / GEMM_FLOPS[dtype] + LAUNCH_S
