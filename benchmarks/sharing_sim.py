"""Late binding against pushing at submit time, simulated (no GPU, no services needed).

A fixed-seed trace of several users' jobs is replayed on N simulated GPUs. "push" commits each job
to a GPU's FIFO queue when it is submitted (a plain Celery setup); "late" keeps jobs waiting and, when
a GPU frees, releases the next job by priority, then fair share, then age, with the router's own
`route` and the fair-share `interleave`. Prints mean wait per user, makespan and GPU idle time.
    python -m benchmarks.sharing_sim [--gpus 4] [--seed 1]
"""

from __future__ import annotations

import argparse
import heapq
import random
from dataclasses import dataclass

from scheduler.fleet.router import GiB, GpuState, JobDemand, route
from scheduler.jobs.fairshare import interleave


@dataclass
class SimJob:
    id: int
    user: str
    submit: float
    work: float
    priority: int = 0
    start: float = -1.0
    end: float = -1.0


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


def simulate_late(jobs: list[SimJob], n_gpus: int) -> list[SimJob]:
    pending = list(jobs)
    waiting: list[SimJob] = []
    running: list[tuple[float, int, int]] = []  # (end, gpu, job id)
    idle = set(range(n_gpus))
    usage: dict[str, float] = {}
    now = 0.0
    by_id = {j.id: j for j in jobs}
    while pending or waiting or running:
        next_submit = pending[0].submit if pending else float("inf")
        next_end = running[0][0] if running else float("inf")
        now = min(next_submit, next_end)
        while pending and pending[0].submit <= now:
            waiting.append(pending.pop(0))
        while running and running[0][0] <= now:
            _, g, jid = heapq.heappop(running)
            idle.add(g)
            usage[by_id[jid].user] = usage.get(by_id[jid].user, 0.0) + by_id[jid].work
        if not idle or not waiting:
            continue
        queues: dict[str, list[SimJob]] = {}
        for j in sorted(waiting, key=lambda j: (-j.priority, j.submit, j.id)):
            queues.setdefault(j.user, []).append(j)
        users = sorted(queues)
        order = interleave(
            {i: queues[u] for i, u in enumerate(users)},
            {i: usage.get(u, 0.0) for i, u in enumerate(users)},
            lambda j: j.priority,
            lambda j: j.work,
        )
        gpus = [
            GpuState(f"g{g}", f"GPU-{g}", "sim", 80 * GiB, 80 * GiB, 0, True, False, now, slots=1) for g in sorted(idle)
        ]
        for d in route([JobDemand(j.id, GiB, j.work) for j in order[: len(idle)]], gpus, now=now):
            if d.queue is None:
                continue
            job, g = by_id[d.job_id], int(d.queue[1:])
            job.start, job.end = now, now + job.work
            waiting.remove(job)
            idle.discard(g)
            heapq.heappush(running, (job.end, g, job.id))
    return jobs


def report(name: str, jobs: list[SimJob], n_gpus: int) -> list[str]:
    makespan = max(j.end for j in jobs)
    busy = sum(j.work for j in jobs)
    users = sorted({j.user for j in jobs})
    waits = {
        u: sum(j.start - j.submit for j in jobs if j.user == u) / sum(1 for j in jobs if j.user == u) for u in users
    }
    cells = " | ".join(f"{waits[u]:.0f}" for u in users)
    return [f"| {name} | {cells} | {makespan:.0f} | {n_gpus * makespan - busy:.0f} |"]


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
    for line in report("late binding + priority + fair share", simulate_late(trace(args.seed), args.gpus), args.gpus):
        print(line)


if __name__ == "__main__":
    main()
