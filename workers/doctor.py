"""Checks that say in plain words what is wrong with a host, a worker's GPU or the services it needs.

Each check takes its inputs as arguments and returns a Finding, so tests can feed it versions and GPU
lists where no GPU exists. Nothing here starts CUDA or needs Django set up: the worker runs these
checks before Django is set up and before its pool forks (docs/ARCHITECTURE.md: no CUDA in a parent
process).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from workers import gpu
from workers.cuda_probe import cuda_view
from workers.gpu import PinningError

NO_NVML = "no NVML on this host: GPU checks skipped"


@dataclass(frozen=True)
class Finding:
    ok: bool
    check: str
    message: str

    def __str__(self) -> str:
        return f"{'✓' if self.ok else '✗'} {self.check}: {self.message}"


def cuda_version(version: int) -> str:
    """12040 -> '12.4' (CUDA encodes versions as 1000 * major + 10 * minor)."""
    return f"{version // 1000}.{version % 1000 // 10}"


def check_driver_runtime(driver_version: int, runtime_version: int) -> Finding:
    """Fail when the image's CUDA runtime is of a newer major version than the host driver supports."""
    name = "CUDA driver vs runtime"
    if driver_version <= 0:
        return Finding(False, name, "no NVIDIA driver is loaded on this host (the driver reports CUDA version 0)")
    driver, runtime = cuda_version(driver_version), cuda_version(runtime_version)
    major = driver_version // 1000
    if runtime_version // 1000 > major:
        return Finding(
            False,
            name,
            (
                f"The NVIDIA driver supports CUDA {driver} but this image's CUDA runtime is {runtime}: upgrade the "
                f"host driver to one for CUDA {runtime_version // 1000} or later, or build the image with "
                f"CUDA_BASE=nvidia/cuda:{driver}.0-runtime-ubuntu22.04 and CUPY_PACKAGE=cupy-cuda{major}x"
            ),
        )
    # A newer minor of the same major runs: CUDA's minor-version compatibility (measured 13.2 on 13.0).
    return Finding(True, name, f"driver supports CUDA {driver}, image runtime is CUDA {runtime}")


def check_visible_gpus(visible: str | None, gpus: list[gpu.GpuIdentity]) -> Finding:
    """CUDA_VISIBLE_DEVICES must name exactly one GPU of this host."""
    try:
        chosen = gpu.resolve_visible(visible or "", gpus)
    except PinningError as exc:
        return Finding(False, "GPU of this worker", str(exc))
    return Finding(
        True,
        "GPU of this worker",
        f"CUDA_VISIBLE_DEVICES={visible} is GPU {chosen.index} {chosen.name} ({chosen.uuid})",
    )


def check_nvml_cuda_agree(identity: gpu.GpuIdentity, cuda_bus_id: str, cuda_device_count: int = 1) -> Finding:
    """The GPU NVML names and the one CUDA uses must be the same device (compared by PCI bus id)."""
    try:
        gpu.check_cuda_matches(identity, cuda_bus_id, cuda_device_count)
    except PinningError as exc:
        return Finding(False, "NVML and CUDA agree", str(exc))
    return Finding(True, "NVML and CUDA agree", f"CUDA uses {identity.uuid} at PCI {cuda_bus_id}")


def check_cuda_view(identity: gpu.GpuIdentity, seen: dict[str, Any]) -> list[Finding]:
    """The CUDA half of the preflight, from what `workers.cuda_probe` saw in a child process."""
    if "error" in seen:
        return [Finding(False, "CUDA", f"CUDA could not use GPU {identity.uuid}: {seen['error']}")]
    return [
        check_driver_runtime(seen["driver"], seen["runtime"]),
        check_nvml_cuda_agree(identity, seen["bus_id"], seen["count"]),
    ]


def check_redis(url: str) -> Finding:
    """Redis answers PING at `url` (the password is never printed)."""
    import redis

    where = _host_port(url, 6379)
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2).ping()
    except redis.AuthenticationError as exc:
        return Finding(False, "Redis", f"Redis at {where} refused the password ({exc}): check REDIS_PASSWORD")
    except redis.RedisError as exc:
        return Finding(False, "Redis", f"cannot reach Redis at {where}: {exc}")
    return Finding(True, "Redis", f"Redis at {where} answers")


