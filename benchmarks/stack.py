"""Start the system as local processes for a benchmark (workers/launch.py): gunicorn, releaser, one worker per GPU."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import redis
import requests

from scheduler.dispatch.connections import as_text
from workers import launch
from workers.launch import ROOT


class Stack(launch.LocalSystem):
    """Our full path on this host; `workers` is one per GPU, or two CPU workers where there is none."""

    def __init__(self, redis_url: str, database_url: str | None = None, web_workers: int = 4):
        self.redis_url = redis_url
        self.db_url = database_url or f"sqlite:///{tempfile.mkdtemp(prefix='gpuq-bench-')}/db.sqlite3"
        env = {
            **os.environ,
            "DATABASE_URL": self.db_url,
            "REDIS_URL": redis_url,
            "DEBUG": "false",
            "SECURE_SSL_REDIRECT": "false",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
            "SUBMIT_RATE": "100000/min",
            "USER_MAX_WAITING_JOBS": "1000000",
            "COUNT_QUERIES": "true",  # statements and commits per job (scheduler/querycount.py)
        }
        redis.Redis.from_url(redis_url).flushdb()
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
        self.port = launch.free_port()
        workers = launch.gpu_workers() or {f"bench{i}": ["--cpu", "--host", f"bench{i}"] for i in range(2)}
        self.gpus = [name for name, flags in workers.items() if "--gpu" in flags]
        super().__init__(env, workers, web=launch.gunicorn(self.port, web_workers), web_port=self.port, prefix="bench-")
        self.token = self._token()
        self.wait_ready(120)
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Token {self.token}"

    def wait_live(self, n: int, timeout: float = 120) -> None:
        self.wait_for_workers(n, timeout)

    def _token(self) -> str:
        code = (
            "from django.contrib.auth import get_user_model as g; from rest_framework.authtoken.models import Token;"
            "u,_=g().objects.get_or_create(username='bench', defaults={'is_staff': True});"
            "print(Token.objects.get_or_create(user=u)[0].key)"
        )
        return self.manage_shell(code)

    def manage_shell(self, code: str) -> str:
        """Run Python in `manage.py shell` against this stack's database; its last printed line."""
        out = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", code],
            cwd=ROOT,
            env=self.base_env,
            check=True,
            capture_output=True,
            text=True,
        )
        return out.stdout.strip().splitlines()[-1]

    def submit(self, specs: list[dict]) -> list[dict]:
        r = self.http.post(f"{self.url}/api/jobs/batch/", json={"jobs": specs}, timeout=600)
        r.raise_for_status()
        return r.json()["jobs"]

    def job(self, job_id: int) -> dict:
        return self.http.get(f"{self.url}/api/jobs/{job_id}/", timeout=30).json()

    def wait(self, job_id: int, seen: str = "") -> dict:
        """The job once its status differs from `seen`, or (no `seen`) once it is final: the API's long poll."""
        params = {"status": seen, "timeout": 20} if seen else {"timeout": 20}
        return self.http.get(f"{self.url}/api/jobs/{job_id}/wait/", params=params, timeout=30).json()

    def count(self, status: str) -> int:
        return self.http.get(f"{self.url}/api/jobs/", params={"status": status, "limit": 1}, timeout=30).json()["count"]


def versions() -> dict[str, str]:
    import celery
    import django

    info = {
        "python": sys.version.split()[0],
        "django": django.__version__,
        "celery": celery.__version__,
        "redis-server": _run(["redis-server", "--version"]).split("v=")[-1].split()[0]
        if _run(["redis-server", "--version"])
        else "?",
    }
    try:
        import cupy

        info["cupy"] = cupy.__version__
        info["cuda runtime"] = str(cupy.cuda.runtime.runtimeGetVersion())
    except Exception:
        info["cupy"] = "not installed"
    try:
        import pynvml

        pynvml.nvmlInit()
        info["driver"] = as_text(pynvml.nvmlSystemGetDriverVersion())
        info["gpus"] = ", ".join(
            as_text(pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(i)))
            for i in range(pynvml.nvmlDeviceGetCount())
        )
    except Exception:
        info["gpus"] = "none (GPU parts skipped)"
    info["cpus"] = str(os.cpu_count())
    return info


def _run(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout
    except OSError:
        return ""
