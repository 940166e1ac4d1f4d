"""Array helpers every kind shares: seeded data that NumPy and CuPy reproduce bit for bit, and summaries.

Data come from a counter-based hash (splitmix64 of the element's index), computed on the device in
integer arithmetic, so NumPy and CuPy give identical values without moving data from the host.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import numpy

from gpu_tasks.costs import CHUNK

GOLDEN = 0x9E3779B97F4A7C15
MIX = (0xBF58476D1CE4E5B9, 0x94D049BB133111EB)
MASK = (1 << 64) - 1


def is_gpu(xp: ModuleType) -> bool:
    """True when `xp` is CuPy."""
    return xp.__name__ == "cupy"


def sync(xp: ModuleType) -> None:
    """Wait for the device to finish queued work (no-op on NumPy)."""
    if is_gpu(xp):
        xp.cuda.Device().synchronize()


def uniform(xp: ModuleType, shape: tuple[int, ...], seed: int, stream: int = 0, dtype: str = "float64") -> Any:
    """Values in [0, 1) of `dtype`, a pure function of (seed, stream, index): the same on NumPy and CuPy."""
    out = xp.empty(shape, dtype=dtype)
    flat = out.reshape(-1)
    for start in range(0, flat.size, CHUNK):
        stop = min(start + CHUNK, flat.size)
        flat[start:stop] = uniform_slice(xp, seed, stream, start, stop)
    return out


def uniform_slice(xp: ModuleType, seed: int, stream: int, start: int, stop: int) -> Any:
    """Elements start..stop of the float64 sequence behind `uniform(xp, ..., seed, stream)`."""
    z = xp.arange(start, stop, dtype=xp.uint64)
    z *= xp.uint64(GOLDEN)
    z += xp.uint64(_mix(_mix(seed) ^ stream))
    z ^= z >> xp.uint64(30)
    z *= xp.uint64(MIX[0])
    z ^= z >> xp.uint64(27)
    z *= xp.uint64(MIX[1])
    z ^= z >> xp.uint64(31)
    return (z >> xp.uint64(11)).astype(xp.float64) * (1.0 / (1 << 53))


def _mix(z: int) -> int:
    z = (z + GOLDEN) & MASK
    z = ((z ^ (z >> 30)) * MIX[0]) & MASK
    z = ((z ^ (z >> 27)) * MIX[1]) & MASK
    return z ^ (z >> 31)


def matrices(xp: ModuleType, n: int, dtype: str, seed: int) -> tuple[Any, Any]:
    """The two n x n operands of a seeded matmul."""
    return uniform(xp, (n, n), seed, 0, dtype), uniform(xp, (n, n), seed, 1, dtype)


def host_matrices(n: int, dtype: str, seed: int) -> tuple[numpy.ndarray, numpy.ndarray]:
    """`matrices` on the host with NumPy: what a reference computation starts from."""
    return matrices(numpy, n, dtype, seed)


def moments(xp: ModuleType, a: Any) -> dict[str, float]:
    """Sum, sum of squares, min and max of a real array, in float64, in slices so temporaries stay small."""
    flat = a.reshape(-1)
    sums, squares, lows, highs = [], [], [], []
    for start in range(0, flat.size, CHUNK):
        part = flat[start : start + CHUNK].astype(xp.float64)
        sums.append(part.sum())
        squares.append(xp.dot(part, part))
        lows.append(part.min())
        highs.append(part.max())
    return {
        "sum": float(xp.stack(sums).sum()),
        "sumsq": float(xp.stack(squares).sum()),
        "min": float(xp.stack(lows).min()),
        "max": float(xp.stack(highs).max()),
    }


def summarize(xp: ModuleType, a: Any) -> dict[str, Any]:
    """A real array in a few JSON-able numbers: shape, dtype, checksum (sum) and Frobenius norm."""
    m = moments(xp, a)
    return {"shape": list(a.shape), "dtype": str(a.dtype), "checksum": m["sum"], "norm": math.sqrt(m["sumsq"])}
