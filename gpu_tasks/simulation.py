"""Simulation kinds: a 2-D heat-diffusion stencil and a direct-sum n-body integration."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from gpu_tasks import costs
from gpu_tasks.arrays import summarize, uniform
from gpu_tasks.base import Estimate, JobKind, Output, Param
from gpu_tasks.params import SEED, dtype_param

ALPHA = 0.2  # diffusion number; the explicit scheme is stable up to 0.25
DT = 1e-3
SOFTENING = 1e-4  # squared, keeps close encounters finite


def estimate_stencil(*, n: int, steps: int, dtype: str, **_: Any) -> Estimate:
    """Two grids and about three interior temporaries; ~12 grid passes and 8 launches a step."""
    grid = n * n * costs.itemsize(dtype)
    return Estimate(5 * grid + costs.OVERHEAD_BYTES, costs.generating(n * n) + steps * costs.streaming(12 * grid, 8))


def diffuse(u: Any, out: Any) -> None:
    """One explicit heat-equation step of u's interior into out; the edges stay fixed (Dirichlet)."""
    c = u[1:-1, 1:-1]
    out[1:-1, 1:-1] = c + ALPHA * (u[:-2, 1:-1] + u[2:, 1:-1] + u[1:-1, :-2] + u[1:-1, 2:] - 4 * c)


def run_stencil(xp: ModuleType, *, n: int, steps: int, dtype: str, seed: int) -> Output:
    """Diffuse a seeded n x n temperature field for `steps` steps; the final field is the result array."""
    u = uniform(xp, (n, n), seed, 0, dtype)
    v = u.copy()
    for _ in range(steps):
        diffuse(u, v)
        u, v = v, u
    return Output({**summarize(xp, u), "steps": steps}, u)


def estimate_nbody(*, bodies: int, steps: int, dtype: str, **_: Any) -> Estimate:
    """Pairwise (N, N, 3) differences and their temporaries, ~10 passes over them a step."""
    pairs = bodies * bodies * 3 * costs.itemsize(dtype)
    return Estimate(3 * pairs + costs.OVERHEAD_BYTES, steps * costs.streaming(10 * pairs, 12))


def accelerations(xp: ModuleType, pos: Any) -> Any:
    """Softened gravity (G = 1, each body of mass 1/N) on every body from all the others."""
    d = pos[None, :, :] - pos[:, None, :]
    inv = ((d * d).sum(axis=2) + SOFTENING) ** -1.5
    return (d * inv[:, :, None]).sum(axis=1) / pos.shape[0]


def run_nbody(xp: ModuleType, *, bodies: int, steps: int, dtype: str, seed: int) -> Output:
    """Symplectic Euler steps of seeded bodies starting at rest in the unit cube; the result array is the
    final state, shape (2, bodies, 3): positions, then velocities."""
    pos = uniform(xp, (bodies, 3), seed, 0, dtype)
    vel = xp.zeros_like(pos)
    for _ in range(steps):
        vel += DT * accelerations(xp, pos)
        pos += DT * vel
    kinetic = 0.5 * float((vel.astype(xp.float64) ** 2).sum()) / bodies
    return Output({**summarize(xp, pos), "steps": steps, "kinetic_energy": kinetic}, xp.stack([pos, vel]))


STENCIL = JobKind(
    name="stencil",
    title="Heat diffusion stencil",
    params=(
        Param("n", int, 1024, 16, 32768, help="Rows and columns of the grid"),
        Param("steps", int, 100, 1, 100_000, help="Time steps"),
        dtype_param("float32", "float64"),
        SEED,
    ),
    estimate=estimate_stencil,
    run=run_stencil,
    description="Explicit 2-D heat diffusion on a seeded grid; returns the final grid (.npy), its checksum and norm.",
    tags=("simulation",),
)

NBODY = JobKind(
    name="nbody",
    title="N-body gravity",
    params=(
        Param("bodies", int, 1024, 2, 16384, help="How many bodies"),
        Param("steps", int, 10, 1, 10_000, help="Time steps"),
        dtype_param("float32", "float64"),
        SEED,
    ),
    estimate=estimate_nbody,
    run=run_nbody,
    description="Direct-sum gravity of seeded bodies; positions' checksum, kinetic energy, final state (.npy).",
    tags=("simulation",),
)

KINDS = (STENCIL, NBODY)
