"""Accounting, as Slurm's `sacct` gives it: each finished job's start, end, elapsed and GPU time, and
the totals by user and by kind, over a window of days."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, QuerySet, Sum
from django.utils import timezone

from scheduler.jobs.models import FINAL, Job, Status

COLUMNS = ("id", "owner", "kind", "status", "gpu", "submitted", "started", "finished", "turnaround_s", "gpu_s")
_HELD_FOR = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())


def finished(jobs: QuerySet[Job], days: int) -> QuerySet[Job]:
    """Of `jobs`, those that ended in the last `days` days, newest first."""
    since = timezone.now() - timedelta(days=days)
    return jobs.filter(status__in=FINAL, finished_at__gte=since).select_related("owner").order_by("-finished_at")


def row(job: Job) -> dict:
    return {
        "id": job.id,
        "owner": job.owner.username,
        "kind": job.kind,
        "status": job.status,
        "gpu": job.queue,
        "submitted": job.created_at,
        "started": job.started_at,
        "finished": job.finished_at,
        "turnaround_s": (job.finished_at - job.created_at).total_seconds() if job.finished_at else None,
        "gpu_s": job.gpu_seconds,
    }


def totals(jobs: QuerySet[Job], by: str) -> list[dict]:
    """Jobs, successes, failures and GPU hours per `by` ("owner__username" or "kind"), most GPU time first."""
    rows = (
        jobs.order_by()
        .values(by)
        .annotate(
            jobs=Count("id"),
            succeeded=Count("id", filter=Q(status=Status.SUCCEEDED)),
            failed=Count("id", filter=Q(status=Status.FAILED)),
            held=Sum(_HELD_FOR, filter=Q(started_at__isnull=False)),
        )
    )
    out = [
        {"name": r[by], **{k: r[k] for k in ("jobs", "succeeded", "failed")}, "gpu_hours": _hours(r["held"])}
        for r in rows
    ]
    return sorted(out, key=lambda r: (-r["gpu_hours"], r["name"]))


def _hours(held: timedelta | None) -> float:
    return held.total_seconds() / 3600 if held else 0.0


def as_csv(jobs: QuerySet[Job]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS)
    writer.writeheader()
    for job in jobs.iterator(chunk_size=2000):
        values = row(job)
        writer.writerow({k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in values.items()})
    return buffer.getvalue()
