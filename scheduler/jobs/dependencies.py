"""Why a job after other jobs still waits: the jobs it waits for, named in its wait reason.

The reason is set at submission and brought up to date by every release round, so a job page says
"waiting for job 12 (running)" while job 12 runs, and "waiting for a GPU with room" once it succeeded.
"""

from __future__ import annotations

from collections import defaultdict

from scheduler.jobs.models import Job, Status

ROOM = "waiting for a GPU with room"
PREFIX = "waiting for job"


def reason(unfinished: list[tuple[int, str]]) -> str:
    """`[(12, "running")]` -> "waiting for job 12 (running)"; several: the first three, and a count;
    a status left empty (at submission, before a round has looked) is not shown."""
    shown = ", ".join(f"{i} ({status})" if status else str(i) for i, status in unfinished[:3])
    more = f" and {len(unfinished) - 3} more" if len(unfinished) > 3 else ""
    return f"{PREFIX}{'s' if len(unfinished) > 1 else ''} {shown}{more}"[:300]


def with_after_ids(jobs: list[Job]) -> list[Job]:
    """`jobs`, each with its `after_ids` read by one query for all of them: a page of 50 jobs with
    `prefetch_related("after")` built 50 related managers and read each dependency's whole row."""
    found: dict[int, list[int]] = defaultdict(list)
    if jobs:
        links = Job.after.through.objects.filter(from_job_id__in=[j.id for j in jobs])
        for job_id, dep in links.order_by("to_job_id").values_list("from_job_id", "to_job_id"):
            found[job_id].append(dep)
    for job in jobs:
        job.after_ids = found[job.id]
    return jobs


def unfinished_dependencies(job_ids=None) -> dict[int, list[tuple[int, str]]]:
    """Waiting jobs (all, or those of `job_ids`) -> the dependencies that have not succeeded yet."""
    links = Job.after.through.objects.filter(from_job__status=Status.WAITING).exclude(to_job__status=Status.SUCCEEDED)
    if job_ids is not None:
        links = links.filter(from_job_id__in=job_ids)
    found: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for job_id, dep, status in links.order_by("to_job_id").values_list("from_job_id", "to_job_id", "to_job__status"):
        found[job_id].append((dep, status))
    return found


def explain() -> None:
    """One round's update: each waiting job after unfinished jobs names them; a job whose
    dependencies all succeeded goes back to waiting for room (the router then says more)."""
    blocked = unfinished_dependencies()
    by_reason: dict[str, list[int]] = defaultdict(list)
    for job_id, deps in blocked.items():
        by_reason[reason(deps)].append(job_id)
    for text, ids in by_reason.items():
        Job.objects.filter(id__in=ids, status=Status.WAITING).exclude(wait_reason=text).update(wait_reason=text)
    freed = Job.objects.filter(status=Status.WAITING, wait_reason__startswith=PREFIX).exclude(id__in=list(blocked))
    freed.update(wait_reason=ROOM)
