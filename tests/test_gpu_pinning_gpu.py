"""On a GPU host: NVML's view matches nvidia-smi, and pinning by UUID gives CUDA exactly that GPU.

python -m pytest tests/test_gpu_pinning_gpu.py -m gpu
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workers import telemetry
from workers.gpu import GpuIdentity, PinningError, check_cuda_matches, list_gpus, normalize_bus_id, resolve_visible

pytestmark = pytest.mark.gpu
ROOT = Path(__file__).resolve().parents[1]
MiB = 2**20
BAD_UUID = "GPU-deadbeef-0000-0000-0000-000000000000"


@pytest.fixture(scope="module")
def nvml():
    pynvml = pytest.importorskip("pynvml")
    pytest.importorskip("cupy")
    if not shutil.which("nvidia-smi"):
        pytest.skip("no nvidia-smi")
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        pytest.skip(f"no NVML: {exc}")
    return pynvml


@pytest.fixture(scope="module")
def gpus(nvml) -> list[GpuIdentity]:
    return list_gpus(nvml)


def smi(fields: str) -> list[list[str]]:
    out = subprocess.run(
        ["nvidia-smi", f"--query-gpu={fields}", "--format=csv,noheader,nounits"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [[cell.strip() for cell in line.split(",")] for line in out.strip().splitlines()]


def _path() -> str:
    """The project first, then whatever the caller had (the GPU host's bundle lives on PYTHONPATH)."""
    return os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))


def in_child(code: str, visible: str) -> dict:
    """Run `code` (which prints one JSON line) in a process pinned the way workers are."""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": visible, "CUDA_DEVICE_ORDER": "PCI_BUS_ID", "PYTHONPATH": _path()}
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


PROBE = "import json; from workers.cuda_probe import probe; print(json.dumps(probe()))"
RESOLVE = """
import json, os, pynvml
from workers.gpu import PinningError, list_gpus, resolve_visible
pynvml.nvmlInit()
try:
    print(json.dumps({"uuid": resolve_visible(os.environ["CUDA_VISIBLE_DEVICES"], list_gpus(pynvml)).uuid}))
except PinningError as exc:
    print(json.dumps({"error": str(exc)}))
"""


def test_nvml_list_matches_nvidia_smi(gpus):
    rows = smi("index,uuid,pci.bus_id,memory.total")
    assert [(g.index, g.uuid, g.bus_id, g.memory_total // MiB) for g in gpus] == [
        (int(i), uuid, normalize_bus_id(bus), int(total)) for i, uuid, bus, total in rows
    ]


def test_nvml_order_is_bus_order(gpus):
    assert [g.bus_id for g in gpus] == sorted(g.bus_id for g in gpus)


def test_telemetry_memory_agrees_with_nvidia_smi(nvml, gpus):
    snaps = [
        telemetry.snapshot(nvml, g, host="test", running_job=None, draining=False, our_pids=set(), now=time.time())
        for g in gpus
    ]
    for snap, (total, free) in zip(snaps, [(int(t), int(f)) for t, f in smi("memory.total,memory.free")], strict=True):
        assert snap.memory_total // MiB == total
        assert abs(snap.memory_free / MiB - free) <= 256  # another process may allocate between the reads
        assert snap.memory_used + snap.memory_free <= snap.memory_total
        assert snap.memory_usable == snap.memory_total - snap.memory_foreign


def test_a_worker_pinned_by_uuid_sees_exactly_that_gpu(gpus):
    last = gpus[-1]
    seen = in_child(PROBE, last.uuid)
    assert seen["count"] == 1
    assert normalize_bus_id(seen["bus_id"]) == last.bus_id
    check_cuda_matches(last, seen["bus_id"], seen["count"])


def test_an_index_and_cuda_agree_under_pci_bus_order(gpus):
    chosen = resolve_visible(str(len(gpus) - 1), gpus)
    seen = in_child(PROBE, str(len(gpus) - 1))
    check_cuda_matches(chosen, seen["bus_id"], seen["count"])


def test_a_bad_uuid_gets_a_clear_error(gpus):
    answer = in_child(RESOLVE, BAD_UUID)
    assert f"CUDA_VISIBLE_DEVICES={BAD_UUID} names no GPU on this host" in answer["error"]
    assert all(g.uuid in answer["error"] for g in gpus)
    assert "error" in in_child(PROBE, BAD_UUID)  # CUDA itself only says cudaErrorNoDevice


def test_a_cuda_view_of_the_wrong_gpu_is_refused(gpus):
    if len(gpus) < 2:
        pytest.skip("needs two GPUs")
    seen = in_child(PROBE, gpus[0].uuid)
    with pytest.raises(PinningError, match="wrong GPU"):
        check_cuda_matches(gpus[1], seen["bus_id"], seen["count"])
