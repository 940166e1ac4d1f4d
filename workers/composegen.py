"""The docker compose file of a GPU host, built as plain data from the list of its GPUs.

`build()` is pure (GPU slots and options in, a dict out); `dump()` writes it as YAML with the shared
parts as named anchors (`x-gpu-worker: &gpu_worker`). The command `python manage.py compose` finds the
GPUs and writes the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from scheduler.settings import ENVIRONMENT_VARIABLES
from workers import gpu

IMAGE = "${GPUQ_IMAGE:-gpuq:latest}"
# The password is not in these URLs: settings.py adds it, URL-quoted, from REDIS_PASSWORD_FILE and
# DATABASE_PASSWORD_FILE (a password with @, : or / would break a URL written here).
REDIS_URL = "redis://redis:6379/0"
DATABASE_URL = "postgres://gpuq@postgres:5432/gpuq"
# Compose secrets: files under SECRETS_DIR (default compose/secrets/), mounted at /run/secrets/<name>,
# so that no password is in any container's environment, command line or `docker inspect`.
SECRETS = ["secret_key", "redis_password", "postgres_password", "flower_password"]
APP_SECRETS = ["secret_key", "redis_password", "postgres_password"]
SECRET_FILES = {
    "SECRET_KEY_FILE": "/run/secrets/secret_key",
    "REDIS_PASSWORD_FILE": "/run/secrets/redis_password",
    "DATABASE_PASSWORD_FILE": "/run/secrets/postgres_password",
}
# Passed through from .env; an empty value means the default. The others that settings.py reads are set
# below (URLs, secret files, paths, the host name); scheduler/settings.py says which is which (Var.compose).
PASSTHROUGH = [v.name for v in ENVIRONMENT_VARIABLES.values() if v.compose == "pass"]
HARDENED = {"security_opt": ["no-new-privileges:true"], "cap_drop": ["ALL"]}
LOGGING = {"driver": "json-file", "options": {"max-size": "10m", "max-file": "5"}}
# Workers write result arrays (.npy) here and the web app serves them: both mount the one volume.
RESULTS_DIR = "/app/var/results"
RESULTS_VOLUME = f"results:{RESULTS_DIR}"
DOCKER_PROXY_URL = "tcp://docker-proxy:2375"
# Official images by default; IMAGE variables let a host without a registry use its own builds of them.
REDIS_IMAGE = "${REDIS_IMAGE:-redis:7-alpine}"
POSTGRES_IMAGE = "${POSTGRES_IMAGE:-postgres:16-alpine}"
NGINX_IMAGE = "${NGINX_IMAGE:-nginx:1.27-alpine}"


@dataclass(frozen=True)
class GpuSlot:
    """One worker's GPU: what Docker reserves, and what CUDA_VISIBLE_DEVICES says inside the container."""

    label: str
    device_id: str
    visible: str

    @property
    def by_uuid(self) -> bool:
        return not self.device_id.isdigit()

    @property
    def is_cpu(self) -> bool:
        return self.device_id == ""


def cpu_slots(n: int) -> list[GpuSlot]:
    """N CPU workers (NumPy, no GPU reserved): the stack on a machine without a GPU."""
    return [GpuSlot(f"cpu{i}", "", "") for i in range(n)]


def slots_for(values: list[str], known: list[gpu.GpuIdentity] | None) -> list[GpuSlot]:
    """GPU slots from --gpus values (indexes or UUIDs); `known` is what NVML lists, None without NVML.

    With NVML every value becomes a UUID. Without it a UUID stays a UUID, and an index is reserved by
    index with CUDA_VISIBLE_DEVICES=0, the only GPU inside that container.
    """
    if len(set(values)) != len(values):
        raise gpu.PinningError(f"--gpus names a GPU twice: {','.join(values)}")
    slots = []
    for position, value in enumerate(values):
        if known is not None:
            found = gpu.resolve_visible(value, known)
            slots.append(GpuSlot(f"gpu{found.index}", found.uuid, found.uuid))
        elif value.isdigit():
            slots.append(GpuSlot(f"gpu{value}", value, "0"))
        else:
            slots.append(GpuSlot(f"gpu{position}", value, value))
    if len({s.device_id for s in slots}) != len(slots):
        raise gpu.PinningError(f"--gpus names the same GPU twice: {','.join(values)}")
    return slots


