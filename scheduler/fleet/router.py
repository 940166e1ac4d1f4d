"""The router: a pure function from (waiting jobs, GPU states) to decisions, each with its reason.

Policies: `balanced` (the default: least expected work among GPUs that can hold the job), `pack`
(the tightest fit, to keep big GPUs free), `round_robin` (the naive baseline: ignores load and memory).
No I/O here: the releaser (scheduler.jobs.release) reads the database and Redis, calls `route`,
and records what it returns.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

GiB = 1024**3


@dataclass(frozen=True)
class JobDemand:
    id: int
    memory: int  # bytes the job declares (its kind's estimate)
    work: float  # expected GPU seconds


@dataclass(frozen=True)
class GpuState:
    queue: str  # the Celery queue that GPU's worker consumes
    uuid: str
    host: str
    memory_total: int  # bytes
    memory_usable: int  # total minus memory held by processes that are not ours
    utilization: float  # percent, 0-100
    healthy: bool
    draining: bool
    last_seen: float  # epoch seconds of its last snapshot
    slots: int = 2  # jobs it may hold at once: running plus ready
    # Beyond `slots`, short jobs: up to `max_held` jobs while their expected work stays under
    # `feed_seconds`, so a GPU running millisecond jobs does not idle between release rounds.
    feed_seconds: float = 0.0
    max_held: int = 0
    concurrency: int = 1  # jobs it runs at the same time
    held_jobs: int = 0  # released to it and not finished
    held_work: float = 0.0
    held_memory: int = 0  # declared memory of the jobs it holds


@dataclass(frozen=True)
class Decision:
    job_id: int
    queue: str | None  # None: the job keeps waiting
    reason: str


POLICIES = ("balanced", "round_robin", "pack")


def gib(n: int) -> str:
    return f"{n / GiB:.1f} GiB"


def route(
    jobs: Sequence[JobDemand],
    gpus: Sequence[GpuState],
    *,
    now: float,
    policy: str = "balanced",
    stale_after: float = 5.0,
) -> list[Decision]:
    """Place each job, in the order given, on a GPU with room; later jobs see earlier placements."""
    pick = _picker(policy)
    fresh = [g for g in gpus if now - g.last_seen <= stale_after]
    live = {g.queue: g for g in sorted(fresh, key=lambda g: g.queue) if g.healthy and not g.draining}
    decisions = []
    for job in jobs:
        gpu = pick(job, list(live.values()))
        if gpu is None:
            decisions.append(Decision(job.id, None, _why_waiting(job, fresh, list(live.values()))))
            continue
        decisions.append(Decision(job.id, gpu.queue, _why_chosen(policy, gpu)))
        live[gpu.queue] = _hold(gpu, job)
    return decisions


def fits_fleet(memory: int, largest: int | None) -> str | None:
    """A refusal for a job no GPU of the fleet could ever hold; None to accept (also when no GPU was seen yet)."""
    if largest is None or memory <= largest:
        return None
    return f"the job needs {gib(memory)} of GPU memory; the largest GPU in the fleet has {gib(largest)}"


def free_for_job(g: GpuState) -> int:
    """Memory a job released to `g` now can count on.

    One job at a time: the job before it will have ended, so all but foreign memory is free.
    Several at a time: jobs released but not yet allocating count as used (the admission race).
    """
    return g.memory_usable if g.concurrency <= 1 else g.memory_usable - g.held_memory


def _has_room(g: GpuState, job: JobDemand) -> bool:
    if g.held_jobs < g.slots:
        return True
    return g.held_jobs < g.max_held and g.held_work + job.work < g.feed_seconds


def room(g: GpuState) -> int:
    """How many more jobs `g` could be given at most (short jobs fill the feed; others the slots)."""
    if g.held_work < g.feed_seconds:
        return max(0, max(g.slots, g.max_held) - g.held_jobs)
    return max(0, g.slots - g.held_jobs)


def _fits(job: JobDemand, g: GpuState) -> bool:
    return _has_room(g, job) and job.memory <= free_for_job(g)


def _balanced(job: JobDemand, live: list[GpuState]) -> GpuState | None:
    fits = [g for g in live if _fits(job, g)]
    return min(fits, key=lambda g: (g.held_work, g.held_jobs, -free_for_job(g), g.utilization, g.queue), default=None)


def _pack(job: JobDemand, live: list[GpuState]) -> GpuState | None:
    fits = [g for g in live if _fits(job, g)]
    return min(fits, key=lambda g: (free_for_job(g), g.held_work, g.queue), default=None)


def _round_robin(job: JobDemand, live: list[GpuState]) -> GpuState | None:
    # The turn comes from the job id, so the function stays pure; memory is ignored on purpose.
    turn = job.id % len(live) if live else 0
    return next((g for g in live[turn:] + live[:turn] if _has_room(g, job)), None)


Picker = Callable[[JobDemand, list[GpuState]], "GpuState | None"]
_PICKERS: dict[str, Picker] = {"balanced": _balanced, "round_robin": _round_robin, "pack": _pack}


def _picker(policy: str) -> Picker:
    if policy not in _PICKERS:
        raise ValueError(f"unknown router policy {policy!r}: choose one of {', '.join(POLICIES)}")
    return _PICKERS[policy]


def _hold(g: GpuState, job: JobDemand) -> GpuState:
    return replace(
        g, held_jobs=g.held_jobs + 1, held_work=g.held_work + job.work, held_memory=g.held_memory + job.memory
    )


def _why_chosen(policy: str, g: GpuState) -> str:
    if policy == "round_robin":
        return f"GPU {g.queue}: next in turn (round robin), {g.held_jobs} jobs already there"
    why = "tightest fit" if policy == "pack" else "least loaded"
    return f"GPU {g.queue}: {why} ({g.held_work:.1f} s of work queued), {gib(free_for_job(g))} usable"


def _why_waiting(job: JobDemand, fresh: list[GpuState], live: list[GpuState]) -> str:
    if not fresh:
        return "no GPU worker is alive"
    if not live:
        return "all GPUs draining or unhealthy"
    if all(job.memory > g.memory_usable for g in live):
        return f"no GPU has {gib(job.memory)} free"
    return "every GPU that can hold it is busy"
