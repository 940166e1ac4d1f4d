"""The doctor's container-engine checks, through the same Docker SDK the workers use for container jobs.

Three questions: does the engine at DOCKER_HOST answer; can it give a container a GPU (the NVIDIA
runtime, or CDI devices named nvidia.com/gpu on an engine that takes CDI requests); and does a
one-shot container given one GPU, the way a job's container is (`workers.container_gpu`), see
exactly that GPU. Each returns a doctor Finding; the middle one is pure, fed `docker info` output.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.conf import settings

from workers import cdi, container_gpu
from workers.doctor import Finding

GPU_PROBE_IMAGE = "nvidia/cuda:12.6.3-base-ubuntu24.04"


def check_engine(url: str) -> tuple[Finding, Any]:
    """Whether the engine answers; with its client, or None when it does not."""
    import docker

    try:
        client = docker.DockerClient(base_url=url, timeout=15)
        version = client.version()
    except docker.errors.DockerException as exc:
        return Finding(False, "container engine", f"no engine answers at {url}: {exc}. Set DOCKER_HOST"), None
    name = next((c["Name"] for c in version.get("Components", []) if c.get("Name")), "engine")
    return Finding(True, "container engine", f"{name} {version.get('Version', '?')} answers at {url}"), client


def check_gpu_runtime(
    info: dict[str, Any], version: dict[str, Any] | None = None, cdi_names: Iterable[str] = ()
) -> Finding:
    """From `docker info`/`docker version` and the host's CDI spec: a way for device requests to reach a GPU.

    Docker: its NVIDIA runtime, or CDI devices it discovered. Podman: 5.4 or later (its Docker API
    honours CDI requests) with nvidia.com/gpu devices in a CDI spec on this host (`cdi_names`).
    """
    try:
        mode = container_gpu.engine_mode(version or {}, info)
    except container_gpu.UnsupportedEngine as exc:
        return Finding(False, "GPU containers", str(exc))
    if "nvidia" in set(info.get("Runtimes") or {}):
        return Finding(True, "GPU containers", "the NVIDIA container runtime is installed")
    discovered = [d.get("ID", "") for d in info.get("DiscoveredDevices") or [] if d.get("Source") == "cdi"]
    gpus = sorted(n for n in {*discovered, *cdi_names} if n.startswith(container_gpu.CDI_KIND))
    if mode == "cdi" and gpus:
        return Finding(True, "GPU containers", f"CDI GPU devices: {', '.join(gpus)}")
    return Finding(
        False,
        "GPU containers",
        "the engine has no NVIDIA runtime and no CDI nvidia.com/gpu devices: install the NVIDIA Container "
        "Toolkit on the host (nvidia-ctk runtime configure) and restart the engine, or write a CDI spec "
        "(python -m workers.cdi) for an engine that takes CDI requests",
    )


def check_gpu_container(client, uuid: str, image: str = GPU_PROBE_IMAGE, mode: str = "nvidia") -> Finding:
    """Run `nvidia-smi -L` in a container given only GPU `uuid` as a job's is; it must list that GPU alone."""
    import docker

    name = f"one-shot GPU container ({uuid})"
    try:
        container = client.containers.run(
            image,
            ["nvidia-smi", "-L"],
            device_requests=container_gpu.device_requests(uuid, mode),
            environment={"NVIDIA_VISIBLE_DEVICES": uuid},
            network_mode="none",
            security_opt=["no-new-privileges"],
            detach=True,
        )
        # Read the output before removing it: with remove=True, Podman's compatible API can drop the
        # container, and its logs, before the SDK asks for them.
        try:
            container.wait(timeout=60)
            output = container.logs().decode()
        finally:
            container.remove(force=True)
    except docker.errors.ImageNotFound:
        return Finding(False, name, f"image {image} is not on the engine: pull it (docker pull {image})")
    except docker.errors.DockerException as exc:
        return Finding(False, name, f"the container could not run: {exc}")
    return gpus_seen(name, uuid, output)


def gpus_seen(name: str, uuid: str, nvidia_smi_list: str) -> Finding:
    """Judge `nvidia-smi -L` output: exactly one GPU, the one given."""
    seen = [line for line in nvidia_smi_list.splitlines() if line.startswith("GPU ")]
    if len(seen) == 1 and uuid in seen[0]:
        return Finding(True, name, f"the container sees exactly {uuid}")
    return Finding(False, name, f"the container was given {uuid} but sees {len(seen)} GPU(s): {seen}")


def run(url: str, gpu_uuids: list[str], image: str = GPU_PROBE_IMAGE) -> list[Finding]:
    """Every engine check; the GPU ones only where the engine answers and the host has GPUs."""
    reachable, client = check_engine(url)
    if client is None:
        return [reachable]
    findings = [reachable]
    if not gpu_uuids:
        return findings + [Finding(True, "GPU containers", "no GPUs on this host: GPU container checks skipped")]
    version, info = client.version(), client.info()
    findings.append(check_gpu_runtime(info, version, cdi.spec_device_names()))
    if findings[-1].ok:
        mode = container_gpu.mode_for(client, settings.CONTAINER_GPU_REQUEST)
        findings += [check_gpu_container(client, uuid, image, mode) for uuid in gpu_uuids]
    return findings
