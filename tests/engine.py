"""A real container engine for the tests: DOCKER_HOST where one answers, else Podman's Docker API service.

No image registry is reachable here, so the test image is made locally: a static busybox imported as a
one-layer image. Where neither an engine nor Podman (as root) is available, `start` says why not.
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests import support

IMAGE = "localhost/gpuq-busybox:test"
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


def _rootfs_tar(busybox: Path) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        tar.add(busybox, arcname="bin/busybox")
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
    return engine.client().containers.list(all=True, filters={"label": "gpuq.queue"})
