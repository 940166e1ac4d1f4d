"""What the pages add for `run` jobs: the form's labels and uploaded working dir, the job page's log and outputs."""

from __future__ import annotations

import hashlib
import re

from django.conf import settings
from django.urls import reverse

from scheduler.jobs import bundles, joblog, outputs
from scheduler.jobs.errors import SubmissionError
from scheduler.jobs.models import Job

TAG = re.compile(r"[-\w.:=/]{1,40}\Z")
LOG_SHOWN = 200  # lines the page shows when it loads; the pane follows the rest through the API


def tags(text: str) -> list[str]:
    """`exp3, lr=3e-4` -> ["exp3", "lr=3e-4"]; SubmissionError naming a tag that is not one."""
    found = [t for t in re.split(r"[,\s]+", text) if t]
    bad = [t for t in found if not TAG.match(t)]
    if bad or len(found) > 20:
        raise SubmissionError(
            {"tags": f"up to 20 tags of letters, digits and -_.:=/ (not {', '.join(bad) or 'so many'})"}
        )
    return found


def uploaded_bundle(user, files, kind: str) -> dict:
    """The `bundle` param from a working dir uploaded with the form ({} when none was)."""
    upload = files.get(f"{kind}.upload") if files else None
    if upload is None:
        return {}
    sha = hashlib.sha256()
    for chunk in upload.chunks():
        sha.update(chunk)
    upload.seek(0)
    try:
        return {"bundle": bundles.store(user, sha.hexdigest(), upload, upload.size).digest}
    except SubmissionError as exc:
        raise SubmissionError({"upload": exc.errors.get("detail", str(exc))}, exc.status) from None


def log_and_outputs(job: Job) -> dict:
    """The job page's log pane (its last lines and where to follow it) and its kept outputs."""
    lines = joblog.tail(job.id, LOG_SHOWN)
    files = outputs.listing(job)
    return {
        "log_lines": lines,
        "log_last": lines[-1].n if lines else 0,
        "log_url": reverse("api-job-log", args=[job.id]),
        "log_text_url": reverse("api-job-log-text", args=[job.id]),
        "outputs": files,
        "outputs_url": reverse("api-job-outputs-archive", args=[job.id]) if files else None,
        "uid": settings.CONTAINER_UID_BASE + job.owner_id,
    }
