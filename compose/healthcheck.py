"""Container healthchecks, one per role: `python compose/healthcheck.py web|flower|releaser|worker|docker-proxy [port]`.

Exit 0 when healthy. Runs inside the image (PYTHONPATH=/app); the port argument lets a test aim it at
a server on another port.
"""

from __future__ import annotations

import http.client
import os
import sys


def http_status(port: int, path: str, host: str = "localhost") -> int:
    """The status of GET path on 127.0.0.1:port (redirects not followed), 0 when nothing answers."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        # https, as nginx would say it, so that SECURE_SSL_REDIRECT does not answer every check with 301.
        conn.request("GET", path, headers={"Host": host, "X-Forwarded-Proto": "https"})
        return conn.getresponse().status
    except OSError:
        return 0
    finally:
        conn.close()


def web(port: int = 8000) -> bool:
    hosts = [h.strip().lstrip(".") for h in os.environ.get("ALLOWED_HOSTS", "").split(",") if h.strip()]
    host = next((h for h in hosts if "*" not in h), "localhost")
    return 0 < http_status(port, "/login/", host) < 500


def flower(port: int = 5555) -> bool:
    return http_status(port, "/flower/healthcheck") == 200


def releaser() -> bool:
    """The releaser has no port: healthy while the Redis and database it works on answer."""
    _django()
    from django.conf import settings

    from workers import doctor

    return all(f.ok for f in (doctor.check_redis(settings.REDIS_URL), doctor.check_database()))


def worker() -> bool:
    """The Celery worker of this container's GPU (or CPU) answers a ping through the broker."""
    from workers import gpu

    host = os.environ.get("GPUQ_HOSTNAME", "")
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    if visible:
        import pynvml

        pynvml.nvmlInit()
        uuid = gpu.resolve_visible(visible, gpu.list_gpus(pynvml)).uuid
    else:  # a CPU worker (`python -m workers --cpu`)
        uuid = gpu.cpu_identity(host, 0).uuid
    _django()
    from scheduler.dispatch.celery_app import app

    node = f"{gpu.queue_name(host, uuid)}@{host}"
    return bool(app.control.ping(destination=[node], timeout=5.0))


def docker_proxy(port: int = 2375) -> bool:
    return http_status(port, "/_ping") == 200


def _django() -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scheduler.settings")
    django.setup()


ROLES = {"web": web, "flower": flower, "releaser": releaser, "worker": worker, "docker-proxy": docker_proxy}

if __name__ == "__main__":
    role, *port = sys.argv[1:]
    check = ROLES[role]
    sys.exit(0 if (check(int(port[0])) if port else check()) else 1)
