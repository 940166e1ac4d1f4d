"""Monte Carlo kinds: pi from points in the unit square, in chunks so memory stays bounded."""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

from gpu_tasks import costs
from gpu_tasks.arrays import uniform_slice
from gpu_tasks.base import Estimate, JobKind, Param
from gpu_tasks.params import SEED

CHUNK = 1 << 24  # points per slice: ~0.8 GiB of temporaries, few enough launches at 2**36 points
BYTES_PER_POINT = 48  # x and y in float64 plus the generator's uint64 temporaries


def estimate_montecarlo(*, samples: int, **_: Any) -> Estimate:
    """One chunk's temporaries at a time; two generated values per point."""
    return Estimate(min(samples, CHUNK) * BYTES_PER_POINT + costs.OVERHEAD_BYTES, costs.generating(2 * samples))


def count_inside(xp: ModuleType, seed: int, samples: int) -> int:
    """How many of the seeded points fall inside the quarter circle; the same for any chunking."""
    inside = xp.zeros((), dtype=xp.int64)  # on the device: no synchronisation per chunk
    for start in range(0, samples, CHUNK):
        stop = min(start + CHUNK, samples)
        x, y = uniform_slice(xp, seed, 0, start, stop), uniform_slice(xp, seed, 1, start, stop)
        inside += xp.count_nonzero(x * x + y * y < 1.0)
    return int(inside)


def run_montecarlo(xp: ModuleType, *, samples: int, seed: int) -> dict[str, Any]:
    """Pi as 4 * (share of points inside); error_bound is 4 standard errors (exceeded ~1 time in 16,000)."""
    inside = count_inside(xp, seed, samples)
    p = math.pi / 4
    return {
        "pi": 4 * inside / samples,
        "samples": samples,
        "inside": inside,
        "error_bound": 4 * 4 * math.sqrt(p * (1 - p) / samples),
    }


MONTECARLO = JobKind(
    name="montecarlo",
    title="Monte Carlo pi",
    params=(Param("samples", int, 1 << 24, 1, 1 << 36, help="How many random points"), SEED),
    estimate=estimate_montecarlo,
    run=run_montecarlo,
    description="Estimates pi from seeded random points; returns the estimate and its error bound.",
    tags=("compute",),
)

KINDS = (MONTECARLO,)
