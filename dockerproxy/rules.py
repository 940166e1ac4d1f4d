"""What a worker may ask of the Docker engine: pure functions of the request, no I/O."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode

# Set by the proxy on every container it creates (whatever the request said), and required on every
# container a worker inspects, follows, starts, stops or removes.
LABEL = "gpuq.sandboxed"
VERSION = re.compile(r"^/v[0-9]+(\.[0-9]+)?(?=/)")
ANY = ("GET", "HEAD")
PLAIN = {
    ("GET", "/_ping"),
    ("HEAD", "/_ping"),
    ("GET", "/version"),
    ("GET", "/info"),
    ("GET", "/images/json"),
}
IMAGE_INSPECT = re.compile(r"^/images/(?P<name>.+)/json$")
# Calls on one container, by method: the container must carry LABEL.
OWN_CONTAINER = re.compile(
    r"^/containers/(?P<id>[A-Za-z0-9][A-Za-z0-9_.-]*)(?P<action>/json|/logs|/start|/kill|/stop|/wait|)$"
)
OWN_ACTIONS = {"/json": "GET", "/logs": "GET", "/start": "POST", "/kill": "POST", "/stop": "POST", "/wait": "POST"}
# The jobs' own bridge network (CONTAINER_NETWORK), for images allowlisted with allow_network: created by
# the operator (the proxy refuses /networks), shared by job containers only, never a compose network.
JOB_NETWORK = "gpuq-jobs"
NETWORKS = {"", "none", "bridge", "default", JOB_NETWORK}
NAMESPACE_MODES = {"", "private", "none"}
SECURITY_OPTS = {"no-new-privileges", "no-new-privileges:true", "no-new-privileges=true"}
RUNTIMES = {"", "runc", "nvidia"}
# HostConfig fields that must be absent, empty or false: each one hands the container a piece of the host.
FORBIDDEN = {
    "Privileged": "privileged mode",
    "Binds": "bind mounts",
    "Mounts": "mounts",
    "VolumesFrom": "another container's volumes",
    "VolumeDriver": "a volume driver",
    "CapAdd": "added capabilities",
    "Devices": "host devices",
    "DeviceCgroupRules": "device cgroup rules",
    "PortBindings": "published ports",
    "PublishAllPorts": "published ports",
    "CgroupParent": "a cgroup parent",
    "Sysctls": "sysctls",
    "Links": "links to other containers",
}


class Refused(Exception):
    """A request the proxy does not pass; the message says which part, for the worker's log."""

    def __init__(self, message: str, status: int = 403):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Allowed:
    """A request to relay: maybe with a new body or query, and maybe only for a container of ours."""

    query: str
    body: bytes
    container: str | None = None  # the id or name whose LABEL the proxy checks first


def decide(method: str, path: str, query: str, body: bytes, allow_root: bool = False) -> Allowed:
    """Allowed (what to send the engine), or Refused saying why."""
    path = VERSION.sub("", path)
    if (method, path) in PLAIN or (method in ANY and IMAGE_INSPECT.match(path)):
        return Allowed(query, body)
    if method == "GET" and path == "/containers/json":
        return Allowed(only_ours(query), body)
    if method == "POST" and path == "/containers/create":
        return Allowed(query, checked_create(body, allow_root))
    match = OWN_CONTAINER.match(path)
    if match and OWN_ACTIONS.get(match["action"], "DELETE") == method:
        return Allowed(query, body, container=match["id"])
    raise Refused(f"{method} {path} is not among the calls the docker-proxy passes")


def only_ours(query: str) -> str:
    """A container listing narrowed to the containers the proxy created (filters are ANDed)."""
    params = parse_qs(query)
    try:
        filters = json.loads(params.get("filters", ["{}"])[0] or "{}")
    except json.JSONDecodeError:
        raise Refused("filters is not JSON", 400) from None
    if not isinstance(filters, dict):
        raise Refused("filters is not a JSON object", 400)
    labels = filters.get("label", [])
    labels = list(labels) if isinstance(labels, list) else list(labels.keys()) if isinstance(labels, dict) else []
    filters["label"] = [*labels, f"{LABEL}=1"]
    params["filters"] = [json.dumps(filters)]
    return urlencode(params, doseq=True)


def checked_create(body: bytes, allow_root: bool) -> bytes:
    """The create request with our label set, or Refused naming what it asked for."""
    try:
        spec = json.loads(body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise Refused("the create request's body is not JSON", 400) from None
    if not isinstance(spec, dict):
        raise Refused("the create request's body is not a JSON object", 400)
    host = spec.get("HostConfig") or {}
    if not isinstance(host, dict):
        raise Refused("HostConfig is not a JSON object", 400)
    for field, what in FORBIDDEN.items():
        if host.get(field):
            raise Refused(f"containers with {what} ({field}) are not allowed")
    if spec.get("Volumes"):
        raise Refused("containers with volumes (Volumes) are not allowed")
    check_namespaces(spec, host)
    check_security(host)
    check_user(str(spec.get("User") or ""), allow_root)
    spec["Labels"] = {**(spec.get("Labels") or {}), LABEL: "1"}
    return json.dumps(spec).encode()


def check_namespaces(spec: dict, host: dict) -> None:
    """No host namespace and no other container's: either reaches what the container must not see."""
    if str(host.get("NetworkMode") or "") not in NETWORKS:
        raise Refused(f"network mode {host['NetworkMode']!r} is not allowed (none, bridge or {JOB_NETWORK} only)")
    endpoints = (spec.get("NetworkingConfig") or {}).get("EndpointsConfig") or {}
    if set(endpoints) - NETWORKS:
        raise Refused(
            f"networks {sorted(set(endpoints) - NETWORKS)} are not allowed (none, bridge or {JOB_NETWORK} only)"
        )
    for field in ("PidMode", "IpcMode", "UTSMode", "UsernsMode", "CgroupnsMode"):
        if str(host.get(field) or "") not in NAMESPACE_MODES:
            raise Refused(f"{field} {host[field]!r} is not allowed: no host or other container's namespaces")


def check_security(host: dict) -> None:
    for option in host.get("SecurityOpt") or []:
        if option not in SECURITY_OPTS:
            raise Refused(f"security option {option!r} is not allowed (only no-new-privileges)")
    if str(host.get("Runtime") or "") not in RUNTIMES:
        raise Refused(f"runtime {host['Runtime']!r} is not allowed")


def check_user(user: str, allow_root: bool) -> None:
    """A numeric uid (and gid) other than 0: a name or the image's default may well be root."""
    if allow_root:
        return
    parts = user.split(":")
    if not user or len(parts) > 2 or not all(part.isdigit() for part in parts):
        raise Refused(f"user {user!r} is not allowed: give a numeric uid:gid other than 0")
    if any(int(part) == 0 for part in parts):
        raise Refused(f"user {user!r} is not allowed: root (uid or gid 0)")


def owned(inspect: dict) -> bool:
    """Whether the engine's description of a container says the proxy created it."""
    labels = (inspect.get("Config") or {}).get("Labels") or {}
    return labels.get(LABEL) == "1"
