"""Which GPU this worker process serves, fixed by `python -m workers` before the pool forks."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WorkerIdentity:
    kind: str  # "gpu" or "cpu"
    host: str
    uuid: str
    queue: str
    name: str = ""
    bus_id: str = ""

    def __str__(self) -> str:
        return f"{self.queue} ({self.name or self.kind})"


_current: list[WorkerIdentity] = []


def set_current(ident: WorkerIdentity) -> None:
    _current[:] = [ident]


def current() -> WorkerIdentity:
    if not _current:
        raise RuntimeError("this process is not a GPU worker: start it with `python -m workers`")
    return _current[0]
