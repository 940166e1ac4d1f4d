"""Late binding against pushing at submit time, simulated (no GPU, no services needed).

A fixed-seed trace of several users' jobs is replayed on N simulated GPUs. "push" commits each job
to a GPU's FIFO queue when it is submitted (a plain Celery setup); "late" keeps jobs waiting and, when
a GPU frees, releases the next job by priority, then fair share, then age, with the router's own
`route` and the fair-share `interleave`. Prints mean wait per user, makespan and GPU idle time.
A second trace adds jobs on 2 and 4 GPUs among a stream of one-GPU jobs: their mean and worst wait
with and without reservations (backfill), and the GPU idle time reserving costs.
    python -m benchmarks.sharing_sim [--gpus 4] [--seed 1]
"""

from __future__ import annotations

import argparse
import heapq
import random
from dataclasses import dataclass, field

from scheduler.fleet.router import GiB, GpuState, JobDemand, route
from scheduler.jobs.fairshare import interleave


@dataclass
class SimJob:
    id: int
    user: str
    submit: float
    work: float
    priority: int = 0
    gpus: int = 1
    start: float = -1.0
    end: float = -1.0

    @property
    def limit(self) -> float:
        return 2 * self.work  # time limits at twice the estimate, as a careful user sets them


@dataclass
class SimResult:
    jobs: list[SimJob]
    first_latest: float = float("inf")  # the gang job's bound from its first reservation
    reserved_for: set[int] = field(default_factory=set)


def trace(seed: int) -> list[SimJob]:
    """A flood from one user, a steady stream from two more, and a few urgent jobs from a fourth."""
    rng, jobs = random.Random(seed), []
    for i in range(400):
        jobs.append(SimJob(len(jobs), "flood", 0.0 + i * 0.01, rng.uniform(5, 15)))
    for user in ("steady1", "steady2"):
        t = 0.0
        for _ in range(40):
            t += rng.expovariate(1 / 30)
            jobs.append(SimJob(len(jobs), user, t, rng.uniform(2, 20)))
    for _ in range(8):
        jobs.append(SimJob(len(jobs), "urgent", rng.uniform(50, 600), rng.uniform(1, 4), priority=5))
    return sorted(jobs, key=lambda j: (j.submit, j.id))


def simulate_push(jobs: list[SimJob], n_gpus: int) -> list[SimJob]:
    free_at = [0.0] * n_gpus
    backlog = [0.0] * n_gpus
    for job in jobs:  # least backlog at submit time, then FIFO on that GPU
        g = min(range(n_gpus), key=lambda i: (max(free_at[i], job.submit), i))
        job.start = max(free_at[g], job.submit)
        job.end = free_at[g] = job.start + job.work
        backlog[g] += job.work
    return jobs


def simulate_late(jobs: list[SimJob], n_gpus: int, reserve: bool = True) -> SimResult:
    """Late binding on one host of `n_gpus` GPUs, one job per GPU at a time, with the real router."""
    pending, waiting = list(jobs), []
    running: list[tuple[float, int]] = []  # (end, job id)
    on_gpu: dict[int, SimJob] = {}
    usage: dict[str, float] = {}
    by_id, result = {j.id: j for j in jobs}, SimResult(jobs)
    while pending or waiting or running:
        now = min(pending[0].submit if pending else float("inf"), running[0][0] if running else float("inf"))
        while pending and pending[0].submit <= now:
            waiting.append(pending.pop(0))
        while running and running[0][0] <= now:
            job = by_id[heapq.heappop(running)[1]]
            usage[job.user] = usage.get(job.user, 0.0) + job.work * job.gpus
            on_gpu = {g: j for g, j in on_gpu.items() if j is not job}
        if waiting and len(on_gpu) < n_gpus:
            for job in _release(waiting, on_gpu, usage, n_gpus, now, reserve, result):
                heapq.heappush(running, (job.end, job.id))
    return result


def _release(waiting, on_gpu, usage, n_gpus, now, reserve, result) -> list[SimJob]:
    by_id, started = {j.id: j for j in waiting}, []
    order = _release_order(waiting, usage)
    for d in route(
        [JobDemand(j.id, GiB, j.work, j.gpus, j.limit) for j in order],
        _gpus(on_gpu, n_gpus, now),
        now=now,
        reserve_head=reserve,
    ):
        job = by_id[d.job_id]
        if d.reservation and job.gpus > 1 and job.id not in result.reserved_for:
            result.reserved_for.add(job.id)
            result.first_latest = min(result.first_latest, d.reservation.latest)
        if d.queue is None:
            continue
        job.start, job.end = now, now + job.work
        waiting.remove(job)
        on_gpu.update({int(q[1:]): job for q in (d.gang or (d.queue,))})
        started.append(job)
    return started