def build(slots: list[GpuSlot], *, host: str, worker_only: bool = False) -> dict[str, Any]:
    """The compose document: the whole stack, or (worker_only) the workers of a second GPU host."""
    env = app_env(host, worker_only)
    app = {
        "image": IMAGE,
        # Build arguments (a Debian base and no CuPy for CPU workers, ...) go on the command line:
        # `docker compose build --build-arg CUDA_BASE=... --build-arg CUPY_PACKAGE=`.
        "build": {"context": "..", "dockerfile": "compose/Dockerfile"},
        "init": True,
        "restart": "unless-stopped",
        "logging": LOGGING,
        **HARDENED,
    }
    worker = {
        "<<": app,
        "command": ["python", "-m", "workers"],
        "stop_grace_period": "60s",
        "secrets": APP_SECRETS,
        "volumes": [RESULTS_VOLUME],
        "networks": ["default", "engine"],
        "healthcheck": _health("worker", start="120s"),
    }
    worker["depends_on"] = (
        _after(migrate="service_completed_successfully", redis="service_healthy", **{"docker-proxy": "service_started"})
        if not worker_only
        else _after(**{"docker-proxy": "service_started"})
    )
    doc: dict[str, Any] = {"x-app-env": env, "x-app": app, "x-gpu-worker": worker, "services": {}}
    if not worker_only:
        doc["services"] = main_services(app, env)
    doc["services"]["docker-proxy"] = docker_proxy_service(app)
    for slot in slots:
        doc["services"][f"worker-{slot.label}"] = gpu_worker(worker, env, slot, host)
    # Only the workers and the proxy share this network; it has no way out.
    doc["networks"] = {"engine": {"internal": True}}
    names = APP_SECRETS if worker_only else SECRETS
    doc["secrets"] = {name: {"file": f"${{SECRETS_DIR:-./secrets}}/{name}"} for name in names}
    doc["volumes"] = (
        {"results": {}} if worker_only else {"redis-data": {}, "postgres-data": {}, "static": {}, "results": {}}
    )
    return doc


def app_env(host: str, worker_only: bool) -> dict[str, str]:
    """The environment every Django/Celery process gets; a second host must name the main host's services."""
    if worker_only:
        urls = {
            "REDIS_URL": "${REDIS_URL:?set REDIS_URL in .env to the main host's Redis (no password in it)}",
            "DATABASE_URL": "${DATABASE_URL:?set DATABASE_URL in .env to the main host's database (no password in it)}",
        }
    else:
        urls = {
            "REDIS_URL": REDIS_URL,
            "DATABASE_URL": DATABASE_URL,
            "ALLOWED_HOSTS": "${ALLOWED_HOSTS:?set ALLOWED_HOSTS in .env to the names users reach nginx by}",
        }
    return {
        **urls,
        **SECRET_FILES,
        "GPUQ_HOSTNAME": f"${{GPUQ_HOSTNAME:-{host}}}",
        "STATIC_ROOT": "/app/staticfiles",
        "RESULTS_DIR": RESULTS_DIR,
        **{name: f"${{{name}:-}}" for name in PASSTHROUGH},
    }


