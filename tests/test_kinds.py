"""Job kinds on NumPy: each against a float64 reference computed here, plus validation, schemas and estimates.

tests/test_kinds_gpu.py runs the backend-independent tests below again on CuPy (they take `xp`).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
import types
import weakref
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpu_tasks import arrays, fft, montecarlo, runtime, simulation
from gpu_tasks.base import Estimate, JobKind, MiB, ParamError, UnknownKind
from gpu_tasks.params import json_schema, validate
from gpu_tasks.registry import KINDS, get_kind

ROOT = Path(__file__).resolve().parents[1]
RTOL = {"float64": 1e-9, "float32": 1e-4, "float16": 2e-2}


@pytest.fixture
def xp():
    return np


def run(xp, name: str, **params) -> dict:
    return runtime.execute(name, validate(get_kind(name), params), xp)


def host(shape, seed, dtype, stream=0) -> np.ndarray:
    """The seeded data a kind starts from, in float64 for the reference."""
    return arrays.uniform(np, shape, seed, stream, dtype).astype(np.float64)


def splitmix64(seed: int) -> int:
    z = (seed + 0x9E3779B97F4A7C15) % 2**64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) % 2**64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) % 2**64
    return z ^ (z >> 31)


# --- seeded data -------------------------------------------------------------------------------------------


def test_generated_values_are_splitmix64_of_the_index(xp):
    seed, stream = 12345, 1
    base = splitmix64(splitmix64(seed) ^ stream)
    golden = 0x9E3779B97F4A7C15
    expected = [(splitmix64((base + (i - 1) * golden) % 2**64) >> 11) / 2**53 for i in range(5)]
    got = arrays.uniform(xp, (5,), seed, stream)
    assert [float(v) for v in got] == expected


def test_generated_values_do_not_depend_on_chunking(xp, monkeypatch):
    whole = arrays.uniform(xp, (7, 11), 3, 0, "float32")
    monkeypatch.setattr(arrays, "CHUNK", 5)
    assert float(abs(arrays.uniform(xp, (7, 11), 3, 0, "float32") - whole).max()) == 0.0


def test_generated_values_are_uniform_and_differ_by_seed_and_stream(xp):
    a = arrays.uniform(xp, (100_000,), 1)
    assert 0.0 <= float(a.min()) and float(a.max()) < 1.0
    assert abs(float(a.mean()) - 0.5) < 0.005 and abs(float(a.std()) - math.sqrt(1 / 12)) < 0.005
    assert float(abs(a[:100] - arrays.uniform(xp, (100,), 2)).max()) > 0.1
    assert float(abs(a[:100] - arrays.uniform(xp, (100,), 1, stream=1)).max()) > 0.1


def test_host_matrices_are_what_matmul_multiplies():
    a, b = arrays.host_matrices(16, "float64", 5)
    assert a.shape == b.shape == (16, 16) and a.dtype == np.float64
    assert np.array_equal(a, host((16, 16), 5, "float64")) and not np.array_equal(a, b)


# --- kinds against float64 references -------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16"])
def test_matmul_matches_a_float64_product(xp, dtype):
    a, b = arrays.host_matrices(48, dtype, 7)
    ref = a.astype(np.float64) @ b.astype(np.float64)
    out = run(xp, "matmul", n=48, dtype=dtype, seed=7, repeat=2)
    assert out["shape"] == [48, 48] and out["dtype"] == dtype and out["flops"] == 2 * 48**3 * 2
    assert out["checksum"] == pytest.approx(ref.sum(), rel=RTOL[dtype])
    assert out["norm"] == pytest.approx(np.linalg.norm(ref), rel=RTOL[dtype])


@pytest.mark.parametrize("dims", [1, 2])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_fft_matches_a_float64_spectrum_and_finds_the_planted_tone(xp, dims, dtype):
    spectrum = np.abs(np.fft.rfftn(fft.signal(np, 64, dims, dtype, 3).astype(np.float64)))
    out = run(xp, "fft", n=64, dims=dims, dtype=dtype, seed=3)
    assert out["shape"] == list(spectrum.shape)
    assert out["norm"] == pytest.approx(np.sqrt((spectrum**2).sum()), rel=RTOL[dtype])
    assert out["peak_bin"] == fft.tone_bins(64, dims, 3) == list(np.unravel_index(spectrum.argmax(), spectrum.shape))
    assert out["peak"] == pytest.approx(spectrum.max(), rel=RTOL[dtype])


@pytest.mark.parametrize("size", [1, 10, 1000])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_stats_match_numpy_in_float64(xp, size, dtype):
    values = host((size,), 9, dtype)
    out = run(xp, "stats", size=size, dtype=dtype, seed=9)
    assert (out["size"], out["dtype"], out["min"], out["max"]) == (size, dtype, values.min(), values.max())
    assert out["sum"] == pytest.approx(values.sum(), rel=1e-12)
    assert out["mean"] == pytest.approx(values.mean(), rel=1e-12)
    assert out["std"] == pytest.approx(values.std(), rel=1e-9, abs=1e-12)


def test_montecarlo_is_near_pi_within_its_bound_and_counts_like_a_direct_computation(xp):
    x, y = host((300_000,), 4, "float64"), host((300_000,), 4, "float64", stream=1)
    out = run(xp, "montecarlo", samples=300_000, seed=4)
    assert out["inside"] == int(((x * x + y * y) < 1.0).sum())
    assert abs(out["pi"] - math.pi) < out["error_bound"] < 0.02
    assert out["pi"] == 4 * out["inside"] / 300_000


def test_montecarlo_count_does_not_depend_on_chunk_size(xp, monkeypatch):
    whole = run(xp, "montecarlo", samples=10_000, seed=8)["inside"]
    monkeypatch.setattr(montecarlo, "CHUNK", 999)
    assert run(xp, "montecarlo", samples=10_000, seed=8)["inside"] == whole
    assert run(xp, "montecarlo", samples=10_000, seed=9)["inside"] != whole


def heat_reference(u: np.ndarray, steps: int) -> np.ndarray:
    for _ in range(steps):
        neighbours = np.roll(u, 1, 0) + np.roll(u, -1, 0) + np.roll(u, 1, 1) + np.roll(u, -1, 1)
        stepped = u + simulation.ALPHA * (neighbours - 4 * u)
        u = u.copy()
        u[1:-1, 1:-1] = stepped[1:-1, 1:-1]
    return u


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_stencil_matches_a_float64_heat_equation(xp, dtype):
    ref = heat_reference(host((40, 40), 2, dtype), 6)
    out = run(xp, "stencil", n=40, steps=6, dtype=dtype, seed=2)
    assert out["shape"] == [40, 40] and out["steps"] == 6
    assert out["checksum"] == pytest.approx(ref.sum(), rel=RTOL[dtype])
    assert out["norm"] == pytest.approx(np.linalg.norm(ref), rel=RTOL[dtype])


def nbody_reference(pos: np.ndarray, steps: int) -> tuple[np.ndarray, np.ndarray]:
    vel, n = np.zeros_like(pos), len(pos)
    for _ in range(steps):
        acc = np.zeros_like(pos)
        for i in range(n):
            for j in range(n):
                d = pos[j] - pos[i]
                acc[i] += d / (d @ d + simulation.SOFTENING) ** 1.5 / n
        vel += simulation.DT * acc
        pos = pos + simulation.DT * vel
    return pos, vel


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_nbody_matches_a_float64_pairwise_loop(xp, dtype):
    pos, vel = nbody_reference(host((12, 3), 6, dtype), 4)
    out = run(xp, "nbody", bodies=12, steps=4, dtype=dtype, seed=6)
    assert out["shape"] == [12, 3]
    assert out["checksum"] == pytest.approx(pos.sum(), rel=RTOL[dtype])
    assert out["kinetic_energy"] == pytest.approx(0.5 * (vel**2).sum() / 12, rel=10 * RTOL[dtype])
    assert out["kinetic_energy"] > 0


def test_every_summary_is_plain_json(xp):
    for name, params in [
        ("matmul", {"n": 16}),
        ("fft", {"n": 16, "dims": 2}),
        ("stats", {"size": 5}),
        ("montecarlo", {"samples": 5}),
        ("stencil", {"n": 16, "steps": 1}),
        ("nbody", {"bodies": 2, "steps": 1}),
        ("burn", {"seconds": 0, "mib": 0}),
        ("noop", {}),
    ]:
        out = run(xp, name, **params)
        assert json.loads(json.dumps(out)) == out
        assert all(type(v) in (int, float, str, list) for v in out.values()), (name, out)
        assert out["backend"] == runtime.backend(xp) and out["gpu_time_s"] >= 0


def test_noop_returns_only_timing(xp):
    out = run(xp, "noop")
    assert set(out) == {"gpu_time_s", "gpu_began_at", "gpu_ended_at", "backend"}
    assert out["gpu_began_at"] <= out["gpu_ended_at"]


def test_burn_holds_memory_for_about_its_seconds(xp):
    started = time.monotonic()
    out = run(xp, "burn", seconds=0.3, mib=2)
    took = time.monotonic() - started
    assert 0.3 <= out["seconds"] <= took < 0.8
    assert out["held_bytes"] == 2 * MiB and out["mib"] == 2 and out["iterations"] >= 1
    assert out["gpu_time_s"] == pytest.approx(out["seconds"], abs=0.1)


# --- faults and their classification --------------------------------------------------------------------------


def test_fault_raise_is_an_ordinary_error(xp):
    with pytest.raises(RuntimeError, match="fault injected: raise") as caught:
        run(xp, "fault", mode="raise")
    assert runtime.classify_error(caught.value) == "error"


def test_fault_oom_is_classified_as_oom(xp):
    with pytest.raises(MemoryError) as caught:
        run(xp, "fault", mode="oom")
    assert runtime.classify_error(caught.value) == "oom"


def test_fault_sleep_sleeps_and_succeeds(xp):
    started = time.monotonic()
    assert run(xp, "fault", mode="sleep", seconds=0.2)["mode"] == "sleep"
    assert 0.2 <= time.monotonic() - started < 0.6


def test_fault_sticky_needs_a_gpu():
    with pytest.raises(RuntimeError, match="needs a GPU") as caught:
        run(np, "fault", mode="sticky")
    assert runtime.classify_error(caught.value) == "error"


def test_fault_exit_kills_the_process_with_status_1():
    code = (
        "import numpy; from gpu_tasks import runtime; "
        "runtime.execute('fault', {'mode': 'exit', 'seconds': 0, 'mib': 1}, numpy); print('survived')"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "survived" not in done.stdout


@pytest.fixture
def fake_cupy_errors(monkeypatch):
    """CuPy's error classes as `classify_error` finds them in sys.modules, without CuPy."""
    module = types.ModuleType("cupy_backends.cuda.api.runtime")
    module.CUDARuntimeError = type("CUDARuntimeError", (RuntimeError,), {})
    monkeypatch.setitem(sys.modules, module.__name__, module)
    return module.CUDARuntimeError