def _release_order(waiting: list[SimJob], usage: dict[str, float]) -> list[SimJob]:
    queues: dict[str, list[SimJob]] = {}
    for j in sorted(waiting, key=lambda j: (-j.priority, j.submit, j.id)):
        queues.setdefault(j.user, []).append(j)
    users = sorted(queues)
    return interleave(
        {i: queues[u] for i, u in enumerate(users)},
        {i: usage.get(u, 0.0) for i, u in enumerate(users)},
        lambda j: j.priority,
        lambda j: j.work * j.gpus,
    )


def _gpus(on_gpu: dict[int, SimJob], n_gpus: int, now: float) -> list[GpuState]:
    """The host's GPUs as the releaser sees them: what each runs, and when that ends (by estimate, by limit)."""
    out = []
    for g in range(n_gpus):
        job = on_gpu.get(g)
        held = {}
        if job:
            held = dict(held_jobs=1, held_work=job.work, free_at=job.start + job.work, free_by=job.start + job.limit)
            held["gang_job"] = job.id if job.gpus > 1 else 0
        out.append(GpuState(f"g{g}", f"GPU-{g}", "sim", 80 * GiB, 80 * GiB, 0, True, False, now, slots=1, **held))
    return out


def gang_trace(seed: int) -> list[SimJob]:
    """One-GPU jobs from three users keeping 4 GPUs busy, and a few jobs on 2 and 4 GPUs from a fourth."""
    rng, jobs = random.Random(seed), []
    for user in ("small1", "small2", "small3"):
        t = 0.0
        for _ in range(120):
            t += rng.expovariate(1 / 12)
            jobs.append(SimJob(len(jobs), user, t, rng.uniform(5, 30)))
    for i in range(10):
        jobs.append(
            SimJob(len(jobs), "big", 60.0 + i * 120 + rng.uniform(0, 60), rng.uniform(20, 60), gpus=(2, 4)[i % 2])
        )
    return sorted(jobs, key=lambda j: (j.submit, j.id))


def starved_stream(reserve: bool) -> SimResult:
    """2 GPUs kept busy by a stream of 10 s one-GPU jobs (one every 4 s for 400 s) and one 2-GPU job at t=15."""
    jobs = [SimJob(i, "stream", 4.0 * i, 10.0) for i in range(100)]
    jobs.append(SimJob(100, "big", 15.0, 20.0, gpus=2))
    return simulate_late(sorted(jobs, key=lambda j: (j.submit, j.id)), 2, reserve)


def report(name: str, jobs: list[SimJob], n_gpus: int) -> list[str]:
    makespan = max(j.end for j in jobs)
    busy = sum(j.work * j.gpus for j in jobs)
    users = sorted({j.user for j in jobs})
    waits = {
        u: sum(j.start - j.submit for j in jobs if j.user == u) / sum(1 for j in jobs if j.user == u) for u in users
    }
    cells = " | ".join(f"{waits[u]:.0f}" for u in users)
    return [f"| {name} | {cells} | {makespan:.0f} | {n_gpus * makespan - busy:.0f} |"]


def gang_row(name: str, jobs: list[SimJob], n_gpus: int) -> str:
    big = [j.start - j.submit for j in jobs if j.gpus > 1]
    small = [j.start - j.submit for j in jobs if j.gpus == 1]
    makespan = max(j.end for j in jobs)
    idle = n_gpus * makespan - sum(j.work * j.gpus for j in jobs)
    return (
        f"| {name} | {sum(big) / len(big):.0f} | {max(big):.0f} | {sum(small) / len(small):.0f} "
        f"| {makespan:.0f} | {idle:.0f} |"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gpus", type=int, default=4)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    users = sorted({j.user for j in trace(args.seed)})
    print(f"{len(trace(args.seed))} jobs, {args.gpus} simulated GPUs, seed {args.seed}; times in simulated seconds\n")
    print("| policy | " + " | ".join(f"mean wait: {u}" for u in users) + " | makespan | GPU idle (GPU-s) |")
    print("| --- |" + " --- |" * (len(users) + 2))
    for line in report("push at submit (plain Celery)", simulate_push(trace(args.seed), args.gpus), args.gpus):
        print(line)
    for line in report(
        "late binding + priority + fair share", simulate_late(trace(args.seed), args.gpus).jobs, args.gpus
    ):
        print(line)
    print(
        f"\nJobs on several GPUs: {len(gang_trace(args.seed))} jobs on one host of 4 simulated GPUs, seed {args.seed}\n"
    )
    print(
        "| late binding | big jobs: mean wait | big jobs: worst wait | one-GPU jobs: mean wait | makespan | GPU idle (GPU-s) |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for name, on in (("without reservation", False), ("with reservation (backfill)", True)):
        print(gang_row(name, simulate_late(gang_trace(args.seed), 4, reserve=on).jobs, 4))
    for on in (False, True):
        run = starved_stream(on)
        big = next(j for j in run.jobs if j.gpus > 1)
        bound = f", bound {run.first_latest:.0f} s" if on else ""
        print(
            f"\nstream of one-GPU jobs on 2 GPUs, reservation {'on' if on else 'off'}: the 2-GPU job submitted at 15 s starts at {big.start:.0f} s{bound}"
        )


if __name__ == "__main__":
    main()