def gpu_worker(worker: dict, env: dict, slot: GpuSlot, host: str) -> dict[str, Any]:
    """One worker service that reserves exactly one GPU and sees it as its CUDA_VISIBLE_DEVICES."""
    if slot.is_cpu:
        return cpu_worker(worker, env, slot, host)
    device = {"driver": "nvidia", "device_ids": [slot.device_id], "capabilities": ["gpu"]}
    return {
        "<<": worker,
        "environment": {"<<": env, "CUDA_VISIBLE_DEVICES": slot.visible, "DOCKER_HOST": DOCKER_PROXY_URL},
        "deploy": {"resources": {"reservations": {"devices": [device]}}},
    }


def cpu_worker(worker: dict, env: dict, slot: GpuSlot, host: str) -> dict[str, Any]:
    """A worker without a GPU: a host name of its own, since a host's CPU worker has one queue."""
    return {
        "<<": worker,
        "command": ["python", "-m", "workers", "--cpu"],
        "environment": {
            "<<": env,
            "GPUQ_HOSTNAME": f"${{GPUQ_HOSTNAME:-{host}}}-{slot.label}",
            "DOCKER_HOST": DOCKER_PROXY_URL,
        },
    }


def main_services(app: dict, env: dict) -> dict[str, Any]:
    """Everything but the workers: Redis, PostgreSQL, the migrate step, web, releaser, Flower, nginx."""
    return {
        "redis": redis_service(),
        "postgres": postgres_service(),
        "migrate": {
            "<<": app,
            "restart": "no",
            "environment": env,
            "secrets": APP_SECRETS,
            "command": ["sh", "-c", "python manage.py migrate --noinput && python manage.py collectstatic --noinput"],
            "volumes": ["static:/app/staticfiles"],
            "depends_on": _after(postgres="service_healthy"),
        },
        "web": {
            "<<": app,
            "environment": env,
            "secrets": APP_SECRETS,
            "command": [
                "gunicorn",
                "scheduler.wsgi:application",
                "--bind",
                "0.0.0.0:8000",
                "--workers",
                "${WEB_CONCURRENCY:-3}",
                "--threads",  # threads: a long poll (/api/jobs/<id>/wait/) holds one, not a whole worker
                "${WEB_THREADS:-8}",
                "--timeout",
                "60",
                "--forwarded-allow-ips=*",
            ],
            "volumes": [RESULTS_VOLUME],
            "healthcheck": _health("web"),
            "depends_on": _after(migrate="service_completed_successfully", redis="service_healthy"),
        },
        "releaser": {
            "<<": app,
            "environment": env,
            "secrets": APP_SECRETS,
            "command": ["python", "manage.py", "releaser"],
            "healthcheck": _health("releaser"),
            "depends_on": _after(migrate="service_completed_successfully", redis="service_healthy"),
        },
        "flower": flower_service(app, env),
        "nginx": nginx_service(),
    }


def docker_proxy_service(app: dict) -> dict[str, Any]:
    """The Docker API for container jobs, filtered by our own proxy (dockerproxy/): the workers never get
    the raw socket, since whoever can talk to it is root on the host. It runs in the app image, as root
    without capabilities (the socket is root's), and has no settings or secrets of the app."""
    return {
        "<<": app,
        "command": ["python", "-m", "dockerproxy"],
        "user": "0:0",
        "read_only": True,
        "tmpfs": ["/tmp"],
        "environment": {"DOCKER_PROXY_ALLOW_ROOT": "${DOCKER_PROXY_ALLOW_ROOT:-false}", "LOG_LEVEL": "${LOG_LEVEL:-}"},
        "volumes": ["${DOCKER_SOCKET:-/var/run/docker.sock}:/var/run/docker.sock:ro"],
        "networks": ["engine"],
        "healthcheck": _health("docker-proxy", start="30s"),
    }