@pytest.mark.parametrize(
    "message, kind",
    [
        ("cudaErrorIllegalAddress: an illegal memory access was encountered", "sticky"),
        ("cudaErrorLaunchFailure: unspecified launch failure", "sticky"),
        ("cudaErrorMisalignedAddress: misaligned address", "sticky"),
        ("cudaErrorHardwareStackError: hardware stack error", "sticky"),
        ("cudaErrorIllegalInstruction: an illegal instruction was encountered", "sticky"),
        ("cudaErrorMemoryAllocation: out of memory", "oom"),
        ("cudaErrorInvalidValue: invalid argument", "error"),
    ],
)
def test_cuda_errors_are_classified_by_their_code(fake_cupy_errors, message, kind):
    assert runtime.classify_error(fake_cupy_errors(message)) == kind


def test_a_sticky_error_behind_another_exception_is_still_sticky(fake_cupy_errors):
    try:
        try:
            raise fake_cupy_errors("cudaErrorIllegalAddress: an illegal memory access was encountered")
        except RuntimeError as inner:
            raise ValueError("while summarising") from inner
    except ValueError as outer:
        assert runtime.classify_error(outer) == "sticky"


def test_cuda_words_in_an_ordinary_error_are_not_sticky(fake_cupy_errors):
    assert runtime.classify_error(RuntimeError("cudaErrorIllegalAddress")) == "error"
    assert runtime.classify_error(MemoryError()) == "oom"


