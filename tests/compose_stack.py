"""The compose deployment on a real Docker Engine, for tests/test_compose_up.py.

No registry is reachable here, so every image is built locally and kept in the engine's cache between
runs: a Debian base made by mmdebstrap and imported, the app image from compose/Dockerfile on it (no
CuPy), and stand-ins for redis, postgres and nginx from compose/images/. A stack is one compose project
from a file `manage.py compose --cpu N` writes, with its secrets and .env in a temporary folder.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests import support
from tests.dockerd import Dockerd
from tests.engine import Unavailable

COMPOSE_DIR = support.ROOT / "compose"
BASE = "gpuq-debian:bookworm"
PIP_CA = "gpuq-pip-ca:local"
APP = "gpuq:compose-test"
STAND_INS = {name: f"gpuq-test-{name}:local" for name in ("redis", "postgres", "nginx")}
# Every password has @, : and /, which a URL written by hand would get wrong.
PASSWORD = "p@ss:w/rd-{}"
SECRET_KEY_TAIL = secrets.token_urlsafe(40)


def run(cmd: list[str], env: dict[str, str], timeout: float = 600, **kw) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, **kw)
    if out.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {out.returncode}:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return out


def build_images(engine: Dockerd) -> None:
    """Every image the stack runs, built where missing or changed (the engine's layer cache makes a
    rebuild of unchanged code take seconds)."""
    env = engine.env()
    client = engine.client()
    if not _has(client, BASE):
        _import_base(env)
    if not _has(client, PIP_CA):
        _pip_ca_image(env)
    for name, tag in STAND_INS.items():
        run(
            [
                "docker",
                "build",
                "-q",
                "--build-arg",
                f"DEBIAN_BASE={BASE}",
                "-t",
                tag,
                str(COMPOSE_DIR / "images" / name),
            ],
            env,
        )
    build_app(env)


def build_app(env: dict[str, str], *labels: str) -> None:
    args = ["--build-arg", f"CUDA_BASE={BASE}", "--build-arg", f"PIP_CA_IMAGE={PIP_CA}", "--build-arg", "CUPY_PACKAGE="]
    args += [f"--label={label}" for label in labels]
    run(["docker", "build", "-q", "-f", "compose/Dockerfile", *args, "-t", APP, "."], env, cwd=support.ROOT)


def _has(client, tag: str) -> bool:
    return any(tag in image.tags for image in client.images.list())


def _import_base(env: dict[str, str]) -> None:
    if not shutil.which("mmdebstrap"):
        raise Unavailable("no mmdebstrap to make the Debian base image (make system-deps installs it as root)")
    with tempfile.TemporaryDirectory(prefix="gpuq-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs.tar"
        packages = "--include=python3,python3-venv,ca-certificates"
        run(["mmdebstrap", "--quiet", "--variant=minbase", packages, "bookworm", str(rootfs)], env)
        run(["docker", "import", str(rootfs), BASE], env)


def _pip_ca_image(env: dict[str, str]) -> None:
    """An image holding only the CA bundle this machine's pip trusts, for the builder stage to copy."""
    bundle = Path(os.environ.get("PIP_CERT") or _pip_config("global.cert") or "/etc/ssl/certs/ca-certificates.crt")
    with tempfile.TemporaryDirectory(prefix="gpuq-pip-ca-") as tmp:
        shutil.copy(bundle, Path(tmp) / "ca.crt")
        (Path(tmp) / "Dockerfile").write_text("FROM scratch\nCOPY ca.crt /etc/ssl/certs/ca-certificates.crt\n")
        run(["docker", "build", "-q", "-t", PIP_CA, tmp], env)


def _pip_config(key: str) -> str:
    out = subprocess.run([support.python(), "-m", "pip", "config", "get", key], capture_output=True, text=True)
    return out.stdout.strip().strip("'") if out.returncode == 0 else ""


@dataclass
class Stack:
    """One compose project: `compose(...)` runs docker-compose on it, `container(service)` finds its container."""

    engine: Dockerd
    name: str
    files: list[Path]
    env_file: Path
    url: str = ""
    settings: dict[str, str] = field(default_factory=dict)

    def compose(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        cmd = ["docker-compose", "-p", self.name, "--project-directory", str(COMPOSE_DIR)]
        cmd += [arg for path in self.files for arg in ("-f", str(path))]
        return run([*cmd, "--env-file", str(self.env_file), *args], self.engine.env(), timeout)

    def containers(self, service: str | None = None) -> list:
        labels = [f"com.docker.compose.project={self.name}"]
        labels += [f"com.docker.compose.service={service}"] if service else []
        return self.engine.client().containers.list(all=True, filters={"label": labels})

    def container(self, service: str):
        [found] = self.containers(service)
        found.reload()
        return found

    def health(self) -> dict[str, str]:
        """Each service's state: its health where it has a check, else running / exited(code)."""
        states = {}
        for c in self.containers():
            state = c.attrs["State"]
            service = c.labels["com.docker.compose.service"]
            if state["Status"] == "exited":
                states[service] = f"exited({state['ExitCode']})"
            else:
                states[service] = state.get("Health", {}).get("Status", state["Status"])
        return states

    def wait_healthy(self, timeout: float = 480) -> dict[str, str]:
        def all_healthy():
            states = self.health()
            done = all(s == "healthy" or (name == "migrate" and s == "exited(0)") for name, s in states.items())
            return states if states and done else None

        try:
            return support.wait_until(all_healthy, timeout, f"every service of {self.name} to be healthy", every=1)
        except AssertionError:
            raise AssertionError(f"{self.health()}\n{self.compose('logs', '--tail=30').stdout[-6000:]}") from None

    def up(self, *services: str) -> None:
        self.compose("up", "-d", *services)

    def down(self, *flags: str) -> None:
        self.compose("down", "--remove-orphans", *flags)


def write_project(tmp: Path, stack_name: str, env: dict[str, str], *flags: str) -> tuple[Path, Path]:
    """compose/docker-compose.yml as `manage.py compose` writes it (flags), secrets and .env, under tmp."""
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / "docker-compose.yml"
    subprocess.run(
        [support.python(), "manage.py", "compose", *flags, "--output", str(path)],
        cwd=support.ROOT,
        check=True,
        capture_output=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "scheduler.settings"},
    )
    folder = tmp / "secrets"
    folder.mkdir(exist_ok=True)
    values = {name: PASSWORD.format(name) for name in ("redis_password", "postgres_password", "flower_password")}
    # check --deploy wants 50 characters or more of a key; the same one on every host of a deployment.
    values["secret_key"] = f"{PASSWORD.format('secret_key')}-{SECRET_KEY_TAIL}"
    for name, value in values.items():
        (folder / name).write_text(value + "\n")
        (folder / name).chmod(0o644)  # read by the containers' own users (gpuq, redis, postgres)
    dotenv = tmp / ".env"
    dotenv.write_text("".join(f"{k}={v}\n" for k, v in {"SECRETS_DIR": str(folder), **env}.items()))
    return path, dotenv


def wait_for(check, timeout: float, what: str):
    return support.wait_until(check, timeout, what, every=0.5)


def elapsed(since: float) -> float:
    return time.monotonic() - since
