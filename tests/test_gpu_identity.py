"""GPU identity from recorded NVML answers: bus ids, CUDA_VISIBLE_DEVICES resolution, queue names."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.record_snapshots import ReplayNvml, load_recording
from workers.gpu import (
    CPU_UUID_PREFIX,
    GpuIdentity,
    PinningError,
    check_cuda_matches,
    cpu_identity,
    list_gpus,
    normalize_bus_id,
    queue_name,
    resolve_visible,
)

FIXTURES = Path(__file__).parent / "fixtures" / "snapshots"


def gpus_of(label: str, as_bytes: bool = False) -> list[GpuIdentity]:
    return list_gpus(ReplayNvml(load_recording(FIXTURES / f"{label}.json"), as_bytes=as_bytes))


@pytest.fixture
def h200() -> list[GpuIdentity]:
    return gpus_of("h200x2_idle")


@pytest.mark.parametrize(
    "raw, canonical",
    [
        ("00000000:00:07.0", "0000:00:07.0"),  # NVML
        ("0000:00:07.0", "0000:00:07.0"),  # CuPy
        ("00000000:3B:00.0", "0000:3b:00.0"),  # NVML upper-case hex
        (b"00000000:00:06.0", "0000:00:06.0"),  # older pynvml answers bytes
        ("00000001:00:06.0", "0001:00:06.0"),
        ("3b:00.0", "0000:3b:00.0"),
    ],
)
def test_it_normalizes_bus_ids(raw, canonical):
    assert normalize_bus_id(raw) == canonical


@pytest.mark.parametrize("as_bytes", [False, True])
def test_it_lists_gpus_in_nvml_order(as_bytes):
    gpus = gpus_of("h200x2_idle", as_bytes)
    assert [(g.index, g.bus_id, g.name) for g in gpus] == [
        (0, "0000:00:06.0", "NVIDIA H200"),
        (1, "0000:00:07.0", "NVIDIA H200"),
    ]
    assert gpus[1].uuid.startswith("GPU-c901ab12")
    assert gpus[0].memory_total == 143771 * 2**20


def test_a_real_recording_lists_gpus_in_bus_order():
    gpus = gpus_of("recorded_h200x2_idle")
    assert [g.bus_id for g in gpus] == ["0000:00:06.0", "0000:00:07.0"]
    assert all(g.uuid.startswith("GPU-") and g.memory_total == 143771 * 2**20 for g in gpus)


def test_it_lists_the_h100():
    [gpu] = gpus_of("h100x1")
    assert (gpu.name, gpu.memory_total, gpu.bus_id) == ("NVIDIA H100 80GB HBM3", 81559 * 2**20, "0000:00:07.0")


def test_it_resolves_an_index_in_bus_order(h200):
    assert resolve_visible("1", h200) == h200[1]
    assert resolve_visible("1", list(reversed(h200))) == h200[1]
    assert resolve_visible(" 0 ", h200) == h200[0]


def test_it_resolves_a_uuid_and_a_unique_prefix(h200):
    assert resolve_visible(h200[1].uuid, h200) == h200[1]
    assert resolve_visible("GPU-c901", h200) == h200[1]
    assert resolve_visible("GPU-" + h200[0].uuid[4:].upper(), h200) == h200[0]


def test_it_refuses_an_ambiguous_prefix(h200):
    with pytest.raises(PinningError, match="matches several GPUs"):
        resolve_visible("GPU-", h200)


def test_it_refuses_several_gpus(h200):
    with pytest.raises(PinningError, match=r"CUDA_VISIBLE_DEVICES=0,1 names several GPUs"):
        resolve_visible("0,1", h200)


def test_it_names_the_bad_uuid_and_lists_the_gpus(h200):
    with pytest.raises(PinningError) as err:
        resolve_visible("GPU-deadbeef-0000-0000-0000-000000000000", h200)
    message = str(err.value)
    assert "CUDA_VISIBLE_DEVICES=GPU-deadbeef-0000-0000-0000-000000000000 names no GPU on this host" in message
    for g in h200:
        assert f"{g.index} {g.uuid} (NVIDIA H200)" in message


def test_it_refuses_an_index_that_does_not_exist(h200):
    with pytest.raises(PinningError, match="CUDA_VISIBLE_DEVICES=7 names no GPU on this host"):
        resolve_visible("7", h200)


@pytest.mark.parametrize("value", ["", "   "])
def test_it_refuses_an_empty_value(h200, value):
    with pytest.raises(PinningError, match="empty or unset"):
        resolve_visible(value, h200)


def test_it_says_when_nvml_finds_no_gpu():
    with pytest.raises(PinningError, match="NVML finds no GPU"):
        resolve_visible("0", [])


def test_pinning_errors_are_value_errors():
    assert issubclass(PinningError, ValueError)


def test_it_accepts_cuda_on_the_expected_bus(h200):
    check_cuda_matches(h200[1], "0000:00:07.0", 1)


def test_it_refuses_cuda_seeing_several_devices(h200):
    with pytest.raises(PinningError, match="CUDA sees 2 devices"):
        check_cuda_matches(h200[1], "0000:00:06.0", 2)


def test_it_refuses_cuda_on_another_bus(h200):
    with pytest.raises(PinningError, match=r"PCI bus 0000:00:06.0 .* on 0000:00:07.0"):
        check_cuda_matches(h200[1], "0000:00:06.0", 1)


def test_queue_names_are_short_and_follow_the_uuid(h200):
    assert [queue_name("h200x2", g.uuid) for g in h200] == ["gpu.h200x2.3f5b2d1e", "gpu.h200x2.c901ab12"]
    assert queue_name("h200x2", h200[1].uuid) == queue_name("h200x2", "GPU-" + h200[1].uuid[4:].upper())


def test_the_cpu_worker_has_its_own_identity_and_queue():
    ident = cpu_identity("laptop", 16 * 2**30)
    assert ident.uuid == f"{CPU_UUID_PREFIX}laptop"
    assert queue_name("laptop", ident.uuid) == "cpu.laptop"
    assert ident.memory_total == 16 * 2**30