def test_a_failed_run_lets_go_of_its_arrays(monkeypatch):
    """So that freeing the memory pool after an OOM really frees the job's memory."""
    refs = []

    def leaky(xp):
        held = xp.ones(1000)
        refs.append(weakref.ref(held))
        raise RuntimeError("boom")

    monkeypatch.setitem(KINDS, "leaky", JobKind("leaky", "Leaky", (), lambda: Estimate(0, 0), leaky))
    with pytest.raises(RuntimeError) as caught:
        runtime.execute("leaky", {}, np)
    assert caught.value.__traceback__ is not None and refs[0]() is None


# --- runtime ---------------------------------------------------------------------------------------------------


def test_array_module_is_numpy_when_asked_or_when_cupy_is_missing(monkeypatch):
    assert runtime.array_module(prefer_gpu=False) is np
    monkeypatch.setitem(sys.modules, "cupy", None)
    assert runtime.array_module() is np


def test_warm_up_and_free_memory_pool_run_on_numpy():
    runtime.warm_up(np)
    runtime.free_memory_pool(np)
    assert runtime.backend(np) == "numpy"


def test_smallest_params_cover_every_choice_at_the_minimum_sizes():
    combos = runtime.smallest(get_kind("fft"))
    assert {(c["dims"], c["dtype"]) for c in combos} == {(1, "float32"), (1, "float64"), (2, "float32"), (2, "float64")}
    assert all(c["n"] == 16 and c["seed"] == 0 for c in combos)
    assert runtime.smallest(get_kind("burn")) == [{"seconds": 0.0, "mib": 0}]
    assert runtime.smallest(get_kind("noop")) == [{}]


