"""On a host with 2 or more GPUs: a multi-GPU job's process sees exactly its GPUs and NCCL sums right.

python -m pytest tests/test_gang_gpu.py -m gpu
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from workers.gang import NCCL_ENV

pytestmark = pytest.mark.gpu
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def two_uuids() -> list[str]:
    pynvml = pytest.importorskip("pynvml")
    pytest.importorskip("cupy")
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        pytest.skip(f"no NVML: {exc}")
    count = pynvml.nvmlDeviceGetCount()
    if count < 2:
        pytest.skip(f"this host has {count} GPU; a multi-GPU job needs 2 or more")
    return [pynvml.nvmlDeviceGetUUID(pynvml.nvmlDeviceGetHandleByIndex(i)) for i in (count - 1, 0)]


def test_it_runs_nccl_all_reduce_on_exactly_the_gpus_it_was_given(two_uuids):
    env = {**os.environ, **NCCL_ENV, "CUDA_VISIBLE_DEVICES": ",".join(two_uuids), "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
    spec = {"kind": "allreduce", "params": {"n": 1 << 22, "rounds": 3, "seed": 7}, "devices": 2, "gpu": True}
    out = subprocess.run(
        [sys.executable, "-m", "workers.gang_child"],
        input=json.dumps(spec),
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    answer = json.loads(out.stdout.strip().splitlines()[-1])
    assert "summary" in answer, (answer, out.stderr[-2000:])
    result = answer["summary"]
    assert (result["devices"], result["via"], result["correct"], result["backend"]) == (2, "NCCL", True, "cupy")
    assert len(set(result["pci_bus_ids"])) == 2 and result["nccl_nvls_enable"] == "0"
