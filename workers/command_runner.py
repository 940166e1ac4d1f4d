"""Running a `run` job on this worker: its working dir unpacked, its mounts checked again, the command run
by the job's runner (a local process or a container), its log stored live, its outputs kept, and a failure
explained in terms its owner can act on (exit code, the last lines of stderr, out of memory named)."""

from __future__ import annotations

import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from gpu_tasks.command import mount_names
from gpu_tasks.container import environment
from scheduler.jobs import bundles, commands, outputs
from scheduler.jobs.errors import SubmissionError
from scheduler.jobs.joblog import LogWriter
from scheduler.jobs.models import Job
from workers import command_container, containers, gang, identity, local_process
from workers.containers import ContainerFailed
from workers.outcome import Outcome
from workers.persist import persist

GPU_OOM_MARKERS = ("CUDA out of memory", "OutOfMemoryError", "cudaErrorMemoryAllocation", "CUDA_ERROR_OUT_OF_MEMORY")
STDERR_SHOWN = 10


class CommandFailed(ContainerFailed):
    """A `run` job that ended badly; the message is for its owner."""


def run_attempt(job: Job, still_ours: Callable[[], bool]) -> Outcome:
    """The command runner (`gpu_tasks/command.py`): its outcome, failures described as for containers."""
    return containers.run_attempt(job, still_ours, execute=run)


def run(job: Job, still_ours: Callable[[], bool]) -> dict[str, Any]:
    """Run the job to its end; its summary, or CommandFailed (with the summary as its result) saying why not."""
    if job.runner != "container" and settings.MULTI_USER:
        raise CommandFailed(commands.LOCAL_REFUSED, "refused")
    base = Path(settings.JOBS_DIR) / f"{job.id}-{job.attempts}"
    writer = LogWriter(job.id)
    started = time.monotonic()
    try:
        code, oom_killed, failure, staging = _attempt(job, base, writer, still_ours)
        summary = {"exit_code": code, "runner": job.runner, "run_time_s": round(time.monotonic() - started, 3)}
        if job.runner == "container":
            summary["image"] = job.params["image"]
        try:
            summary["outputs"] = outputs.keep(job, staging)
        except outputs.OutputsRefused as exc:
            summary["outputs"] = {"kept": False, "reason": str(exc)}
            failure = failure or CommandFailed(str(exc), "outputs")
    finally:
        persist(writer.close)
        shutil.rmtree(base, ignore_errors=True)
    summary |= {"log_lines": writer.kept, "log_lines_dropped": writer.dropped}
    if failure is None and code is not None and code != 0:  # no code comes only with a failure
        failure = CommandFailed(*explain(job, code, oom_killed, list(writer.stderr_tail), summary["run_time_s"]))
    if failure is not None:
        failure.result = {**summary, **(failure.result or {})}
        raise failure
    return summary


def _attempt(
    job: Job, base: Path, writer: LogWriter, still_ours
) -> tuple[int | None, bool, ContainerFailed | None, Any]:
    """Prepare the working dir and run the command; a failure is returned, not raised, so outputs are kept."""
    work = base / "work"
    staging = outputs.Staging(work / "outputs" if job.runner != "container" else base / "outputs")
    try:
        mounts = _mounts(job)
        _unpack(job.params.get("bundle", ""), work)
        (work / "outputs").mkdir(parents=True, exist_ok=True)
        if job.runner == "container":
            env = job_env(job, "/work/outputs", {m.name: f"/mounts/{m.name}" for m, _ in mounts})
            code, oom = command_container.run(job, work, env, mounts, writer, still_ours, staging)
        else:
            env = job_env(job, str(work / "outputs"), {m.name: source for m, source in mounts}) | _gpu_env(job)
            code, oom = local_process.run(job, work, env, writer, still_ours)
        return code, oom, None, staging
    except SoftTimeLimitExceeded:
        message = f"timed out: over its time limit of {job.time_limit} s; the command was stopped"
        return None, False, CommandFailed(message, "timeout"), staging
    except ContainerFailed as exc:
        return None, False, exc, staging


def _unpack(digest: str, work: Path) -> None:
    if not digest:
        return
    try:
        bundles.unpack(digest, work)
    except FileNotFoundError:
        raise CommandFailed(
            f"the uploaded working dir is not on {identity.current().host}: web and workers must share RESULTS_DIR",
            "bundle",
        ) from None


def _mounts(job: Job) -> list[tuple[Any, str]]:
    """The job's mounts with their paths for its owner, checked again: staff may have withdrawn one since."""
    try:
        found = commands.allowed(job.owner, mount_names(job.params.get("mounts", "")))
    except SubmissionError as exc:
        raise CommandFailed(str(exc.errors["params"]["mounts"]), "refused") from None
    return [(m, m.path.replace("{user}", job.owner.username)) for m in found]


def job_env(job: Job, outputs_dir: str, mounts: dict[str, str]) -> dict[str, str]:
    env = {"PYTHONUNBUFFERED": "1", "HOME": "/tmp"} if job.runner == "container" else {"PYTHONUNBUFFERED": "1"}
    env |= environment(job.params.get("env", ""))
    env |= {"GPUQ_JOB_ID": str(job.id), "GPUQ_OUTPUTS": outputs_dir, "GPUQ_RUNNER": job.runner}
    return env | {f"GPUQ_MOUNT_{name.upper().replace('-', '_')}": path for name, path in mounts.items()}


def _gpu_env(job: Job) -> dict[str, str]:
    """Exactly the GPUs routed to the job, by UUID; none on a CPU worker (an empty value hides them all)."""
    worker = identity.current()
    if worker.kind != "gpu":
        return {"CUDA_VISIBLE_DEVICES": ""}
    return gang.visible(job, worker) | (gang.NCCL_ENV if job.gpus > 1 else {}) | {"CUDA_DEVICE_ORDER": "PCI_BUS_ID"}


def explain(job: Job, code: int, oom_killed: bool, stderr: list[str], seconds: float) -> tuple[str, str]:
    """(message, error kind) for a command that did not exit 0."""
    text = "\n".join(stderr)
    if oom_killed:
        what, kind = (
            f"out of host memory: the container reached its limit of {settings.CONTAINER_MEMORY} and was killed",
            "oom",
        )
    elif any(m in text for m in GPU_OOM_MARKERS):
        what, kind = f"out of GPU memory (the job declared gpu_mib={job.params.get('gpu_mib')})", "oom"
    elif "MemoryError" in text:
        what, kind = "out of host memory (Python raised MemoryError)", "oom"
    elif code == -signal.SIGKILL:
        what, kind = (
            "killed by SIGKILL, not by the queue: most often the kernel's out-of-memory killer (host RAM)",
            "oom",
        )
    elif code < 0:
        what, kind = f"killed by signal {signal.Signals(-code).name}", "exit"
    else:
        what, kind = f"the command exited with code {code}", "exit"
    message = f"{what}, after {seconds:.1f} s on {identity.current().queue}"
    if stderr:
        message += ". Last lines of stderr:\n" + "\n".join(stderr[-STDERR_SHOWN:])
    return message, kind
