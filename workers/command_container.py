"""The container runner of `run` jobs: the working dir copied into a locked-down container of an allowlisted
image (the lockdown of `workers/containers.py`), run as the owner's own uid, and its outputs copied back out.

Files go in and out through the engine's archive API, not bind mounts of the worker's disk: in compose the
worker is itself a container, and its paths are not the host paths the engine would bind.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable
from pathlib import Path

import docker.errors
from django.conf import settings
from docker.types import Mount as EngineMount

from scheduler.jobs import outputs
from scheduler.jobs.joblog import LogWriter, pump
from scheduler.jobs.models import ContainerImage, Job, Mount
from workers import containers, identity
from workers.containers import ContainerFailed

WORK = "/work"


def uid_of(job: Job) -> int:
    return settings.CONTAINER_UID_BASE + job.owner_id


def run(
    job: Job,
    work: Path,
    env: dict[str, str],
    mounts: list[tuple[Mount, str]],
    writer: LogWriter,
    still_ours: Callable[[], bool],
    staged: outputs.Staging,
) -> tuple[int, bool]:
    """Run the job's container to its end, its outputs unpacked into `staged`; (exit code, OOM-killed)."""
    entry = ContainerImage.objects.filter(image=job.params["image"]).first()
    if entry is None:
        raise ContainerFailed(f"image {job.params['image']!r} was taken off the allowlist after the job was submitted")
    worker = identity.current()
    client = containers.engine()
    mode = containers.gpu_mode(client, worker)
    container = containers.create(client, entry, options(job, entry, worker, mode, env, mounts), worker)
    try:
        container.put_archive("/", _owned_tar(work, uid_of(job)))
        containers.start(container)
        readers = [pump(writer, name, _logs(container, name)) for name in ("stdout", "stderr")]
        try:
            code = containers.wait(container, job, still_ours, writer)
        finally:
            for reader in readers:
                reader.join(timeout=5)
            _fetch_outputs(container, job, staged)
        container.reload()
        return code, bool(container.attrs["State"].get("OOMKilled"))
    finally:
        containers.remove(container)


def _logs(container, stream: str):
    return lambda: container.logs(stream=True, follow=True, stdout=stream == "stdout", stderr=stream == "stderr")


def options(
    job: Job, entry: ContainerImage, worker, gpu_mode: str, env: dict[str, str], mounts: list[tuple[Mount, str]]
) -> dict:
    """The lockdown every job container gets, plus the owner's uid, the working dir and the mounts."""
    opts = containers.create_options(job, entry, worker, gpu_mode)
    uid = uid_of(job)
    opts["user"] = f"{uid}:{uid}"
    opts["working_dir"] = WORK
    # The job writes its working dir and outputs (/work, copied in before the start, so no tmpfs can hold
    # it): this container's own layer is writable, and removed with it.
    opts["read_only"] = False
    opts["environment"] = opts["environment"] | env
    opts["mounts"] = [
        EngineMount(target=f"/mounts/{m.name}", source=source, type="bind", read_only=m.read_only)
        for m, source in mounts
    ]
    return opts


def _owned_tar(work: Path, uid: int) -> bytes:
    """The unpacked working dir as a tar rooted at `work/`, owned by the job's uid so it may write there."""

    def owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = uid
        info.uname = info.gname = ""
        return info

    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        tar.add(work, arcname=WORK.strip("/"), filter=owned)
    return out.getvalue()


def _fetch_outputs(container, job: Job, staged: outputs.Staging) -> None:
    try:
        chunks, _ = container.get_archive(f"{WORK}/outputs")
        staged.path.mkdir(parents=True, exist_ok=True)
        outputs.extract_capped(chunks, staged.path, outputs.room_for(job))
    except docker.errors.NotFound:  # the job removed its outputs dir
        pass
    except outputs.OutputsRefused as exc:  # raised here it would hide why the job ended
        staged.refused = str(exc)
