"""Container jobs: an allowlisted image run on this worker's GPU through the Docker Engine API.

The container gets exactly this worker's GPU (by UUID), runs as a non-root user without privileges,
new privileges or capabilities, within memory and pids limits, and without a network unless its
allowlist entry grants one. Its output becomes the job's log, its exit code decides the outcome,
and it is removed afterwards whatever happened; containers a dead attempt left behind are swept.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import docker
import docker.errors
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from docker.types import LogConfig

from gpu_tasks.container import command_words, environment
from scheduler.jobs.joblog import LogWriter, pump
from scheduler.jobs.models import ContainerImage, Job, Status
from workers import container_gpu, gang, identity
from workers.outcome import Outcome
from workers.persist import persist

log = logging.getLogger(__name__)
POLL_SECONDS = 0.25
SWEEP_SECONDS = 30.0
# What the NVIDIA runtime mounts into a job's container: CUDA and nvidia-smi, not video, display or graphics.
DRIVER_CAPABILITIES = "compute,utility"


class ContainerFailed(Exception):
    """The job failed for a reason its owner can act on; `kind` is the job's error kind."""

    def __init__(self, message: str, kind: str = "container", result: dict | None = None):
        super().__init__(message)
        self.kind = kind
        self.result = result


class ContainerTimedOut(ContainerFailed):
    def __init__(self, limit: int):
        super().__init__(f"timed out: over its time limit of {limit} s; the container was killed", "timeout")


def engine() -> docker.DockerClient:
    """The engine at DOCKER_HOST; ContainerFailed when it does not answer."""
    try:
        client = docker.DockerClient(base_url=settings.DOCKER_HOST, timeout=30)
        client.ping()
        return client
    except docker.errors.DockerException as exc:
        message = f"the container engine at {settings.DOCKER_HOST} does not answer: {exc}"
        raise ContainerFailed(message, "engine") from None


def create_options(
    job: Job, entry: ContainerImage, worker: identity.WorkerIdentity, gpu_mode: str = "nvidia"
) -> dict[str, Any]:
    """What `containers.create` is given: the job's image and command, this worker's GPU, our limits.

    `gpu_mode` is how the engine takes a GPU request (`workers.container_gpu`)."""
    params = job.params
    env = environment(params.get("env", ""))
    options: dict[str, Any] = {
        "image": entry.image,
        "command": command_words(params.get("command", "")) or None,
        "name": f"gpuq-job-{job.id}-{job.attempts}",
        "labels": {"gpuq.job": str(job.id), "gpuq.attempt": str(job.attempts), "gpuq.queue": worker.queue},
        "user": _user(entry),
        "privileged": False,
        "security_opt": ["no-new-privileges"],
        "cap_drop": ["ALL"],
        "mem_limit": settings.CONTAINER_MEMORY,
        "memswap_limit": settings.CONTAINER_MEMORY,  # equal: no swap beyond the memory limit
        "pids_limit": settings.CONTAINER_PIDS_LIMIT,
        # The engine refuses more CPUs than the host has: a default sized for a GPU server still runs on a small one.
        "nano_cpus": int(min(settings.CONTAINER_CPUS, os.cpu_count() or 1) * 1e9),
        "read_only": True,
        "tmpfs": {"/tmp": f"rw,nosuid,nodev,size={settings.CONTAINER_TMPFS_SIZE}"},
        # The engine keeps its own copy of the output; without a cap a chatty job fills the host's disk.
        "log_config": LogConfig(type="json-file", config={"max-size": settings.CONTAINER_LOG_SIZE, "max-file": "1"}),
        "network_mode": settings.CONTAINER_NETWORK if entry.allow_network else "none",
        "detach": True,
    }
    if worker.kind == "gpu":  # the job's GPUs: this worker's, or all of a multi-GPU job's
        env |= gang.visible(job, worker) | (gang.NCCL_ENV if job.gpus > 1 else {})
        env["NVIDIA_DRIVER_CAPABILITIES"] = DRIVER_CAPABILITIES
        options["device_requests"] = [
            request for uuid in gang.uuids(job, worker) for request in container_gpu.device_requests(uuid, gpu_mode)
        ]
    else:  # a CPU worker has no GPU to give
        env |= {"CUDA_VISIBLE_DEVICES": "", "NVIDIA_VISIBLE_DEVICES": "void"}
    options["environment"] = env
    return options


