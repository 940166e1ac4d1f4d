"""What every signed-in user sees of the lab's queue, as Slurm's `squeue` shows it.

Of another user's unfinished job: its kind, owner, state, GPU and times. Its id, parameters, result
and log stay with its owner and staff (the job's own page is a 404 for anyone else), so the lab queue
names who holds which GPU without opening anyone's work to the rest of the lab.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import Case, Count, IntegerField, Q, Value, When

from scheduler.dispatch import keys
from scheduler.dispatch.connections import redis_client
from scheduler.jobs import fairshare
from scheduler.jobs.models import FINAL, HELD, Job, Quota, Status

SHOWN = 500  # rows on the page; the total is counted whole
_STATE_ORDER = Case(
    When(status=Status.RUNNING, then=Value(0)),
    When(status=Status.QUEUED, then=Value(1)),
    default=Value(2),
    output_field=IntegerField(),
)


def unfinished() -> tuple[list[Job], int]:
    """The lab's unfinished jobs, running first, then queued, then waiting (oldest first), and how many."""
    jobs = Job.objects.exclude(status__in=FINAL)
    shown = jobs.select_related("owner").order_by(_STATE_ORDER, "created_at", "id")[:SHOWN]
    return list(shown), jobs.count()


def shown_id(job: Job, reader) -> int | None:
    """The job's id for its owner and staff; None for the rest of the lab."""
    return job.id if reader.is_staff or job.owner_id == reader.id else None


def seen(job: Job, reader) -> dict:
    """What `reader` sees of any job in the lab: its id (theirs, or staff's), kind, owner and state."""
    return {
        "id": shown_id(job, reader),
        "mine": job.owner_id == reader.id,
        "kind": job.kind,
        "owner": job.owner.username,
        "status": job.status,
    }


def row(job: Job, reader) -> dict:
    """One line of the lab queue as `reader` may see it."""
    return {
        **seen(job, reader),
        "gpu": job.queue,
        "created_at": job.created_at,
        "queued_at": job.queued_at,
        "started_at": job.started_at,
        "wait_reason": job.wait_reason if shown_id(job, reader) else "",
    }


def holders(reader) -> dict[str, dict]:
    """GPU queue -> who runs what on it: owner and kind for everyone, the job id for its owner and staff."""
    running = Job.objects.filter(status=Status.RUNNING).select_related("owner")
    return {job.queue: {"owner": job.owner.username, "kind": job.kind, "id": shown_id(job, reader)} for job in running}


def shares() -> list[dict]:
    """Per user with unfinished jobs or recent GPU time: jobs by state, GPUs in use against the quota,
    and recent usage (decayed, as the release order weighs it) against an equal share of the lab."""
    r = redis_client()
    recent = {int(uid) for uid in r.hkeys(keys.USAGE)}
    by_state = (
        Job.objects.exclude(status__in=FINAL)
        .values("owner_id")
        .annotate(
            running=Count("id", filter=Q(status=Status.RUNNING)),
            queued=Count("id", filter=Q(status=Status.QUEUED)),
            waiting=Count("id", filter=Q(status=Status.WAITING)),
            gpus=Count("queue", filter=Q(status__in=HELD), distinct=True),
        )
    )
    counts = {row["owner_id"]: row for row in by_state}
    usage = fairshare.usage(r, recent | set(counts))
    ids = [uid for uid in usage if uid in counts or usage[uid] >= 1.0]
    names = dict(get_user_model().objects.filter(id__in=ids).values_list("id", "username"))
    caps = dict(Quota.objects.filter(user_id__in=ids).values_list("user_id", "max_gpus"))
    total = sum(usage[uid] for uid in ids) or 1.0
    active = sum(1 for uid in ids if uid in counts) or 1
    empty = {"running": 0, "queued": 0, "waiting": 0, "gpus": 0}
    rows = [
        {
            "user": names.get(uid, f"user {uid}"),
            **{k: counts.get(uid, empty)[k] for k in empty},
            "max_gpus": caps.get(uid) or None,
            "usage_gpu_hours": usage[uid] / 3600,
            "usage_share": usage[uid] / total,
            "fair_share": (1 / active) if uid in counts else 0.0,
        }
        for uid in ids
        if uid in names
    ]
    return sorted(rows, key=lambda u: (-u["running"], -u["usage_gpu_hours"], u["user"]))


def with_holders(reader, gpus: list[dict]) -> list[dict]:
    """The fleet view's rows, each with who holds its GPU (`holders`), for the GPU page and /api/gpus/."""
    held = holders(reader)
    return [{**g, "holder": held.get(g["queue"])} for g in gpus]
