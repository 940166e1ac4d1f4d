"""A CDI spec for this host's NVIDIA GPUs, made from NVML and the driver's files.

With it a container engine gives a container one GPU by name, `nvidia.com/gpu=<UUID>` or
`nvidia.com/gpu=<index>`, without the NVIDIA Container Toolkit: the GPU's `/dev/nvidiaN`, the
control nodes every CUDA process opens, and the driver's user-space libraries and `nvidia-smi`
bind-mounted read-only. Nothing in it reads the container's environment, so an `NVIDIA_*` variable a
user sets cannot widen what the container gets (that is the toolkit's hook's doing, and there is none).

    python -m workers.cdi [--output /etc/cdi/nvidia.json] [--driver-root /usr/local/nvidia]

The spec is JSON (the CDI loaders read .json and .yaml alike). `spec()` is pure: GPUs and file
lists in, spec out, so it is tested on recorded NVML answers; `main()` reads the real host.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KIND = "nvidia.com/gpu"
CDI_VERSION = "0.5.0"  # read by Podman 4.3 (CDI 0.5) and by every later engine
DEFAULT_OUTPUT = "/etc/cdi/nvidia.json"
SPEC_DIRS = ("/etc/cdi", "/var/run/cdi")  # where engines look for specs (their default)
DRIVER_ROOTS = ("/usr/local/nvidia", "/usr")
CONTROL_NODES = ("/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools")
# What CUDA and NVML programs load (the toolkit's "compute" and "utility" sets), not GL or video.
LIBRARIES = (
    "libcuda.so",
    "libcudadebugger.so",
    "libnvidia-ml.so",
    "libnvidia-ptxjitcompiler.so",
    "libnvidia-nvvm.so",
    "libnvidia-gpucomp.so",
    "libnvidia-cfg.so",
    "libnvidia-allocator.so",
    "libnvidia-opencl.so",
)
BINARIES = ("nvidia-smi", "nvidia-debugdump")
# On the default search path of Debian's and Ubuntu's loader, so images need no ldconfig hook.
CONTAINER_LIB_DIR = "/usr/lib/x86_64-linux-gnu"
CONTAINER_BIN_DIR = "/usr/bin"
READ_ONLY = ["ro", "nosuid", "nodev", "bind"]


@dataclass(frozen=True)
class Gpu:
    index: int  # NVML index
    uuid: str
    minor: int  # N of /dev/nvidiaN

    @property
    def node(self) -> str:
        return f"/dev/nvidia{self.minor}"


def device_name(uuid: str) -> str:
    """The name a container asks for: `nvidia.com/gpu=GPU-…`."""
    return f"{KIND}={uuid}"


def spec(gpus: list[Gpu], driver_files: list[str], nodes: list[str]) -> dict[str, Any]:
    """The spec: one device per GPU under its UUID and its index; what all share under containerEdits.

    `driver_files` are paths of the driver's files (libraries and binaries, links included);
    `nodes` are the device nodes that exist (a control node the host lacks is left out).
    """
    devices = []
    for gpu in sorted(gpus, key=lambda g: g.index):
        edits = {"deviceNodes": [{"path": gpu.node}]}
        devices += [{"name": gpu.uuid, "containerEdits": edits}, {"name": str(gpu.index), "containerEdits": edits}]
    common = {
        "deviceNodes": [{"path": node} for node in CONTROL_NODES if node in nodes],
        "mounts": driver_mounts(driver_files),
    }
    return {"cdiVersion": CDI_VERSION, "kind": KIND, "devices": devices, "containerEdits": common}


def driver_mounts(driver_files: list[str]) -> list[dict[str, Any]]:
    """Read-only bind mounts of the driver's CUDA/NVML libraries (every name of each) and tools."""
    mounts: dict[str, dict[str, Any]] = {}
    for path in driver_files:  # in the order given: a name found in two folders, the first one wins
        name = os.path.basename(path)
        if any(name.startswith(lib) for lib in LIBRARIES):
            target = f"{CONTAINER_LIB_DIR}/{name}"
        elif name in BINARIES:
            target = f"{CONTAINER_BIN_DIR}/{name}"
        else:
            continue
        mounts.setdefault(target, {"hostPath": path, "containerPath": target, "options": READ_ONLY})
    return list(mounts.values())