def test_execute_refuses_an_unknown_kind():
    with pytest.raises(UnknownKind):
        runtime.execute("nope", {}, np)


# --- registry -------------------------------------------------------------------------------------------------


def test_registry_holds_the_required_kinds_and_only_fault_is_staff_only():
    assert {"matmul", "fft", "stats", "montecarlo", "stencil", "nbody", "burn", "noop", "fault"} <= set(KINDS)
    assert [k.name for k in KINDS.values() if k.staff_only] == ["fault"]
    assert all(name == kind.name for name, kind in KINDS.items())


def test_unknown_kind_names_the_kinds_users_may_submit():
    with pytest.raises(UnknownKind) as caught:
        get_kind("nope")
    message = str(caught.value)
    assert "'nope'" in message and "matmul" in message and "noop" in message and "fault" not in message


# --- validation -----------------------------------------------------------------------------------------------


def errors(name: str, **params) -> dict[str, str]:
    with pytest.raises(ParamError) as caught:
        validate(get_kind(name), params)
    return caught.value.errors


def test_defaults_fill_what_is_not_given():
    assert validate(get_kind("matmul"), {}) == {"n": 1024, "dtype": "float32", "seed": 0, "repeat": 1}
    assert validate(get_kind("matmul"), {"n": 64, "dtype": "float64"})["n"] == 64


def test_wrong_type_names_the_field_and_its_range():
    assert errors("matmul", n="abc") == {"n": "must be an integer between 16 and 32768, got 'abc'"}


@pytest.mark.parametrize("n", [15, 32769, 10**9, -1, 0])
def test_out_of_range_names_the_range(n):
    assert errors("matmul", n=n) == {"n": f"must be an integer between 16 and 32768, got {n}"}


@pytest.mark.parametrize("value", [True, False, 64.5, "64", None, [64], float("nan")])
def test_an_integer_parameter_takes_no_bool_fraction_text_or_null(value):
    assert "must be an integer between 16 and 32768" in errors("matmul", n=value)["n"]


def test_an_integral_float_is_taken_as_an_integer():
    n = validate(get_kind("matmul"), {"n": 64.0})["n"]
    assert n == 64 and type(n) is int


def test_a_float_parameter_takes_an_int_but_no_bool_or_infinity():
    seconds = validate(get_kind("burn"), {"seconds": 3})["seconds"]
    assert seconds == 3.0 and type(seconds) is float
    for bad in (True, float("inf"), float("nan"), 10**400, "1", 3600.5, -0.1):
        assert errors("burn", seconds=bad)["seconds"].startswith("must be a number between 0 and 3600, got "), bad


def test_a_choice_outside_the_list_names_the_choices():
    assert errors("matmul", dtype="int7") == {"dtype": "must be one of float32, float64, float16, got 'int7'"}
    assert "must be one of 1, 2" in errors("fft", dims=3)["dims"]
    assert "must be one of 1, 2" in errors("fft", dims="1")["dims"]


def test_unknown_parameters_are_refused_naming_the_known_ones():
    assert errors("matmul", colour="blue") == {"colour": "unknown parameter: matmul takes n, dtype, seed, repeat"}
    assert errors("noop", n=1) == {"n": "unknown parameter: noop takes no parameters"}


def test_a_missing_required_parameter_names_what_it_takes():
    assert errors("fault") == {"mode": "is required: one of raise, exit, oom, sleep, stubborn, sticky"}


def test_every_bad_field_is_reported_at_once():
    found = errors("matmul", n="abc", dtype="x", colour=1)
    assert set(found) == {"n", "dtype", "colour"}