def redis_service() -> dict[str, Any]:
    return {
        "image": REDIS_IMAGE,
        "restart": "unless-stopped",
        "logging": LOGGING,
        **HARDENED,
        # The image's entrypoint drops from root to the redis user.
        "cap_add": ["CHOWN", "SETGID", "SETUID"],
        "secrets": ["redis_password"],
        # The password goes in through a config file made at start, never on the command line ($$ is a $
        # to the shell, not to compose).
        "entrypoint": ["sh", "-c", REDIS_START, "redis-start"],
        "command": ["--appendonly", "yes", "--appendfsync", "everysec"],
        "volumes": ["redis-data:/data"],
        # redis-cli reads REDISCLI_AUTH: the password is not on its command line either.
        "healthcheck": _check(
            ["CMD-SHELL", 'REDISCLI_AUTH="$$(cat /run/secrets/redis_password)" redis-cli ping | grep -q PONG']
        ),
    }


# Root's file, readable by the redis group: root (without DAC_OVERRIDE or FOWNER) can rewrite its own
# file when the container restarts, which it could not do to one it had given to redis.
REDIS_START = (
    "conf=/tmp/redis-password.conf && (umask 027 && printf 'requirepass \"%s\"\\n' "
    '"$$(sed \'s/[\\\\"]/\\\\&/g\' /run/secrets/redis_password)" > $$conf) && chgrp redis $$conf '
    '&& exec docker-entrypoint.sh redis-server $$conf "$$@"'
)


def postgres_service() -> dict[str, Any]:
    return {
        "image": POSTGRES_IMAGE,
        "restart": "unless-stopped",
        "logging": LOGGING,
        **HARDENED,
        # The entrypoint fixes the data directory's owner and mode as root, then becomes postgres.
        "cap_add": ["CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID"],
        "environment": {
            "POSTGRES_DB": "gpuq",
            "POSTGRES_USER": "gpuq",
            "POSTGRES_PASSWORD_FILE": "/run/secrets/postgres_password",
        },
        "secrets": ["postgres_password"],
        "volumes": ["postgres-data:/var/lib/postgresql/data"],
        "healthcheck": _check(["CMD-SHELL", "pg_isready -U gpuq -d gpuq"]),
    }


def flower_service(app: dict, env: dict) -> dict[str, Any]:
    # compose/flowerconfig.py reads the password from its secret file: it is in no environment or command line.
    return {
        "<<": app,
        "environment": {
            "<<": env,
            "FLOWER_USER": "${FLOWER_USER:?set FLOWER_USER in .env}",
            "FLOWER_PASSWORD_FILE": "/run/secrets/flower_password",
        },
        "secrets": [*APP_SECRETS, "flower_password"],
        "command": [
            "celery",
            "-A",
            "scheduler.dispatch.celery_app",
            "flower",
            "--conf=compose/flowerconfig.py",
            "--url_prefix=flower",
            "--port=5555",
        ],
        "healthcheck": _health("flower"),
        "depends_on": _after(redis="service_healthy"),
    }


def nginx_service() -> dict[str, Any]:
    return {
        "image": NGINX_IMAGE,
        "restart": "unless-stopped",
        "logging": LOGGING,
        **HARDENED,
        "cap_add": ["CHOWN", "SETGID", "SETUID"],  # master as root, workers as the nginx user
        "ports": ["${HTTP_PORT:-80}:8080", "${HTTPS_PORT:-443}:8443"],
        "environment": {
            "NGINX_ENVSUBST_FILTER": "^GPUQ_",
            "GPUQ_LISTEN": "8080",
            "GPUQ_WEB": "web:8000",
            "GPUQ_FLOWER": "flower:5555",
            "GPUQ_STATIC_ROOT": "/srv/static",
            "GPUQ_MAX_BODY": "${NGINX_MAX_BODY:-8m}",
            "GPUQ_MAX_BUNDLE": "${NGINX_MAX_BUNDLE:-100m}",
            "GPUQ_SUBMIT_RATE": "${NGINX_SUBMIT_RATE:-10r/s}",
            "GPUQ_SUBMIT_BURST": "${NGINX_SUBMIT_BURST:-20}",
            "GPUQ_TLS": "/etc/nginx/gpuq-tls/${NGINX_TLS:-off}.conf",
            "GPUQ_BEHIND_PROXY": "${BEHIND_TLS_PROXY:-false}",
        },
        "volumes": [
            "../nginx/templates:/etc/nginx/templates:ro",
            "../nginx/tls:/etc/nginx/gpuq-tls:ro",
            # /dev/null where TLS is off: the paths are only read with NGINX_TLS=on.
            "${TLS_CERT:-/dev/null}:/etc/nginx/tls/cert.pem:ro",
            "${TLS_KEY:-/dev/null}:/etc/nginx/tls/key.pem:ro",
            "static:/srv/static:ro",
        ],
        "healthcheck": _check(["CMD-SHELL", "wget -q -O /dev/null http://127.0.0.1:8080/nginx-health || exit 1"]),
        "depends_on": {"web": {"condition": "service_healthy"}, "flower": {"condition": "service_started"}},
    }


