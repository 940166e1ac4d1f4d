"""A job on several GPUs, run by its leader: the worker of the first of its GPUs.

The leader's pool process keeps its own CUDA context on its one GPU, so the kind runs in a child process
started with CUDA_VISIBLE_DEVICES naming exactly the job's GPUs (by UUID, leader first): there CuPy sees
N devices, numbered 0..N-1 in that order, and nothing else. The other GPUs' workers take no job meanwhile
(the router gives them none while the job is held). The child dies with the pool process (a cancel's
SIGKILL, the hard time limit), so no GPU is left computing for a job that ended.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys

from celery.exceptions import SoftTimeLimitExceeded

from scheduler.jobs.models import Job, Status
from workers import identity
from workers.identity import WorkerIdentity
from workers.outcome import Outcome

PR_SET_PDEATHSIG = 1
# NCCL's NVLink SHARP (NVLS) uses NVLink multicast, which the GPU hosts we run on require off: a program
# using it can take the host's GPUs, shared with others, out of service.
NCCL_ENV = {"NCCL_NVLS_ENABLE": "0"}


class GangFailed(Exception):
    def __init__(self, message: str, kind: str = "error"):
        super().__init__(message)
        self.kind = kind


def uuids(job: Job, worker: WorkerIdentity) -> list[str]:
    """The GPUs the job runs on, the leader first: its gang, or this worker's one GPU."""
    return [m["uuid"] for m in job.gang] or [worker.uuid]


def visible(job: Job, worker: WorkerIdentity) -> dict[str, str]:
    """The environment that shows the job exactly its GPUs."""
    names = ",".join(uuids(job, worker))
    return {"CUDA_VISIBLE_DEVICES": names, "NVIDIA_VISIBLE_DEVICES": names}


def run_attempt(job: Job) -> Outcome:
    """The arrays runner's path for a job on several GPUs: its kind in a child that sees all of them."""
    try:
        return Outcome(Status.SUCCEEDED, result=run(job, identity.current()))
    except SoftTimeLimitExceeded:  # the child was killed on the way out
        return Outcome(
            Status.FAILED, error=f"timed out: over its time limit of {job.time_limit} s", error_kind="timeout"
        )
    except GangFailed as exc:
        return Outcome(Status.FAILED, error=str(exc), error_kind=exc.kind)


def run(job: Job, worker: WorkerIdentity) -> dict:
    """Run the job's kind across its GPUs in a child process; its summary, or GangFailed."""
    spec = {"kind": job.kind, "params": job.params, "devices": job.gpus, "gpu": worker.kind == "gpu"}
    env = {**os.environ, **visible(job, worker), **NCCL_ENV, "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
    child = subprocess.Popen(
        [sys.executable, "-m", "workers.gang_child"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
        preexec_fn=_die_with_parent,
    )
    try:
        out, err = child.communicate(json.dumps(spec))
    finally:  # a time limit or a cancel interrupts the wait: the child must not outlive it
        if child.poll() is None:
            child.kill()
            child.wait()
    return _answer(out, err, child.returncode)


def _answer(out: str, err: str, code: int) -> dict:
    try:
        answer = json.loads(out.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        raise GangFailed(f"the job's process exited {code} without a result: {err.strip()[-500:]}") from None
    if "error" in answer:
        raise GangFailed(answer["error"], answer.get("kind", "error"))
    return answer["summary"]


def _die_with_parent() -> None:
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
