"""Every job kind by name. A new kind: a module with a `KINDS` tuple, and one line in FAMILIES."""

from __future__ import annotations

from gpu_tasks import allreduce, command, container, fft, linalg, montecarlo, simulation, stats, synthetic
from gpu_tasks.base import JobKind, UnknownKind

FAMILIES = (
    linalg,
    fft,
    stats,
    montecarlo,
    simulation,
    synthetic,
    allreduce,
    container,
    command,
)


def _collect() -> dict[str, JobKind]:
    kinds: dict[str, JobKind] = {}
    for kind in (k for family in FAMILIES for k in family.KINDS):
        if kind.name in kinds:
            raise RuntimeError(f"two job kinds are named {kind.name!r}")
        kinds[kind.name] = kind
    return kinds


KINDS: dict[str, JobKind] = _collect()


def get_kind(name: str) -> JobKind:
    """The kind called `name`; UnknownKind (naming the kinds users may submit) when there is none."""
    try:
        return KINDS[name]
    except (KeyError, TypeError):
        public = ", ".join(sorted(k.name for k in KINDS.values() if not k.staff_only))
        raise UnknownKind(f"unknown kind {name!r}; known kinds: {public}") from None