def check_database() -> Finding:
    """Django's default database answers `SELECT 1`."""
    from django.db import connections

    conn = connections["default"]
    where = _database_where(conn.settings_dict)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # each backend raises its own errors; all mean the same here
        return Finding(False, "database", f"cannot reach the database at {where}: {' '.join(str(exc).split())}")
    return Finding(True, "database", f"the database at {where} answers")


def check_gpu_in_compose(uuid: str, compose_path: str | Path) -> Finding:
    """A GPU of this host with no worker service reserving it in the compose file runs no jobs."""
    import yaml

    path = Path(compose_path)
    if not path.exists():
        return Finding(False, "compose", f"no compose file at {path}: generate one with `python manage.py compose`")
    services = (yaml.safe_load(path.read_text()) or {}).get("services") or {}
    for name, service in services.items():
        if uuid in reserved_devices(service):
            return Finding(True, "compose", f"GPU {uuid} is served by service {name} in {path}")
    return Finding(
        False,
        "compose",
        (
            f"GPU {uuid} is on this host but no worker in {path} reserves it: "
            "regenerate the file with `python manage.py compose`"
        ),
    )


def reserved_devices(service: dict) -> list[str]:
    """The device_ids a compose service reserves."""
    devices = (((service.get("deploy") or {}).get("resources") or {}).get("reservations") or {}).get("devices")
    return [str(d) for entry in devices or [] for d in entry.get("device_ids") or []]


def load_nvml() -> Any | None:
    """pynvml, initialised, or None where this host has no NVML (no driver or no library)."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:
        return None
    return pynvml


def worker_preflight(visible: str | None, nvml: Any = None, cuda: dict[str, Any] | None = None) -> list[Finding]:
    """What a GPU worker checks at start: its GPU by NVML, then (given a CUDA probe's result) CUDA's view."""
    nvml = nvml or load_nvml()
    if nvml is None:
        return [Finding(False, "NVML", "NVML is not available: this host has no usable NVIDIA driver")]
    gpus = gpu.list_gpus(nvml)
    findings = [check_visible_gpus(visible, gpus)]
    if findings[0].ok and cuda is not None:
        findings += check_cuda_view(gpu.resolve_visible(visible or "", gpus), cuda)
    return findings


def run_all(
    redis_url: str,
    *,
    visible: str | None = None,
    compose_path: str | Path | None = None,
    versions: tuple[int, int] | None = None,
    nvml: Any = None,
) -> list[Finding]:
    """Every check that applies on this host: services, the driver/runtime pair, GPUs and the compose file."""
    findings = [check_redis(redis_url), check_database()]
    if versions:
        findings.append(check_driver_runtime(*versions))
    nvml = nvml or load_nvml()
    if nvml is None:
        return findings + [Finding(True, "GPUs", NO_NVML)]
    if visible:
        findings += worker_preflight(visible, nvml, _probe_cuda(visible))
    elif not versions:
        findings += _host_cuda_findings()
    if compose_path:
        findings += [check_gpu_in_compose(g.uuid, compose_path) for g in gpu.list_gpus(nvml)]
    return findings


def _probe_cuda(visible: str) -> dict[str, Any]:
    # cuda_view asks a child process: this one stays free of CUDA.
    before = os.environ.get("CUDA_VISIBLE_DEVICES")
    os.environ["CUDA_VISIBLE_DEVICES"] = visible
    try:
        return cuda_view()
    finally:
        if before is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = before


def _host_cuda_findings() -> list[Finding]:
    seen = cuda_view()
    if "error" in seen:
        return [Finding(False, "CUDA", f"CUDA cannot start on this host: {seen['error']}")]
    return [check_driver_runtime(seen["driver"], seen["runtime"])]


def _host_port(url: str, default_port: int) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname or '127.0.0.1'}:{parts.port or default_port}"


def _database_where(settings_dict: dict[str, Any]) -> str:
    if settings_dict["ENGINE"].endswith("sqlite3"):
        return str(settings_dict["NAME"])
    return f"{settings_dict.get('HOST') or '127.0.0.1'}:{settings_dict.get('PORT') or 5432}"
