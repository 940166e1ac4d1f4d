"""The queue from Python (a notebook, a script), on the same client and configuration as `submit-job`:

from gpuq import Client
job = Client().submit("matmul", n=4096).wait()
job.status, job.result, job.array()
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from cli import client as http
from cli.client import CliError as Error  # noqa: F401 (gpuq.Error: what every refusal raises)

FINAL = {"succeeded", "failed", "cancelled"}


class Client:
    """The server and token from arguments, GPUQ_URL / GPUQ_TOKEN, or `submit-job login`'s file."""

    def __init__(self, url: str | None = None, token: str | None = None):
        self.http = http.Client.configured(url, token)

    def submit(self, kind: str, priority: int = 0, time_limit: int | None = None, after=(), **params: Any) -> Job:
        spec = {"kind": kind, "params": params, "priority": priority, "after": [int(a) for a in after]}
        if time_limit is not None:
            spec["time_limit"] = time_limit
        return Job(self, self.http.call("POST", "/api/jobs/", spec))

    def job(self, job_id: int) -> Job:
        return Job(self, {"id": job_id}).refresh()

    def jobs(self, status: str = "", kind: str = "", limit: int = 50) -> list[Job]:
        query = {k: v for k, v in (("status", status), ("kind", kind)) if v}
        page = self.http.call("GET", "/api/jobs/", params={**query, "limit": limit})
        return [Job(self, data) for data in page["results"]]


class Job:
    """One job as the server last described it; `refresh()` asks again."""

    def __init__(self, client: Client, data: dict):
        self.client, self.data = client, data

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.kind} {self.status}>"

    def __getattr__(self, name: str) -> Any:
        try:
            return self.data[name]
        except KeyError:
            raise AttributeError(name) from None

    def refresh(self) -> Job:
        self.data = self.client.http.call("GET", f"/api/jobs/{self.data['id']}/")
        return self

    def wait(self, timeout: float | None = None, poll: float = 0.5) -> Job:
        """Until the job ends (TimeoutError after `timeout` seconds); the job, for chaining."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.refresh().status not in FINAL:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {self.id} still {self.status} after {timeout} s")
            time.sleep(poll)
        return self

    def cancel(self) -> Job:
        self.data = self.client.http.call("POST", f"/api/jobs/{self.id}/cancel/")
        return self

    def array(self) -> np.ndarray:
        """The job's result array (the `.npy` the server kept)."""
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"job-{self.id}.npy"
            self.client.http.download(f"/api/jobs/{self.id}/result.npy", path)
            return np.load(path, allow_pickle=False)
