"""The doctor's container-engine checks, through the same Docker SDK the workers use for container jobs.

Three questions: does the engine at DOCKER_HOST answer; can it give a container a GPU (the NVIDIA
runtime, or CDI devices named nvidia.com/gpu); and does a one-shot container given one GPU see
exactly that GPU. Each returns a doctor Finding; the middle one is pure, fed `docker info` output.
"""

from __future__ import annotations

from typing import Any

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


def check_gpu_runtime(info: dict[str, Any]) -> Finding:
    """From `docker info`: an NVIDIA runtime, or CDI GPU devices, so that device_requests reach a GPU."""
    runtimes = set(info.get("Runtimes") or {})
    cdi = [d.get("ID", "") for d in info.get("DiscoveredDevices") or [] if d.get("Source") == "cdi"]
    if "nvidia" in runtimes:
        return Finding(True, "GPU containers", "the NVIDIA container runtime is installed")
    if any(device.startswith("nvidia.com/gpu") for device in cdi):
        return Finding(True, "GPU containers", f"CDI GPU devices: {', '.join(sorted(cdi))}")
    return Finding(
        False,
        "GPU containers",
        "the engine has no NVIDIA runtime and no CDI nvidia.com/gpu devices: install the NVIDIA Container "
        "Toolkit on the host (nvidia-ctk runtime configure) and restart the engine",
    )


def check_gpu_container(client, uuid: str, image: str = GPU_PROBE_IMAGE) -> Finding:
    """Run `nvidia-smi -L` in a container given only GPU `uuid`; it must list that GPU and no other."""
    import docker
    from docker.types import DeviceRequest

    name = f"one-shot GPU container ({uuid})"
    try:
        output = client.containers.run(
            image,
            ["nvidia-smi", "-L"],
            device_requests=[DeviceRequest(device_ids=[uuid], capabilities=[["gpu", "utility"]])],
            environment={"NVIDIA_VISIBLE_DEVICES": uuid},
            network_mode="none",
            security_opt=["no-new-privileges"],
            remove=True,
        ).decode()
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
    findings.append(check_gpu_runtime(client.info()))
    if findings[-1].ok:
        findings += [check_gpu_container(client, uuid, image) for uuid in gpu_uuids]
    return findings
