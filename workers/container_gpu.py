"""How a container is given one GPU through the Docker API: the request shape the engine honours.

- `nvidia`: a device request for the GPU's UUID with the `gpu` capability. Docker hands it to the
  NVIDIA Container Toolkit; without the toolkit it fails, and Podman ignores it (the container starts
  without a GPU).
- `cdi`: a device request of driver `cdi` for `nvidia.com/gpu=<UUID>`, a device of the host's CDI spec
  (`python -m workers.cdi` writes one). Podman's Docker API honours it from 5.4 on; Docker with CDI
  enabled (25 and later) too.

CONTAINER_GPU_REQUEST picks one; `auto` (the default) asks the engine. Measured on Podman 4.3 and
5.4 (issue 17): 4.3 ignores every device request and refuses CDI names in HostConfig.Devices
("stat nvidia.com/gpu=…: no such file or directory"); 5.4 resolves a `cdi` request into the
spec's device nodes and ignores an `nvidia` one.
"""

from __future__ import annotations

from typing import Any

from docker.types import DeviceRequest

MODES = ("auto", "nvidia", "cdi")
CDI_KIND = "nvidia.com/gpu"
PODMAN_CDI_SINCE = (5, 4)


class UnsupportedEngine(Exception):
    """The engine has no way to give a container a GPU through its Docker API; the message says why."""


def device_requests(uuid: str, mode: str) -> list[DeviceRequest]:
    """The device requests that give a container exactly GPU `uuid`, for mode `nvidia` or `cdi`."""
    if mode == "cdi":
        return [DeviceRequest(driver="cdi", device_ids=[f"{CDI_KIND}={uuid}"])]
    if mode == "nvidia":
        return [DeviceRequest(device_ids=[uuid], capabilities=[["gpu"]])]
    raise ValueError(f"CONTAINER_GPU_REQUEST={mode!r} is not one of {', '.join(MODES)}")


def engine_mode(version: dict[str, Any], info: dict[str, Any]) -> str:
    """`nvidia` or `cdi` for the engine that answered `version` and `info`; UnsupportedEngine if neither."""
    podman = podman_version(version)
    if podman is not None:
        if podman >= PODMAN_CDI_SINCE:
            return "cdi"
        shown = ".".join(map(str, podman))
        raise UnsupportedEngine(
            f"Podman {shown} ignores GPU device requests through its Docker API; Podman 5.4 or later honours "
            "CDI requests (with a CDI spec on the host: python -m workers.cdi)"
        )
    if "nvidia" in (info.get("Runtimes") or {}):
        return "nvidia"
    discovered = [d.get("ID", "") for d in info.get("DiscoveredDevices") or [] if d.get("Source") == "cdi"]
    return "cdi" if any(d.startswith(CDI_KIND) for d in discovered) else "nvidia"


def podman_version(version: dict[str, Any]) -> tuple[int, ...] | None:
    """Podman's version from `docker version` output (its component 'Podman Engine'); None for Docker."""
    for component in version.get("Components") or []:
        if component.get("Name") == "Podman Engine":
            return tuple(int(part) for part in _numeric(component.get("Version", "0")).split(".")[:2])
    return None


def _numeric(text: str) -> str:
    return "".join(ch for ch in text.split("-")[0].split("+")[0] if ch.isdigit() or ch == ".") or "0"


def mode_for(client, setting: str) -> str:
    """The mode to use with this engine: the setting, or for `auto` the engine's answer."""
    if setting != "auto":
        device_requests("GPU-check", setting)  # a mistyped setting fails here, with the choices
        return setting
    return engine_mode(client.version(), client.info())
