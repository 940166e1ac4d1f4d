"""GPU quotas (`Quota.max_gpus`): a job on N GPUs uses N of them, as long as it is held."""

from __future__ import annotations

from django.db.models import Count, Sum

from scheduler.jobs.models import HELD, Job, Quota


def gpu_allowance(owners: list[int]) -> dict[int, tuple[int, int]]:
    """Users under a GPU quota: (their max_gpus, GPUs their held jobs use now)."""
    limits = dict(Quota.objects.filter(user_id__in=owners, max_gpus__gt=0).values_list("user_id", "max_gpus"))
    if not limits:
        return {}
    held = Job.objects.filter(owner_id__in=list(limits), status__in=HELD)
    single = held.filter(gpus=1).values("owner_id").annotate(n=Count("queue", distinct=True))
    multi = held.filter(gpus__gt=1).values("owner_id").annotate(n=Sum("gpus"))
    in_use = dict.fromkeys(limits, 0)
    for row in [*single, *multi]:
        in_use[row["owner_id"]] += row["n"] or 0
    return {uid: (cap, in_use[uid]) for uid, cap in limits.items()}


def within(jobs: list[Job], cap: int, in_use: int) -> tuple[list[Job], str]:
    """The user's jobs, in their order, that may be given GPUs this round (each one-GPU job might land on
    another GPU), and the reason shown to the others."""
    left, taken = cap - in_use, []
    for job in jobs:
        if job.gpus > left:
            break
        taken.append(job)
        left -= job.gpus
    reason = f"quota: {in_use} of your {cap} GPUs in use"
    if not taken and jobs and jobs[0].gpus > 1:
        reason += f"; this job needs {jobs[0].gpus}"
    return taken, reason
