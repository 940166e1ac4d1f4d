"""Job kinds on CuPy: the backend-independent checks of test_kinds.py again, plus what only a GPU shows
(out-of-memory recovery, sticky errors, warm-up). Run with `-m gpu` on a host with a GPU."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from gpu_tasks import runtime
from gpu_tasks.base import MiB
from gpu_tasks.params import validate
from gpu_tasks.registry import get_kind
from tests.test_kinds import (  # noqa: F401  collected again here, with `xp` below
    ROOT,
    run,
    test_burn_holds_memory_for_about_its_seconds,
    test_every_summary_is_plain_json,
    test_fault_oom_is_classified_as_oom,
    test_fault_raise_is_an_ordinary_error,
    test_fault_sleep_sleeps_and_succeeds,
    test_fft_matches_a_float64_spectrum_and_finds_the_planted_tone,
    test_generated_values_are_splitmix64_of_the_index,
    test_generated_values_are_uniform_and_differ_by_seed_and_stream,
    test_generated_values_do_not_depend_on_chunking,
    test_matmul_matches_a_float64_product,
    test_montecarlo_count_does_not_depend_on_chunk_size,
    test_montecarlo_is_near_pi_within_its_bound_and_counts_like_a_direct_computation,
    test_nbody_matches_a_float64_pairwise_loop,
    test_noop_returns_only_timing,
    test_stats_match_numpy_in_float64,
    test_stencil_matches_a_float64_heat_equation,
)

pytestmark = pytest.mark.gpu
cupy = pytest.importorskip("cupy", reason="CuPy is not installed")


def _device_count() -> int:
    try:
        return cupy.cuda.runtime.getDeviceCount()
    except Exception:  # cudaErrorNoDevice, cudaErrorInsufficientDriver, ...
        return 0


if _device_count() == 0:
    pytest.skip("no CUDA device visible", allow_module_level=True)


@pytest.fixture(scope="module", autouse=True)
def warmed():
    """As a worker does when its process starts: kernels compiled, handles made."""
    runtime.warm_up(cupy)


@pytest.fixture
def xp():
    return cupy


def python(code: str) -> subprocess.CompletedProcess:
    """Run code in a fresh process: for CUDA state this process must not share."""
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_array_module_is_cupy_on_a_gpu_host():
    assert runtime.array_module() is cupy and runtime.backend(cupy) == "cupy"


def test_oom_is_classified_the_pool_freed_and_the_next_job_runs():
    run(cupy, "matmul", n=2048)
    with pytest.raises(cupy.cuda.memory.OutOfMemoryError) as caught:
        run(cupy, "fault", mode="oom")
    assert runtime.classify_error(caught.value) == "oom"
    runtime.free_memory_pool(cupy)
    pool = cupy.get_default_memory_pool()
    assert pool.used_bytes() == 0 and pool.total_bytes() == 0
    assert run(cupy, "matmul", n=1024)["shape"] == [1024, 1024]


def test_gpu_time_is_measured_between_cuda_events():
    out = run(cupy, "matmul", n=4096, repeat=20)
    tflops = out["flops"] / out["gpu_time_s"] / 1e12
    assert 0 < out["gpu_time_s"] < 2 and tflops > 5, out


def test_sticky_error_is_classified_as_sticky_and_poisons_the_context():
    done = python(
        "import cupy, json; from gpu_tasks import runtime\n"
        "try:\n"
        "    runtime.execute('fault', {'mode': 'sticky', 'seconds': 0, 'mib': 1}, cupy)\n"
        "except Exception as exc:\n"
        "    kind = runtime.classify_error(exc)\n"
        "try:\n"
        "    float(cupy.ones(4).sum()); after = 'ok'\n"
        "except Exception as exc:\n"
        "    after = runtime.classify_error(exc)\n"
        "print(json.dumps([kind, after]))\n"
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == ["sticky", "sticky"]


def test_importing_the_kinds_starts_no_cuda():
    done = python("import sys, gpu_tasks.runtime, gpu_tasks.registry; print('cupy' in sys.modules)")
    assert done.returncode == 0 and done.stdout.strip() == "False", done.stderr


def test_warm_up_takes_cuda_start_up_and_compiling_off_the_first_jobs():
    done = python(
        "import time, json; from gpu_tasks import runtime, params, registry\n"
        "xp = runtime.array_module(); t = time.perf_counter(); runtime.warm_up(xp); warm = time.perf_counter() - t\n"
        "jobs = {'matmul': {'n': 1024}, 'stats': {'size': 10**6}, 'fft': {'n': 4096, 'dims': 2},\n"
        "        'montecarlo': {'samples': 10**6}, 'stencil': {'n': 512}, 'nbody': {'bodies': 512}}\n"
        "t = time.perf_counter()\n"
        "for name, given in jobs.items():\n"
        "    runtime.execute(name, params.validate(registry.get_kind(name), given), xp)\n"
        "print(json.dumps([warm, time.perf_counter() - t]))\n"
    )
    assert done.returncode == 0, done.stderr
    warm, first = json.loads(done.stdout.splitlines()[-1])
    assert first < 0.5 < warm, (warm, first)


@pytest.mark.parametrize(
    "name, given",
    [
        ("matmul", {"n": 4096}),
        ("matmul", {"n": 8192, "dtype": "float64"}),
        ("fft", {"n": 4096, "dims": 2}),
        ("fft", {"n": 1 << 24, "dtype": "float64"}),
        ("stats", {"size": 10**8}),
        ("montecarlo", {"samples": 10**8}),
        ("stencil", {"n": 4096, "steps": 3}),
        ("nbody", {"bodies": 2048, "steps": 2}),
        ("burn", {"seconds": 0, "mib": 256}),
    ],
)
def test_estimates_cover_the_memory_a_kind_takes(name, given):
    kind = get_kind(name)
    params = validate(kind, given)
    runtime.free_memory_pool(cupy)
    run(cupy, name, **given)
    taken, declared = cupy.get_default_memory_pool().total_bytes(), kind.estimate(**params).memory_bytes
    print(f"{name} {given}: took {taken / MiB:.0f} MiB, declared {declared / MiB:.0f} MiB")
    assert taken <= declared
