"""A job again: the `submit-job` command that would submit it, and the form filled in from it."""

from __future__ import annotations

import shlex

from django.conf import settings

from scheduler.jobs.models import Job
from scheduler.jobs.visibility import visible_jobs


def _text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def cli_command(job: Job) -> str:
    """`submit-job fft -p n=512 --priority 3`: the same kind, parameters and scheduling."""
    parts = ["submit-job", job.kind]
    for name, value in sorted(job.params.items()):
        parts += ["-p", shlex.quote(f"{name}={_text(value)}")]
    if job.priority:
        parts += ["--priority", str(job.priority)]
    if job.time_limit != settings.JOB_TIME_LIMIT_DEFAULT:
        parts += ["--time-limit", str(job.time_limit)]
    if job.gpus > 1:
        parts += ["--gpus", str(job.gpus)]
    return " ".join(parts)


def prefill(user, job_id: str | None) -> dict[str, str]:
    """The submit form's fields as `job_id` had them; empty where there is no such job of the user's."""
    if not job_id or not job_id.isdigit():
        return {}
    job = visible_jobs(user).filter(id=int(job_id)).first()
    if job is None:
        return {}
    fields = {f"{job.kind}.{name}": _text(value) for name, value in job.params.items()}
    fields |= {"kind": job.kind, "priority": str(job.priority) if job.priority else ""}
    if job.time_limit != settings.JOB_TIME_LIMIT_DEFAULT:
        fields["time_limit"] = str(job.time_limit)
    if job.gpus > 1:
        fields["gpus"] = str(job.gpus)
    return fields
