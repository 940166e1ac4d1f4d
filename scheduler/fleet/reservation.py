"""Reservations and backfill, as Slurm's backfill scheduler does them, and the estimated start of waiting jobs.

When the job first in release order cannot start, it reserves the GPUs expected to free soonest (for
a multi-GPU job, N of one host). A later job may be given a reserved GPU only when it is expected to
end before the reservation starts, by its work estimate, and is sure to, by its time limit:

    start + work        <= reservation.starts_at   (by estimates: the GPU's time stays used)
    latest + time_limit <= reservation.latest      (by time limits: the bound below holds)

The bound: `latest` is when the jobs holding the reserved GPUs have all ended by their time limits.
A job let in meanwhile ends by then too, so `latest` never grows while the same GPUs stay reserved,
and the reserved job starts by the `latest` of its first reservation (plus one release round and the
hard-kill margin of a job over its limit), however many later jobs arrive. With honest estimates it
starts by `starts_at`. It can still be passed by jobs that go before it in release order (a higher
priority, a user with less fair-share usage): the reservation protects order, it does not change it.

Pure functions, like the router (which calls `reserve` and `admits`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


class JobDemand(Protocol):  # the router's JobDemand, by the fields read here (the router imports this module)
    @property
    def id(self) -> int: ...
    @property
    def memory(self) -> int: ...
    @property
    def work(self) -> float: ...
    @property
    def gpus(self) -> int: ...
    @property
    def time_limit(self) -> float: ...


class GpuState(Protocol):  # the router's GpuState, likewise
    @property
    def queue(self) -> str: ...
    @property
    def host(self) -> str: ...
    @property
    def memory_usable(self) -> int: ...
    @property
    def concurrency(self) -> int: ...
    @property
    def free_at(self) -> float: ...
    @property
    def free_by(self) -> float: ...


@dataclass(frozen=True)
class Reservation:
    job_id: int
    queues: tuple[str, ...]  # the GPUs reserved, in queue order
    starts_at: float  # when they are expected to be free, by the work estimates (epoch seconds)
    latest: float  # when they will be free at the latest, by the time limits

    def describe(self, now: float, names: dict[str, str] | None = None) -> str:
        """ "reserved GPUs 0-1 of hostA for job 42; starts in about 3 min", from GPU labels when given."""
        gpus = gpu_labels(self.queues, names or {})
        return f"reserved {gpus} for job {self.job_id}; starts {starts_in(self.starts_at - now)}"


@dataclass(frozen=True)
class Forecast:
    position: int  # 1: first in release order
    starts_at: float  # estimated start (epoch seconds)
    queues: tuple[str, ...]  # the GPUs it is expected to start on


def reserve(job: JobDemand, live: Sequence[GpuState], now: float) -> Reservation | None:
    """The GPUs that free soonest for `job` (N of one host), or None when no live host could ever hold it."""
    best = _soonest(job, {g.queue: g.free_at for g in live}, live, now)
    if best is None:
        return None
    chosen = [g for g in live if g.queue in best[1]]
    latest = max([now, *(g.free_by for g in chosen)])
    return Reservation(job.id, best[1], best[0], latest)


def admits(held: Reservation | None, g: GpuState, job: JobDemand, now: float) -> bool:
    """Whether `job` may be given `g`: it is not reserved, or the job ends before the reservation starts."""
    if held is None or g.queue not in held.queues:
        return True
    if job.gpus > 1 or g.concurrency > 1:
        start, latest = now, now  # it runs beside or after nothing: it starts at once or not at all
    else:
        start, latest = max(g.free_at, now), max(g.free_by, now)
    return start + job.work <= held.starts_at and latest + job.time_limit <= held.latest


def forecast(jobs: Sequence[JobDemand], live: Sequence[GpuState], now: float) -> dict[int, Forecast]:
    """Estimated starts of waiting jobs in release order: each takes the GPUs free soonest (list scheduling
    on the GPUs' expected free times), so a job's estimate counts the jobs before it."""
    free = {g.queue: max(g.free_at, now) for g in live}
    out = {}
    for position, job in enumerate(jobs, 1):
        best = _soonest(job, free, live, now)
        if best is None:
            continue
        start, queues = best
        for q in queues:
            free[q] = start + job.work
        out[job.id] = Forecast(position, start, queues)
    return out


def _soonest(
    job: JobDemand, free: dict[str, float], live: Sequence[GpuState], now: float
) -> tuple[float, tuple[str, ...]] | None:
    """(start, queues): the host whose N soonest-free GPUs that can hold the job are free first."""
    by_host = defaultdict(list)
    for g in live:
        if job.memory <= g.memory_usable:
            by_host[g.host].append((max(free[g.queue], now), g.queue))
    options = []
    for gpus in by_host.values():
        if len(gpus) >= job.gpus:
            soonest = sorted(gpus)[: job.gpus]
            options.append((soonest[-1][0], tuple(sorted(q for _, q in soonest))))
    return min(options, default=None)


def starts_in(seconds: float) -> str:
    """ "in about 3 min", for a duration from now."""
    if seconds < 1.5:
        return "now"
    if seconds < 90:
        return f"in about {seconds:.0f} s"
    if seconds < 5400:
        return f"in about {seconds / 60:.0f} min"
    return f"in about {seconds / 3600:.1f} h"


def gpu_labels(queues: Sequence[str], names: dict[str, str]) -> str:
    """ "GPUs 0-1 of hostA" from labels like "hostA:0"; the queue names where no label is known."""
    labels = [names.get(q, q) for q in queues]
    parts = [label.rpartition(":") for label in labels]
    if len({host for host, _, _ in parts}) == 1 and all(sep and i.isdigit() for _, sep, i in parts):
        numbers = sorted(int(i) for _, _, i in parts)
        contiguous = numbers == list(range(numbers[0], numbers[-1] + 1))
        span = f"{numbers[0]}-{numbers[-1]}" if contiguous and len(numbers) > 1 else ",".join(map(str, numbers))
        return f"{'GPUs' if len(numbers) > 1 else 'GPU'} {span} of {parts[0][0]}"
    return ("GPUs " if len(labels) > 1 else "GPU ") + ", ".join(labels)
