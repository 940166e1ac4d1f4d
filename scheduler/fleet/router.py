"""The router: a pure function from (waiting jobs, GPU states) to decisions, each with its reason.

Policies: `balanced` (the default: least expected work among GPUs that can hold the job), `pack`
(the tightest fit, to keep big GPUs free), `round_robin` (the naive baseline: ignores load and memory).
No I/O here: the releaser (scheduler.jobs.release) reads the database and Redis, calls `route`,
and records what it returns.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from scheduler.fleet.reservation import Reservation, admits, reserve

GiB = 1024**3


@dataclass(frozen=True)
class JobDemand:
    id: int
    memory: int  # bytes the job declares (its kind's estimate), on each of its GPUs
    work: float  # expected GPU seconds
    gpus: int = 1  # GPUs of one host it needs at once, all given in one decision or none
    time_limit: float = float("inf")  # seconds after which its worker kills it


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
    # When the jobs it holds are expected to have ended (epoch seconds, by their work estimates), and
    # when they will have at the latest (by their time limits): what reservations are made from.
    free_at: float = 0.0
    free_by: float = 0.0
    gang_job: int = 0  # the multi-GPU job holding it whole (0: none); it takes no other job meanwhile


@dataclass(frozen=True)
class Decision:
    job_id: int
    queue: str | None  # None: the job keeps waiting; for a multi-GPU job, its leader GPU
    reason: str
    gang: tuple[str, ...] = ()  # a multi-GPU job's GPUs, the leader first
    reservation: Reservation | None = None  # set on the waiting job that holds the reservation


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
    reserve_head: bool = True,
) -> list[Decision]:
    """Place each job, in the order given, on a GPU with room; later jobs see earlier placements.

    The first job that cannot start reserves the GPUs that free soonest (`reserve_head`); a later job
    may use a reserved GPU only when it is expected to end before the reservation starts (backfill).
    """
    pick = _picker(policy)
    fresh = [g for g in gpus if now - g.last_seen <= stale_after]
    live = {g.queue: g for g in sorted(fresh, key=lambda g: g.queue) if g.healthy and not g.draining}
    decisions: list[Decision] = []
    held: Reservation | None = None
    for job in jobs:
        usable = [g for g in live.values() if admits(held, g, job, now)]
        chosen = _gang(job, usable) if job.gpus > 1 else [g for g in [pick(job, usable)] if g is not None]
        if chosen:
            decisions.append(_placed(policy, job, chosen))
            live.update({g.queue: _hold(g, job, now, len(chosen) > 1) for g in chosen})
            continue
        reason = _why_waiting(job, fresh, list(live.values()))
        if reserve_head and held is None:
            held = reserve(job, list(live.values()), now)
            decisions.append(Decision(job.id, None, reason, reservation=held))
        else:
            decisions.append(Decision(job.id, None, reason))
    return decisions


def _placed(policy: str, job: JobDemand, chosen: list[GpuState]) -> Decision:
    if len(chosen) == 1:
        return Decision(job.id, chosen[0].queue, _why_chosen(policy, chosen[0]))
    queues = tuple(g.queue for g in chosen)
    why = f"{len(chosen)} idle GPUs of host {chosen[0].host} ({', '.join(queues)}), led by {queues[0]}"
    return Decision(job.id, queues[0], why, gang=queues)


def _gang(job: JobDemand, usable: list[GpuState]) -> list[GpuState]:
    """N idle GPUs of one host that can each hold the job, or none: never a part of them. Among hosts
    that have enough, the one with the fewest idle GPUs, so whole hosts stay free for bigger jobs."""
    idle = defaultdict(list)
    for g in usable:
        if g.held_jobs == 0 and g.gang_job == 0 and job.memory <= g.memory_usable:
            idle[g.host].append(g)
    hosts = sorted((len(gs), host) for host, gs in idle.items() if len(gs) >= job.gpus)
    return sorted(idle[hosts[0][1]], key=lambda g: g.queue)[: job.gpus] if hosts else []


def fits_fleet(memory: int, largest: int | None) -> str | None:
    """A refusal for a job no GPU of the fleet could ever hold; None to accept (also when no GPU was seen yet)."""
    if largest is None or memory <= largest:
        return None
    return f"the job needs {gib(memory)} of GPU memory; the largest GPU in the fleet has {gib(largest)}"


def fits_gang(memory: int, n: int, placeable: Sequence[tuple[str, int]]) -> str | None:
    """A refusal for a job of `n` GPUs when no host has `n` healthy GPUs, not draining, that can each hold
    `memory`; `placeable` is (host, memory_total) of such GPUs. None to accept (also when none was seen)."""
    if not placeable:
        return None
    per_host: dict[str, int] = defaultdict(int)
    for host, total in placeable:
        per_host[host] += total >= memory
    most, host = max((count, host) for host, count in per_host.items())
    if most >= n:
        return None
    return (
        f"the job needs {n} GPUs of one host with {gib(memory)} each; no host of the fleet has that "
        f"(the most: {most} on {host}, among GPUs that are healthy and not draining)"
    )


def free_for_job(g: GpuState) -> int:
    """Memory a job released to `g` now can count on.

    One job at a time: the job before it will have ended, so all but foreign memory is free.
    Several at a time: jobs released but not yet allocating count as used (the admission race).
    """
    return g.memory_usable if g.concurrency <= 1 else g.memory_usable - g.held_memory


def _has_room(g: GpuState, job: JobDemand) -> bool:
    if g.gang_job:
        return False
    if g.held_jobs < g.slots:
        return True
    return g.held_jobs < g.max_held and g.held_work + job.work < g.feed_seconds


def room(g: GpuState) -> int:
    """How many more jobs `g` could be given at most (short jobs fill the feed; others the slots)."""
    if g.gang_job:
        return 0
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


def _hold(g: GpuState, job: JobDemand, now: float, whole: bool = False) -> GpuState:
    """`g` once given `job`; `whole`: the job is one of a multi-GPU job's GPUs and takes it all."""
    start = now if g.concurrency > 1 or whole else max(g.free_at, now)
    latest = now if g.concurrency > 1 or whole else max(g.free_by, now)
    return replace(
        g,
        held_jobs=g.held_jobs + 1,
        held_work=g.held_work + job.work,
        held_memory=g.held_memory + job.memory,
        free_at=max(g.free_at, start + job.work),
        free_by=max(g.free_by, latest + job.time_limit),
        gang_job=job.id if whole else g.gang_job,
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
    if job.gpus > 1:
        return _why_gang_waiting(job, live)
    if all(job.memory > g.memory_usable for g in live):
        return f"no GPU has {gib(job.memory)} free"
    return "every GPU that can hold it is busy"


def _why_gang_waiting(job: JobDemand, live: list[GpuState]) -> str:
    fit = defaultdict(list)
    for g in live:
        if job.memory <= g.memory_usable:
            fit[g.host].append(g)
    most = max((len(gs) for gs in fit.values()), default=0)
    if most < job.gpus:
        return f"no host has {job.gpus} healthy GPUs with {gib(job.memory)} each now (at most {most})"
    return f"waiting for {job.gpus} GPUs of one host to be idle together"