def dump(doc: dict[str, Any], header: str = "") -> str:
    """YAML text; the x- parts are written once as anchors and merged (`<<: *gpu_worker`) where used."""
    names = {id(doc[key]): key[2:].replace("-", "_") for key in doc if key.startswith("x-")}
    body = yaml.dump(doc, Dumper=_dumper(names), sort_keys=False, width=120)
    return header + body


def _dumper(names: dict[int, str]) -> type[yaml.SafeDumper]:
    class Dumper(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return id(data) not in names

        def generate_anchor(self, node: Any) -> str:
            for key, name in names.items():
                if self.represented_objects.get(key) is node:
                    return name
            return super().generate_anchor(node)

    Dumper.add_representer(dict, _represent_dict)
    Dumper.add_representer(list, _represent_list)
    return Dumper


def _represent_dict(dumper: yaml.SafeDumper, data: dict) -> yaml.MappingNode:
    node = dumper.represent_mapping("tag:yaml.org,2002:map", data)
    for key, _ in node.value:
        if key.value == "<<":  # a merge key, written plain: a quoted '<<' would be an ordinary key
            key.tag = "tag:yaml.org,2002:merge"
    return node


def _represent_list(dumper: yaml.SafeDumper, data: list) -> yaml.SequenceNode:
    flat = all(isinstance(item, str) for item in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flat)


def header(slots: list[GpuSlot], command: str, worker_only: bool) -> str:
    """The comment at the top of a generated file: how it was made and how each GPU is pinned."""
    lines = [
        f"# Generated by `{command}`.",
        "# Edit .env; regenerate rather than edit this file by hand.",
        "# "
        + (
            "Workers only, for a second GPU host: REDIS_URL and DATABASE_URL point at the main host."
            if worker_only
            else "The whole stack; nginx is the only published port."
        ),
        "# Secrets and settings come from .env next to this file (see .env.example).",
    ]
    for slot in slots:
        if not slot.by_uuid:
            lines.append(
                f"# worker-{slot.label}: reserved by index {slot.device_id} (no NVML to read its UUID); "
                "inside its container it is the only GPU, so CUDA_VISIBLE_DEVICES=0."
            )
    return "\n".join(lines) + "\n"


def _health(role: str, start: str = "60s") -> dict[str, Any]:
    return _check(["CMD", "python", "compose/healthcheck.py", role], start=start)


def _check(test: list[str], start: str = "30s") -> dict[str, Any]:
    # HEALTHCHECK_INTERVAL: the engine runs the first check one interval after the start, so a
    # dependent service waits that long at least (the tests use 5s).
    interval, timeout = "${HEALTHCHECK_INTERVAL:-30s}", "${HEALTHCHECK_TIMEOUT:-15s}"
    return {"test": test, "interval": interval, "timeout": timeout, "retries": 3, "start_period": start}


def _after(**conditions: str) -> dict[str, dict[str, str]]:
    return {name: {"condition": condition} for name, condition in conditions.items()}
