"""A real container engine for the tests: DOCKER_HOST where one answers, else Podman's Docker API service.

No image registry is reachable here, so the test image is made locally: a static busybox imported as a
one-layer image. Where neither an engine nor Podman (as root) is available, `start` says why not.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests import support

IMAGE = "localhost/gpuq-busybox:test"
GPU_IMAGE = "localhost/gpuq-gpu:test"  # busybox and the host's glibc: enough for the driver's nvidia-smi
TOOLS = ("sh", "echo", "cat", "sleep", "env", "id", "printf", "true", "false")


@dataclass
class Engine:
    url: str
    image: str
    service: support.Proc | None = None

    def client(self):
        import docker

        return docker.DockerClient(base_url=self.url, timeout=30)

    def stop(self) -> None:
        if self.service:
            self.service.stop()


class Unavailable(Exception):
    pass


def start() -> Engine:
    """An engine with the test image loaded; Unavailable with the reason when none can be had."""
    given = os.environ.get("DOCKER_HOST")
    if given and answers(given):
        engine = Engine(given, IMAGE)
    else:
        engine = _podman_service()
    load_test_image(engine)
    return engine


def answers(url: str) -> bool:
    import docker

    try:
        docker.DockerClient(base_url=url, timeout=5).ping()
        return True
    except Exception:
        return False


def _podman_service() -> Engine:
    podman = shutil.which("podman")
    if not podman or os.geteuid() != 0 or not shutil.which("runc"):
        raise Unavailable("no container engine: set DOCKER_HOST, or install podman and runc as root (make system-deps)")
    workdir = Path(tempfile.mkdtemp(prefix="gpuq-podman-"))
    # Podman's default ulimits are more than this sandbox lets a process set.
    conf = workdir / "containers.conf"
    conf.write_text("[containers]\ndefault_ulimits = []\n")
    url = f"unix://{workdir}/podman.sock"
    env = {**os.environ, "CONTAINERS_CONF": str(conf)}
    service = support.Proc(
        "podman",
        [podman, "--runtime", "runc", "--cgroup-manager=cgroupfs", "system", "service", "--time=0", url],
        env,
    )
    try:
        support.wait_until(lambda: answers(url), 30, "podman's API service to answer")
    except BaseException:
        service.stop()
        raise
    return Engine(url, IMAGE, service)


def load_test_image(engine: Engine) -> None:
    """The static busybox image IMAGE, imported once into the engine."""
    client = engine.client()
    if any(IMAGE in image.tags for image in client.images.list()):
        return
    busybox = shutil.which("busybox") or "/bin/busybox"
    if not Path(busybox).exists():
        raise Unavailable("no static busybox to build the test image from (apt-get install busybox-static)")
    repository, tag = IMAGE.rsplit(":", 1)
    client.api.import_image_from_data(_rootfs_tar(Path(busybox)), repository=repository, tag=tag)
    if not any(IMAGE in image.tags for image in client.images.list()):  # Podman 4 tags an import "latest"
        client.images.get(f"{repository}:latest").tag(repository, tag)


def gpu_image(engine: Engine, tool: str = "nvidia-smi") -> str:
    """The GPU test image: busybox plus the host's C library that `tool` links, and, as NVIDIA's CUDA
    images do, NVIDIA_VISIBLE_DEVICES=all in its environment (which must not widen what a job gets)."""
    client = engine.client()
    if any(GPU_IMAGE in image.tags for image in client.images.list()):
        return GPU_IMAGE
    found = shutil.which(tool)
    if not found:
        raise Unavailable(f"no {tool} on this host to build the GPU test image around")
    libs = _linked(found)
    extra = {f"usr/lib/x86_64-linux-gnu/{Path(lib).name}": Path(lib) for lib in libs}
    for loader in (lib for lib in libs if "ld-linux" in lib):
        extra["lib64/ld-linux-x86-64.so.2"] = Path(loader)  # where every x86-64 binary asks for it
    repository, tag = GPU_IMAGE.rsplit(":", 1)
    data = _rootfs_tar(Path(shutil.which("busybox") or "/bin/busybox"), extra)
    client.api.import_image_from_data(data, repository=repository, tag=tag, changes=["ENV NVIDIA_VISIBLE_DEVICES=all"])
    if not any(GPU_IMAGE in image.tags for image in client.images.list()):  # Podman 4 tags an import "latest"
        client.images.get(f"{repository}:latest").tag(repository, tag)
    return GPU_IMAGE


def _linked(binary: str) -> list[str]:
    """The libraries `binary` loads from the host (ldd's answer), driver libraries left out: CDI mounts those."""
    listing = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    paths = [word for line in listing.splitlines() for word in line.split() if word.startswith("/")]
    return [p for p in paths if "nvidia" not in p and "cuda" not in p]


def _rootfs_tar(busybox: Path, extra: dict[str, Path] | None = None) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, source in (extra or {}).items():
            tar.add(str(source.resolve()), arcname=name)
        if extra:  # the loader looks in /lib/x86_64-linux-gnu: one folder for both names
            lib = tarfile.TarInfo("lib")
            lib.type, lib.linkname = tarfile.SYMTYPE, "usr/lib"
            tar.addfile(lib)
        tar.add(str(busybox.resolve()), arcname="bin/busybox")  # a static file, not a link to the host
        for tool in TOOLS:
            link = tarfile.TarInfo(f"bin/{tool}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
        tmp = tarfile.TarInfo("tmp")
        tmp.type, tmp.mode = tarfile.DIRTYPE, 0o1777
        tar.addfile(tmp)
    return out.getvalue()


def job_containers(engine: Engine) -> list:
    """Every container a worker made for a job, running or not."""
    import docker.errors

    for _ in range(5):
        try:
            return engine.client().containers.list(all=True, filters={"label": "gpuq.queue"})
        except docker.errors.APIError:  # one was removed between the listing and its inspection: list again
            continue
    return engine.client().containers.list(all=True, filters={"label": "gpuq.queue"})


def log_size_cap(engine: Engine, container) -> str:
    """The cap the engine keeps on its own log of `container`: Docker says max-size in HostConfig;
    Podman's compatible API does not echo it, its own API does (as Size, e.g. 10MB)."""
    config = container.attrs["HostConfig"].get("LogConfig") or {}
    if (config.get("Config") or {}).get("max-size"):
        return config["Config"]["max-size"]
    api = engine.client().api
    native = api._result(api._get(f"{api.base_url}/v4.0.0/libpod/containers/{container.id}/json"), True)
    return native["HostConfig"]["LogConfig"].get("Size", "")
