"""The worker's runners by name: how a job of each kind is executed (its kind names its Runner).

A new runner is one module with `run(job, still_ours) -> Outcome` and one line here; its Runner (name,
how a cancellation stops it, what is allowlisted) is declared with its kinds in gpu_tasks/.
"""

from __future__ import annotations

from collections.abc import Callable

from gpu_tasks.base import ARRAYS
from gpu_tasks.command import COMMANDS
from gpu_tasks.container import CONTAINERS
from gpu_tasks.registry import get_kind
from scheduler.jobs.models import Job
from workers import array_runner, command_runner, containers
from workers.outcome import Outcome

RunFn = Callable[[Job, Callable[[], bool]], Outcome]
RUNNERS: dict[str, RunFn] = {
    ARRAYS.name: array_runner.run,
    CONTAINERS.name: containers.run_attempt,
    COMMANDS.name: command_runner.run_attempt,
}


def run(job: Job, still_ours: Callable[[], bool]) -> Outcome:
    """Run one attempt of `job` with its kind's runner; `still_ours()` turns False once it is cancelled."""
    return RUNNERS[get_kind(job.kind).runner.name](job, still_ours)
