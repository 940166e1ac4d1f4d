"""What a `run` job wrote under $GPUQ_OUTPUTS, kept with the job: `<OUTPUTS_DIR>/<job id>/`, capped per job
(OUTPUT_MAX_BYTES) and per user (USER_OUTPUT_MAX_BYTES), deleted after OUTPUT_KEEP_DAYS by the sweep."""

from __future__ import annotations

import io
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db.models import Sum
from django.utils import timezone

from scheduler.jobs.models import Job

LISTED_MAX = 1000


class OutputsRefused(Exception):
    """Outputs over a cap: not kept; the message says which cap and by how much."""


@dataclass
class Staging:
    """Where a job's outputs wait between the job's end and `keep`, and why they were refused on the way."""

    path: Path
    refused: str = ""


def directory(job_id: int) -> Path:
    return Path(settings.OUTPUTS_DIR) / str(job_id)


def room_for(job: Job) -> int:
    """Bytes this job may still keep: its own cap, or what is left of its owner's."""
    others = (
        Job.objects.filter(owner_id=job.owner_id, outputs_bytes__gt=0)
        .exclude(id=job.id)
        .aggregate(s=Sum("outputs_bytes"))
    )["s"] or 0
    return max(0, min(settings.OUTPUT_MAX_BYTES, settings.USER_OUTPUT_MAX_BYTES - others))


def refusal(job: Job, size: int) -> str:
    per_job = settings.OUTPUT_MAX_BYTES
    if size > per_job:
        return (
            f"outputs not kept: {_mib(size)} written under $GPUQ_OUTPUTS, over OUTPUT_MAX_BYTES ({_mib(per_job)} a job)"
        )
    return (
        f"outputs not kept: {_mib(size)} would take your kept outputs over USER_OUTPUT_MAX_BYTES "
        f"({_mib(settings.USER_OUTPUT_MAX_BYTES)}); delete old jobs' outputs or wait for them to expire"
    )


def _mib(size: int) -> str:
    return f"{size / 2**20:.1f} MiB"


def size_of(root: Path) -> tuple[int, int]:
    """(files, bytes) under root, links not followed."""
    files = [p for p in root.rglob("*") if p.is_file() and not p.is_symlink()]
    return len(files), sum(p.stat().st_size for p in files)


def keep(job: Job, staging: Staging) -> dict:
    """Move a finished job's outputs dir into place when it fits; what the job's result says about them.
    OutputsRefused (the outputs deleted) when over a cap."""
    source = staging.path
    if staging.refused:
        shutil.rmtree(source, ignore_errors=True)
        raise OutputsRefused(staging.refused)
    if not source.is_dir():
        return {"files": 0, "bytes": 0}
    files, size = size_of(source)
    if not files:
        return {"files": 0, "bytes": 0}
    if size > room_for(job):
        shutil.rmtree(source, ignore_errors=True)
        raise OutputsRefused(refusal(job, size))
    dest = directory(job.id)
    shutil.rmtree(dest, ignore_errors=True)  # an earlier attempt's
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(source), dest)
    expires = timezone.now() + timedelta(days=settings.OUTPUT_KEEP_DAYS)
    Job.objects.filter(id=job.id).update(outputs_bytes=size, outputs_expire_at=expires)
    return {"files": files, "bytes": size, "expire_at": expires.isoformat()}


def extract_capped(tar_chunks, dest: Path, cap: int) -> None:
    """Unpack an engine's archive of the outputs dir (top folder `outputs/`) into `dest`, refusing past `cap`
    bytes while it streams in, so an enormous output is never written whole."""
    with tempfile.TemporaryFile() as spool:
        written = 0
        for chunk in tar_chunks:
            written += len(chunk)
            if written > cap + (1 << 20) * 4:  # tar headers and padding on top of the files themselves
                raise OutputsRefused(f"outputs not kept: more than {_mib(cap)} written under $GPUQ_OUTPUTS")
            spool.write(chunk)
        spool.seek(0)
        with tarfile.open(fileobj=spool, mode="r:") as tar:
            members = [_strip_top(m) for m in tar.getmembers()]
            tar.extractall(dest, members=[m for m in members if m is not None], filter="data")


def _strip_top(member: tarfile.TarInfo) -> tarfile.TarInfo | None:
    head, _, rest = member.name.partition("/")
    if not rest or not (member.isfile() or member.isdir()):
        return None
    member.name = rest
    return member


def listing(job: Job) -> list[dict]:
    root = directory(job.id)
    if not job.outputs_bytes or not root.is_dir():
        return []
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())[:LISTED_MAX]
    return [{"path": str(p.relative_to(root)), "bytes": p.stat().st_size} for p in files]


def why_none(job: Job) -> str:
    result = job.result or {}
    reason = (result.get("outputs") or {}).get("reason")
    if reason:
        return f"job {job.id} kept no outputs: {reason}"
    if job.outputs_expire_at and not job.outputs_bytes:
        return f"job {job.id}'s outputs expired on {job.outputs_expire_at:%Y-%m-%d} (OUTPUT_KEEP_DAYS)"
    if not job.is_final:
        return f"job {job.id} is {job.status}: outputs are kept when it ends"
    return f"job {job.id} kept no outputs: it wrote nothing under $GPUQ_OUTPUTS"


def archive(job: Job) -> io.BufferedRandom:
    """The job's outputs as a tar.gz in a temporary file, positioned at its start."""
    spool = tempfile.TemporaryFile()
    with tarfile.open(fileobj=spool, mode="w:gz") as tar:
        for entry in listing(job):
            tar.add(directory(job.id) / entry["path"], arcname=f"job-{job.id}/{entry['path']}", recursive=False)
    spool.seek(0)
    return spool


def sweep(now=None) -> int:
    """Delete outputs past their expiry; how many jobs' outputs went."""
    expired = Job.objects.filter(outputs_bytes__gt=0, outputs_expire_at__lte=now or timezone.now())
    ids = list(expired.values_list("id", flat=True))
    for job_id in ids:
        shutil.rmtree(directory(job_id), ignore_errors=True)
    Job.objects.filter(id__in=ids).update(outputs_bytes=0)
    return len(ids)
