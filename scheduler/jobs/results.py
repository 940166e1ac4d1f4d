"""A job's result array on disk: `<RESULTS_DIR>/<job id>.npy`, saved by the worker (`workers/results.py`) and
served by the API. The job's result says whether it was saved (its `npy` entry), so listing jobs reads no disk.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.urls import reverse

from scheduler.jobs.models import Job, Status


class NoResultFile(Exception):
    """A download that cannot be served; the message tells the job's owner why."""


def path(job_id: int) -> Path:
    return Path(settings.RESULTS_DIR) / f"{job_id}.npy"


def saved(job: Job) -> bool:
    return bool((job.result or {}).get("npy", {}).get("saved"))


def url(job: Job) -> str | None:
    """Where the job's `.npy` downloads from; None when no array of it was saved."""
    return reverse("api-job-result", args=[job.id]) if saved(job) else None


def stored(job: Job) -> Path:
    """The job's `.npy` file; NoResultFile saying why there is none."""
    if not saved(job):
        raise NoResultFile(_why_none(job))
    found = path(job.id)
    if not found.is_file():
        raise NoResultFile(
            f"job {job.id}'s result file is missing on the server: the web app and the workers must share RESULTS_DIR"
        )
    return found


def _why_none(job: Job) -> str:
    if job.status != Status.SUCCEEDED:
        return f"job {job.id} is {job.status}: only a succeeded job has a result array"
    npy = (job.result or {}).get("npy")
    if npy:
        return f"job {job.id}'s result array was not saved: {npy.get('reason', 'no reason recorded')}"
    return f"job {job.id} has no result array: the {job.kind} kind returns only a summary"
