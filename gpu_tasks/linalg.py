"""Dense linear algebra kinds: matmul."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from gpu_tasks import costs
from gpu_tasks.arrays import matrices, summarize
from gpu_tasks.base import Estimate, JobKind, Output, Param
from gpu_tasks.params import SEED, dtype_param


def estimate_matmul(*, n: int, dtype: str, repeat: int, **_: Any) -> Estimate:
    """Three n x n arrays; 2 n^3 flops per product at the dtype's GEMM rate."""
    size = n * n * costs.itemsize(dtype)
    return Estimate(3 * size + costs.OVERHEAD_BYTES, costs.generating(2 * n * n) + repeat * costs.gemm(n, dtype))


def run_matmul(xp: ModuleType, *, n: int, dtype: str, seed: int, repeat: int) -> Output:
    """C = A @ B of seeded uniform matrices, `repeat` times into the same output; C is the result array."""
    a, b = matrices(xp, n, dtype, seed)
    c = xp.empty((n, n), dtype=dtype)
    for _ in range(repeat):
        xp.matmul(a, b, out=c)
    return Output({**summarize(xp, c), "flops": 2 * n**3 * repeat}, c)


MATMUL = JobKind(
    name="matmul",
    title="Matrix multiply",
    params=(
        Param("n", int, 1024, 16, 32768, help="Rows and columns of the square matrices"),
        dtype_param("float32", "float64", "float16"),
        SEED,
        Param("repeat", int, 1, 1, 1000, help="How many times to multiply (for benchmarks)"),
    ),
    estimate=estimate_matmul,
    run=run_matmul,
    description="Multiplies two seeded n x n matrices; returns the product (.npy), its checksum and norm.",
    tags=("compute", "benchmark"),
)

KINDS = (MATMUL,)