def _user(entry: ContainerImage) -> str:
    """CONTAINER_USER, or root where staff allowed it for this image; root otherwise is refused."""
    user = "0:0" if entry.allow_root else settings.CONTAINER_USER
    if user.split(":", 1)[0] in ("0", "root") and not entry.allow_root:
        raise ContainerFailed(f"CONTAINER_USER={user} is root, which staff have not allowed for {entry.image}", "user")
    return user


def run_attempt(job: Job, still_ours: Callable[[], bool], execute: Callable | None = None) -> Outcome:
    """The container runner: run the job's container, stopping it once `still_ours()` turns False.
    `execute` runs another way with the same failures (the command runner's)."""
    started = time.monotonic()
    timed_out = Outcome(Status.FAILED, error=str(ContainerTimedOut(job.time_limit)), error_kind="timeout")
    try:
        return Outcome(Status.SUCCEEDED, result=(execute or run)(job, still_ours))
    except SoftTimeLimitExceeded:  # the container was killed and removed on the way out
        return timed_out
    except ContainerFailed as exc:
        if exc.kind == "engine" and time.monotonic() - started >= job.time_limit:
            return timed_out  # the soft limit interrupted a call to the engine, which reports it as its own error
        return Outcome(Status.FAILED, result=exc.result, error=str(exc), error_kind=exc.kind)
    except Exception as exc:  # the engine's own failures are the job's, not the worker's
        if time.monotonic() - started >= job.time_limit:
            return timed_out  # the soft limit interrupted the engine's client, which wrapped it (seen under load)
        log.exception("container job %s failed", job.id)
        return Outcome(Status.FAILED, error=f"{type(exc).__name__}: {exc}", error_kind="container")


def run(job: Job, still_ours: Callable[[], bool]) -> dict[str, Any]:
    """Run the job's container to its end; its summary, or ContainerFailed saying why not."""
    entry = ContainerImage.objects.filter(image=job.params["image"]).first()
    if entry is None:
        raise ContainerFailed(f"image {job.params['image']!r} was taken off the allowlist after the job was submitted")
    worker = identity.current()
    client = engine()
    container = create(client, entry, create_options(job, entry, worker, gpu_mode(client, worker)), worker)
    started = time.monotonic()
    output = LogPump(container, job.id)
    try:
        start(container)
        output.start()
        code = wait(container, job, still_ours, output)
    finally:
        output.stop()
        remove(container)
    summary = {
        "exit_code": code,
        "image": entry.image,
        "run_time_s": time.monotonic() - started,
        "log_lines": output.kept,
    }
    if code != 0:
        raise ContainerFailed(f"the container exited with code {code}", "exit", result=summary)
    return summary


def create(client: docker.DockerClient, entry: ContainerImage, options: dict[str, Any], worker) -> Any:
    """The job's container, created (not started) after sweeping what dead attempts left behind."""
    sweep(client)
    if entry.allow_network:
        _network(client)
    try:
        return client.containers.create(**options)
    except docker.errors.ImageNotFound:
        raise ContainerFailed(
            f"image {entry.image!r} is not on the container engine of {worker.host}: "
            f"staff pull or load it there (docker pull {entry.image})",
            "image",
        ) from None


def start(container) -> None:
    try:
        container.start()
    except docker.errors.APIError as exc:  # e.g. the command is not in the image
        raise ContainerFailed(f"the engine could not start the container: {exc.explanation or exc}") from None


def gpu_mode(client: docker.DockerClient, worker: identity.WorkerIdentity) -> str:
    if worker.kind != "gpu":
        return "nvidia"  # unused: a CPU worker's container gets no GPU
    try:
        return container_gpu.mode_for(client, settings.CONTAINER_GPU_REQUEST)
    except (container_gpu.UnsupportedEngine, ValueError) as exc:  # ValueError: a mistyped setting
        raise ContainerFailed(f"the container cannot be given its GPU: {exc}", "engine") from None


