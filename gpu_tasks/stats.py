"""Reduction kinds: statistics over seeded values."""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

from gpu_tasks import costs
from gpu_tasks.arrays import moments, uniform
from gpu_tasks.base import Estimate, JobKind, Param
from gpu_tasks.params import SEED, dtype_param


def estimate_stats(*, size: int, dtype: str, **_: Any) -> Estimate:
    """The values themselves, generated once and read once."""
    return Estimate(size * costs.itemsize(dtype) + costs.OVERHEAD_BYTES, costs.generating(size))


def run_stats(xp: ModuleType, *, size: int, dtype: str, seed: int) -> dict[str, Any]:
    """Mean, standard deviation (population), min, max and sum of `size` uniform [0, 1) values."""
    m = moments(xp, uniform(xp, (size,), seed, 0, dtype))
    mean = m["sum"] / size
    # One pass in float64: for values in [0, 1) the cancellation in E[x^2] - mean^2 costs ~1e-12 at most.
    std = math.sqrt(max(m["sumsq"] / size - mean * mean, 0.0))
    return {"size": size, "dtype": dtype, "mean": mean, "std": std, "min": m["min"], "max": m["max"], "sum": m["sum"]}


STATS = JobKind(
    name="stats",
    title="Statistics",
    params=(
        Param("size", int, 1 << 20, 1, 1 << 31, help="How many values"),
        dtype_param("float32", "float64"),
        SEED,
    ),
    estimate=estimate_stats,
    run=run_stats,
    description="Mean, standard deviation, min, max and sum of seeded uniform values.",
    tags=("reduction",),
)

KINDS = (STATS,)
