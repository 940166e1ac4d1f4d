"""A real Docker Engine for the compose and docker-proxy tests: Debian's dockerd, started as root.

Its data root is kept between runs (GPUQ_DOCKER_ROOT, default /var/tmp/gpuq-docker), so images built by
one run are the next run's cache. A dockerd already answering on that socket is used as it is and left
running; one this module starts is stopped by its pid at the end of the session.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from tests import engine, support

ROOT = Path(os.environ.get("GPUQ_DOCKER_ROOT", "/var/tmp/gpuq-docker"))
SOCKET = ROOT / "docker.sock"
URL = f"unix://{SOCKET}"


@dataclass
class Dockerd:
    url: str
    socket: Path
    proc: support.Proc | None = None

    def env(self) -> dict[str, str]:
        """For docker and docker-compose: nothing of the tests' own environment, which compose would
        prefer to a project's .env (this process has DATABASE_URL and REDIS_URL of the test services)."""
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(ROOT), "DOCKER_HOST": self.url}

    def client(self):
        import docker

        return docker.DockerClient(base_url=self.url, timeout=120)

    def stop(self) -> None:
        if self.proc:
            self.proc.stop()


def start() -> Dockerd:
    """The engine, started where none answers; engine.Unavailable with the reason where none can be."""
    if engine.answers(URL):
        return Dockerd(URL, SOCKET)
    missing = [tool for tool in ("dockerd", "docker", "docker-compose") if not shutil.which(tool)]
    if missing or os.geteuid() != 0:
        why = f"{', '.join(missing)} not installed" if missing else "dockerd needs root"
        raise engine.Unavailable(f"no Docker engine: {why} (make system-deps installs docker.io as root)")
    for folder in ("data", "exec"):
        (ROOT / folder).mkdir(parents=True, exist_ok=True)
    cmd = ["dockerd", "--data-root", str(ROOT / "data"), "--exec-root", str(ROOT / "exec")]
    cmd += ["-H", URL, "--pidfile", str(ROOT / "dockerd.pid")]
    proc = support.Proc("dockerd", cmd, dict(os.environ))
    try:
        support.wait_until(lambda: engine.answers(URL), 60, "dockerd to answer")
    except AssertionError:
        proc.stop()
        raise engine.Unavailable(f"dockerd did not start: {proc.log()[-2000:]}") from None
    return Dockerd(URL, SOCKET, proc)