def wait(container, job: Job, still_ours: Callable[[], bool], output) -> int:
    """Until the container exits (its code); kill it at the time limit or when the job stops being ours.
    `output.flush()` stores the log lines that arrived, every round."""
    deadline = time.monotonic() + job.time_limit
    checked = 0.0
    while True:
        container.reload()
        if container.status in ("exited", "dead", "stopped"):  # its last lines are stored by output.stop()
            return int(container.attrs["State"]["ExitCode"])
        output.flush()
        if time.monotonic() > deadline:
            container.kill()
            raise ContainerTimedOut(job.time_limit)
        if time.monotonic() - checked > 1.0:
            checked = time.monotonic()
            if not still_ours():  # cancelled, or given to another attempt
                container.kill()
                raise ContainerFailed("stopped: the job was cancelled", "cancelled")
        time.sleep(POLL_SECONDS)


def remove(container) -> None:
    try:
        container.remove(force=True)
    except docker.errors.NotFound:
        pass


def sweep(client: docker.DockerClient, mine: str = "") -> int:
    """Remove every job container on this engine that is not the live attempt of a running job: a worker
    that died left it, or its job went to another attempt (never two attempts' containers at once). At a
    worker's start, `mine` (its queue) goes too: whatever that queue ran was its dead predecessor's."""
    removed = 0
    for container in client.containers.list(all=True, filters={"label": "gpuq.job"}):
        labels = container.labels
        job, attempt = int(labels.get("gpuq.job", 0)), int(labels.get("gpuq.attempt", -1))
        live = Job.objects.filter(id=job, status=Status.RUNNING, attempts=attempt).exists()
        if not live or labels.get("gpuq.queue") == mine:
            remove(container)
            removed += 1
            log.warning("removed container %s: its attempt (job %s, attempt %s) is over", container.name, job, attempt)
    return removed


def sweep_leftovers(mine: str = "") -> int:
    """At a worker's start and every SWEEP_SECONDS after: the sweep, where container jobs are in use."""
    try:
        if not ContainerImage.objects.exists():
            return 0
        return sweep(engine(), mine)
    except ContainerFailed as exc:  # no engine here: nothing of ours can be running on it
        log.info("no container sweep: %s", exc)
    except Exception:  # the database or the engine away: the next sweep tries again
        log.exception("container sweep failed")
    return 0


def _network(client: docker.DockerClient) -> None:
    """The networked images' own network; created the first time where the engine lets the worker."""
    name = settings.CONTAINER_NETWORK
    try:
        client.networks.get(name)
    except docker.errors.NotFound:
        try:
            client.networks.create(name, driver="bridge", labels={"gpuq.network": "jobs"})
        except docker.errors.APIError as exc:
            raise ContainerFailed(
                f"the network {name} for networked images is missing and the worker may not create it ({exc}): "
                f"create it once on the host: docker network create {name}",
                "engine",
            ) from None


class LogPump:
    """Follows the container's output on a thread into the job's log (`scheduler/jobs/joblog.py`); the waiting
    loop stores what arrived. The first CONTAINER_LOG_MAX_LINES lines are kept, the rest counted."""

    def __init__(self, container, job_id: int):
        self.container = container
        self.writer = LogWriter(job_id, settings.CONTAINER_LOG_MAX_LINES)
        self._thread: threading.Thread | None = None

    @property
    def kept(self) -> int:
        return self.writer.kept

    def start(self) -> None:
        source = lambda: self.container.logs(stream=True, follow=True, stdout=True, stderr=True)  # noqa: E731
        self._thread = pump(self.writer, "output", source)

    def flush(self) -> None:
        persist(self.writer.flush)  # retried like claim and finish: a database blip must not fail the job

    def stop(self) -> None:
        """After the container exited: wait for the stream's last lines, then store them and the count left out."""
        if self._thread is not None:
            self._thread.join(timeout=5)
        persist(self.writer.close)