def test_params_must_be_an_object():
    with pytest.raises(ParamError) as caught:
        validate(get_kind("matmul"), [1, 2])
    assert "params" in caught.value.errors


def test_the_error_reads_as_field_then_message():
    with pytest.raises(ParamError, match=r"^n: must be an integer between 16 and 32768, got 'abc'$"):
        validate(get_kind("matmul"), {"n": "abc"})


@given(st.integers(min_value=-(2**70), max_value=2**70))
def test_an_integer_is_taken_exactly_when_in_range(n):
    try:
        assert validate(get_kind("matmul"), {"n": n})["n"] == n and 16 <= n <= 32768
    except ParamError as exc:
        assert not 16 <= n <= 32768 and "n" in exc.errors


def test_every_default_is_valid_for_its_own_kind():
    for kind in KINDS.values():
        examples = {"image": "team/train:1", "command": "python train.py"}  # required, without choices
        chosen = {
            p.name: examples.get(p.name) or (p.choices[0] if p.default is None else p.default) for p in kind.params
        }
        assert validate(kind, chosen) == chosen, kind.name


# --- JSON schema ------------------------------------------------------------------------------------------------


def test_json_schema_describes_types_bounds_choices_and_defaults():
    schema = json_schema(get_kind("matmul"))
    assert schema["type"] == "object" and schema["additionalProperties"] is False and schema["required"] == []
    assert schema["properties"]["n"] == {
        "type": "integer",
        "minimum": 16,
        "maximum": 32768,
        "default": 1024,
        "description": "Rows and columns of the square matrices",
    }
    assert schema["properties"]["dtype"]["enum"] == ["float32", "float64", "float16"]
    assert json_schema(get_kind("burn"))["properties"]["seconds"]["type"] == "number"
    assert json_schema(get_kind("fault"))["required"] == ["mode"]
    assert json_schema(get_kind("noop"))["properties"] == {}


def test_json_schema_agrees_with_validate():
    jsonschema = pytest.importorskip("jsonschema")
    cases = [{}, {"n": 64}, {"n": "abc"}, {"n": 15}, {"n": True}, {"dtype": "int7"}, {"colour": 1}, {"n": 64.5}]
    for params in cases:
        by_schema = jsonschema.Draft202012Validator(json_schema(get_kind("matmul"))).is_valid(params)
        try:
            validate(get_kind("matmul"), params)
            by_validate = True
        except ParamError:
            by_validate = False
        assert by_schema == by_validate, params
    for kind in KINDS.values():
        jsonschema.Draft202012Validator.check_schema(json_schema(kind))
        json.dumps(json_schema(kind))


# --- estimates ------------------------------------------------------------------------------------------------

SIZES = {
    "n": (64, 4096),
    "size": (1000, 10**8),
    "samples": (1000, 2**34),
    "bodies": (16, 4096),
    "steps": (1, 1000),
    "repeat": (1, 10),
    "seconds": (0.5, 60.0),
    "mib": (1, 4096),
}


# A container's or a command's needs are what its owner declares, not derived from a size.
@pytest.mark.parametrize("name", [k for k in KINDS if k not in ("noop", "fault", "container", "run")])
def test_estimates_grow_with_size(name):
    kind = get_kind(name)
    base = validate(kind, {})
    grown = [p for p in SIZES if p in base]
    assert grown, name
    for param in grown:
        small, large = (kind.estimate(**{**base, param: v}) for v in SIZES[param])
        assert small.work <= large.work and small.memory_bytes <= large.memory_bytes, (param, small, large)
        assert small.work < large.work or small.memory_bytes < large.memory_bytes, (param, small, large)
        assert isinstance(large.memory_bytes, int) and large.memory_bytes > 0


def test_matmul_estimate_is_near_the_measured_h100_figure():
    # docs/ARCHITECTURE.md: FP32 matmul 8192^3 took 21.4 ms.
    est = get_kind("matmul").estimate(n=8192, dtype="float32", seed=0, repeat=1)
    assert 0.01 < est.work < 0.05
    assert est.memory_bytes >= 3 * 8192 * 8192 * 4


def test_noop_and_fault_declare_almost_nothing():
    assert get_kind("noop").estimate() == Estimate(0, 0.0)
    fault = get_kind("fault")
    assert fault.estimate(**validate(fault, {"mode": "oom"})).memory_bytes < 1024 * MiB
    assert fault.estimate(**validate(fault, {"mode": "sleep", "seconds": 5})).work == 5.0
