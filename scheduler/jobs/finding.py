"""Finding a job among many: by status, kind, and a search over id, kind and owner."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from gpu_tasks.registry import KINDS
from scheduler.jobs.models import Job, Status


class BadFilter(ValueError):
    """A filter naming a status or kind that does not exist; answered 400 with `field` and the choices."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def filtered(jobs: QuerySet[Job], status: str = "", kind: str = "", q: str = "") -> QuerySet[Job]:
    if status:
        if status not in Status.values:
            raise BadFilter("status", f"unknown status {status!r}; one of {', '.join(Status.values)}")
        jobs = jobs.filter(status=status)
    if kind:
        if kind not in KINDS:
            raise BadFilter("kind", f"unknown kind {kind!r}; one of {', '.join(sorted(KINDS))}")
        jobs = jobs.filter(kind=kind)
    q = q.strip()
    if "\x00" in q:  # PostgreSQL refuses NUL in text: a 400 here rather than its error as a 500
        raise BadFilter("q", "a search cannot contain a NUL character")
    if q:
        match = Q(kind__icontains=q) | Q(owner__username__iexact=q)
        if q.isascii() and q.isdigit() and len(q) < 19:  # "¹".isdigit() is True, int("¹") fails
            match |= Q(id=int(q))
        jobs = jobs.filter(match)
    return jobs
