"""Spectral kinds: fft of a seeded signal with one planted tone, so the peak bin is known."""

from __future__ import annotations

import math
import random
from types import ModuleType
from typing import Any

import numpy

from gpu_tasks import costs
from gpu_tasks.arrays import moments, uniform
from gpu_tasks.base import Estimate, JobKind, Output, Param
from gpu_tasks.params import SEED, dtype_param

TONE = 4.0  # amplitude: the tone's bin stands far above the noise's, even at n = 16


def tone_bins(n: int, dims: int, seed: int) -> list[int]:
    """Frequencies of the planted tone; in 1..n/2-1 so a real FFT holds it exactly once."""
    rng = random.Random(seed)
    return [rng.randrange(1, n // 2) for _ in range(dims)]


def signal(xp: ModuleType, n: int, dims: int, dtype: str, seed: int) -> Any:
    """Centred uniform noise plus TONE * cos(2 pi k.x / n), shape (n,) * dims."""
    x = uniform(xp, (n,) * dims, seed, 0, dtype)
    x -= 0.5
    phase = 0
    for axis, k in enumerate(tone_bins(n, dims, seed)):
        shape = [1] * dims
        shape[axis] = n
        phase = phase + (k * xp.arange(n, dtype=xp.int64)).reshape(shape)
    x += TONE * xp.cos((phase % n) * (2 * math.pi / n))
    return x


def estimate_fft(*, n: int, dims: int, dtype: str, **_: Any) -> Estimate:
    """Signal, integer phase and cosine temporaries, spectrum, magnitude and cuFFT's workspace."""
    count, size = n**dims, costs.itemsize(dtype)
    memory = count * (size + 24) + 3 * count * size + costs.OVERHEAD_BYTES
    passes = 5 * math.ceil(math.log2(count) / 4)  # radix-16 passes, read and write
    return Estimate(memory, costs.generating(count) + costs.streaming(count * (32 + passes * 2 * size), 8))


def run_fft(xp: ModuleType, *, n: int, dims: int, dtype: str, seed: int) -> Output:
    """Real FFT of the signal; summary of the spectrum's magnitude and where it peaks; the complex spectrum."""
    spectrum = xp.fft.rfftn(signal(xp, n, dims, dtype, seed))
    magnitude = xp.abs(spectrum)
    peak = numpy.unravel_index(int(xp.argmax(magnitude)), magnitude.shape)
    summary = {
        "shape": list(magnitude.shape),
        "dtype": dtype,
        "norm": math.sqrt(moments(xp, magnitude)["sumsq"]),
        "peak_bin": [int(i) for i in peak],
        "peak": float(magnitude[peak]),
    }
    return Output(summary, spectrum)


FFT = JobKind(
    name="fft",
    title="Fast Fourier transform",
    params=(
        Param("n", int, 4096, 16, 1 << 24, help="Length of each dimension"),
        Param("dims", int, 1, choices=(1, 2), help="1 for a signal of n values, 2 for an n x n image"),
        dtype_param("float32", "float64"),
        SEED,
    ),
    estimate=estimate_fft,
    run=run_fft,
    description="Real FFT of seeded noise with a planted tone; its norm and peak bin, and the spectrum (.npy).",
    tags=("compute",),
)

KINDS = (FFT,)
