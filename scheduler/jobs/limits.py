"""Time limits: the deployment's default, the longest a user may ask for (per group), and the warning
a submission gets when it leaves the limit to the default."""

from __future__ import annotations

from django.conf import settings

from gpu_tasks.base import ARRAYS
from gpu_tasks.registry import get_kind
from scheduler.jobs.errors import SubmissionError


def time_limit(longest: int, value: int | None) -> int:
    """The job's time limit in seconds; SubmissionError when over `longest`, what the user may ask for
    (scheduler/jobs/allowance.py)."""
    if value is None:
        return min(settings.JOB_TIME_LIMIT_DEFAULT, longest)
    if not 1 <= value <= longest:
        raise SubmissionError({"time_limit": f"must be between 1 and {longest} seconds for you"})
    return value


def warnings(spec: dict, job_time_limit: int) -> list[str]:
    """What the submitter of a user's own code (a `run` or `container` job) should know though nothing was
    wrong; the built-in kinds' runs are short and estimated, their default limit is no surprise."""
    if get_kind(spec["kind"]).runner is not ARRAYS and spec.get("time_limit") is None:
        return [
            f"no time limit given: the default of {job_time_limit} s applies and the job is stopped then; "
            "set time_limit (submit-job --time-limit SECONDS) for a longer run"
        ]
    return []
