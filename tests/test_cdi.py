"""The CDI spec for a host's GPUs, from recorded NVML answers and a recorded driver folder (workers/cdi.py)."""

from __future__ import annotations

import json
from pathlib import Path

from workers import cdi

FIXTURES = Path(__file__).parent / "fixtures"


def recorded_gpus(name: str = "recorded_h200x2_idle.json") -> list[cdi.Gpu]:
    """The GPUs of a recorded host; its minor numbers are its indices (a VM's GPUs are nvidia0, nvidia1)."""
    devices = json.loads((FIXTURES / "snapshots" / name).read_text())["devices"]
    return [cdi.Gpu(d["index"], d["uuid"], d["index"]) for d in devices]


def driver_files() -> list[str]:
    return json.loads((FIXTURES / "driver_files_h200.json").read_text())["files"]


def recorded_spec() -> dict:
    return cdi.spec(recorded_gpus(), driver_files(), list(cdi.CONTROL_NODES))


def test_it_names_each_gpu_by_uuid_and_by_index_with_only_its_own_device_node():
    spec = recorded_spec()
    gpus = recorded_gpus()
    assert [d["name"] for d in spec["devices"]] == [gpus[0].uuid, "0", gpus[1].uuid, "1"]
    nodes = {d["name"]: d["containerEdits"]["deviceNodes"] for d in spec["devices"]}
    assert nodes[gpus[0].uuid] == nodes["0"] == [{"path": "/dev/nvidia0"}]
    assert nodes[gpus[1].uuid] == [{"path": "/dev/nvidia1"}]
    assert (spec["kind"], spec["cdiVersion"]) == ("nvidia.com/gpu", "0.5.0")


def test_every_device_shares_the_control_nodes_and_the_driver_files_read_only():
    common = recorded_spec()["containerEdits"]
    assert [n["path"] for n in common["deviceNodes"]] == ["/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools"]
    targets = {m["containerPath"]: m["hostPath"] for m in common["mounts"]}
    assert targets["/usr/bin/nvidia-smi"] == "/usr/local/nvidia/bin/nvidia-smi"
    assert targets["/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1"] == "/usr/local/nvidia/lib64/libnvidia-ml.so.1"
    assert targets["/usr/lib/x86_64-linux-gnu/libcuda.so.1"] == "/usr/local/nvidia/lib64/libcuda.so.1"
    assert all(m["options"][0] == "ro" for m in common["mounts"])


def test_it_leaves_out_graphics_libraries_and_names_each_file_once():
    mounts = recorded_spec()["containerEdits"]["mounts"]
    names = [m["containerPath"] for m in mounts]
    assert len(names) == len(set(names))  # lib -> lib64 lists every library twice: the first folder wins
    assert all("/lib64/" in m["hostPath"] or "/bin/" in m["hostPath"] for m in mounts)
    assert not [n for n in names if any(g in n for g in ("GL", "EGL", "vdpau", "optix", "rtcore", "mps"))]


def test_a_control_node_the_host_lacks_is_left_out():
    spec = cdi.spec(recorded_gpus("h100x1.json"), driver_files(), ["/dev/nvidiactl"])
    assert spec["containerEdits"]["deviceNodes"] == [{"path": "/dev/nvidiactl"}]
    assert [d["name"] for d in spec["devices"]][1] == "0"


def test_the_spec_written_is_what_an_engine_reading_the_folder_lists(tmp_path):
    cdi.write(str(tmp_path / "nvidia.json"), recorded_spec())
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "other.yaml").write_text("kind: example.com/fpga\ndevices:\n  - name: f0\n")
    names = cdi.spec_device_names((str(tmp_path), str(tmp_path / "absent")))
    uuid = recorded_gpus()[0].uuid
    assert cdi.device_name(uuid) in names and "nvidia.com/gpu=1" in names and "example.com/fpga=f0" in names
    assert not list(tmp_path.glob("*.tmp"))  # written whole, then renamed into place