def gpus_from_nvml(nvml: Any) -> list[Gpu]:
    """Every GPU NVML sees, with its device node's minor number."""
    gpus = []
    for index in range(nvml.nvmlDeviceGetCount()):
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        uuid = nvml.nvmlDeviceGetUUID(handle)
        uuid = uuid.decode() if isinstance(uuid, bytes) else str(uuid)
        gpus.append(Gpu(index, uuid, int(nvml.nvmlDeviceGetMinorNumber(handle))))
    return gpus


def driver_files(root: str) -> list[str]:
    """The driver's files under `root` (its lib64/lib and bin folders), links included, first folder first."""
    found = []
    for sub in ("lib64", "lib", "lib/x86_64-linux-gnu", "bin"):
        folder = Path(root, sub)
        if folder.is_dir():
            found += sorted(str(p) for p in folder.iterdir() if p.is_file())
    return found


def host_driver_root() -> str:
    """Where the driver's files are: the first root whose folders hold libnvidia-ml."""
    for root in DRIVER_ROOTS:
        if any(os.path.basename(f).startswith("libnvidia-ml.so") for f in driver_files(root)):
            return root
    raise SystemExit(f"no NVIDIA driver libraries (libnvidia-ml.so*) under {', '.join(DRIVER_ROOTS)}")


def spec_device_names(dirs: tuple[str, ...] = SPEC_DIRS) -> list[str]:
    """Every device the specs in `dirs` name, as `kind=name`: what an engine reading them can give."""
    names = []
    for folder in dirs:
        for path in sorted(Path(folder).glob("*.*")) if Path(folder).is_dir() else []:
            content = _load(path)
            names += [f"{content.get('kind', '')}={d.get('name', '')}" for d in content.get("devices") or []]
    return names


def _load(path: Path) -> dict[str, Any]:
    """A spec file's content; {} for a file that is not a readable spec (nvidia-ctk writes YAML, we JSON)."""
    if path.suffix not in (".json", ".yaml", ".yml"):
        return {}
    try:
        text = path.read_text()
        if path.suffix == ".json":
            content = json.loads(text)
        else:
            import yaml

            content = yaml.safe_load(text)
    except Exception:  # unreadable or broken: engines skip such a file too
        return {}
    return content if isinstance(content, dict) else {}


def write(path: str, content: dict[str, Any]) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(f"{path}.tmp")
    temporary.write_text(json.dumps(content, indent=2) + "\n")
    temporary.replace(path)  # an engine reading the folder never sees half a spec


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m workers.cdi", description=__doc__.splitlines()[0])
    p.add_argument("--output", default=DEFAULT_OUTPUT, help=f"where to write the spec (default {DEFAULT_OUTPUT})")
    p.add_argument("--driver-root", default=None, help="the driver's folder (default: found, /usr/local/nvidia first)")
    args = p.parse_args(argv)
    import pynvml

    pynvml.nvmlInit()
    try:
        gpus = gpus_from_nvml(pynvml)
    finally:
        pynvml.nvmlShutdown()
    files = driver_files(args.driver_root or host_driver_root())
    nodes = [n for n in CONTROL_NODES + tuple(g.node for g in gpus) if os.path.exists(n)]
    missing = [g.node for g in gpus if g.node not in nodes]
    if missing:
        print(f"cdi: device nodes missing: {', '.join(missing)}", file=sys.stderr)
        return 1
    content = spec(gpus, files, nodes)
    write(args.output, content)
    names = ", ".join(device_name(g.uuid) for g in gpus)
    print(f"cdi: wrote {args.output}: {names}; {len(content['containerEdits']['mounts'])} driver files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
