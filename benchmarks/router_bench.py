"""Router figures on the CPU, no services: decision latency, makespan against LPT, OOMs under memory pressure.

    python benchmarks/router_bench.py

(a) one routing decision over 64 GPUs' states, p50/p99 over many calls;
(b) a fixed-seed mix of job sizes on 2 simulated GPUs (one job at a time, 2 slots each, jobs released
    in order as slots free): makespan per policy next to the lower bound max(total/G, longest) and the
    makespan of the LPT schedule (which knows every job in advance; the router does not);
(c) jobs whose memory is near a GPU's capacity, 2 sharing each GPU: the OOMs each policy would cause.
"""

from __future__ import annotations

import heapq
import random
import statistics
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scheduler.fleet.router import POLICIES, GiB, GpuState, JobDemand, route  # noqa: E402

SEED = 20260101
NOW = 1000.0


def fleet(n: int, memory: int = 80 * GiB, slots: int = 2, concurrency: int = 1) -> list[GpuState]:
    return [
        GpuState(
            f"gpu.h{i // 8}.{i:08x}",
            f"GPU-{i:08x}",
            f"h{i // 8}",
            memory,
            memory,
            0.0,
            True,
            False,
            NOW,
            slots=slots,
            concurrency=concurrency,
        )
        for i in range(n)
    ]


def decision_latency(calls: int = 20000) -> tuple[float, float]:
    """p50 and p99 of one job's decision over 64 GPUs with random loads, in microseconds."""
    rng = random.Random(SEED)
    gpus = [
        replace(
            g,
            held_jobs=rng.randint(0, 1),
            held_work=rng.uniform(0, 30),
            utilization=rng.uniform(0, 100),
            memory_usable=rng.randint(10, 80) * GiB,
            last_seen=NOW - rng.uniform(0, 8),
        )
        for g in fleet(64)
    ]
    samples = []
    for i in range(calls):
        job = [JobDemand(i, rng.randint(1, 60) * GiB, rng.uniform(0.1, 10))]
        t0 = time.perf_counter_ns()
        route(job, gpus, now=NOW)
        samples.append((time.perf_counter_ns() - t0) / 1000)
    q = statistics.quantiles(samples, n=100)
    return q[49], q[98]


@dataclass
class SimGpu:
    state: GpuState
    held: list[JobDemand] = field(default_factory=list)  # in release order; the first `concurrency` run
    running: dict[int, float] = field(default_factory=dict)  # job id -> finish time


@dataclass
class Outcome:
    makespan: float = 0.0
    ooms: int = 0


def simulate(jobs: list[JobDemand], gpus: list[GpuState], policy: str) -> Outcome:
    """Release jobs in order as slots free; each GPU runs up to its concurrency; OOM where memory overflows."""
    sims, waiting, out = {g.queue: SimGpu(g) for g in gpus}, list(jobs), Outcome()
    now, finishing = 0.0, []  # heap of (finish time, queue, job id)
    while waiting or finishing:
        waiting = _release(waiting, sims, policy, now)
        for sim in sims.values():
            out.ooms += _start(sim, now, finishing)
        if finishing:
            now, queue, job_id = heapq.heappop(finishing)
            _finish(sims[queue], job_id)
            out.makespan = now
        elif waiting:
            raise RuntimeError(f"{policy}: {len(waiting)} jobs can never be placed")
    return out


def _release(waiting: list[JobDemand], sims: dict[str, SimGpu], policy: str, now: float) -> list[JobDemand]:
    states = [_state(sim, now) for sim in sims.values()]
    left = []
    for job, d in zip(waiting, route(waiting, states, now=NOW, policy=policy), strict=True):
        (sims[d.queue].held.append(job) if d.queue else left.append(job))
    return left


def _state(sim: SimGpu, now: float) -> GpuState:
    queued = [j for j in sim.held if j.id not in sim.running]
    remaining = sum(t - now for t in sim.running.values()) + sum(j.work for j in queued)
    return replace(sim.state, held_jobs=len(sim.held), held_work=remaining, held_memory=sum(j.memory for j in sim.held))


def _start(sim: SimGpu, now: float, finishing: list) -> int:
    """Start what the GPU has room to run; count the starts whose memory overflows (they fail at once)."""
    ooms = 0
    for job in sim.held[: sim.state.concurrency]:
        if job.id in sim.running:
            continue
        # A job that failed with OOM at `now` never held its memory.
        in_use = sum(j.memory for j in sim.held if sim.running.get(j.id, now) > now)
        oom = in_use + job.memory > sim.state.memory_usable
        ooms += oom
        sim.running[job.id] = now if oom else now + job.work
        heapq.heappush(finishing, (sim.running[job.id], sim.state.queue, job.id))
    return ooms


def _finish(sim: SimGpu, job_id: int) -> None:
    sim.held = [j for j in sim.held if j.id != job_id]
    del sim.running[job_id]


def lpt_makespan(works: list[float], machines: int) -> float:
    loads = [0.0] * machines
    for w in sorted(works, reverse=True):
        heapq.heapreplace(loads, loads[0] + w)
    return max(loads)


def size_mix(n: int = 60) -> list[JobDemand]:
    """Mostly short jobs, some medium, a few long: work in GPU seconds."""
    rng = random.Random(SEED)
    spans = [(0.5, 2.0)] * 14 + [(5.0, 15.0)] * 5 + [(40.0, 80.0)]
    return [JobDemand(i, 4 * GiB, round(rng.uniform(*rng.choice(spans)), 2)) for i in range(n)]


def memory_mix(n: int = 40) -> list[JobDemand]:
    """Jobs of 30 to 70 GiB on 80 GiB GPUs shared by 2: some pairs fit, many do not."""
    rng = random.Random(SEED + 1)
    return [JobDemand(i, rng.randint(30, 70) * GiB, round(rng.uniform(1.0, 5.0), 2)) for i in range(n)]


def main() -> int:
    p50, p99 = decision_latency()
    print(f"## Router benchmark (deterministic, seed {SEED})\n")
    print("| figure | value |\n| --- | --- |")
    print(f"| (a) one decision over 64 GPUs, p50 | {p50:.1f} us |")
    print(f"| (a) one decision over 64 GPUs, p99 | {p99:.1f} us (target < 1000 us) |")
    jobs = size_mix()
    works = [j.work for j in jobs]
    bound = max(sum(works) / 2, max(works))
    print(f"| (b) {len(jobs)} jobs, {sum(works):.1f} s of work on 2 GPUs: lower bound | {bound:.1f} s |")
    print(
        f"| (b) LPT schedule (knows all jobs in advance) | {lpt_makespan(works, 2):.1f} s "
        f"({lpt_makespan(works, 2) / bound:.3f} x bound) |"
    )
    for policy in POLICIES:
        span = simulate(jobs, fleet(2), policy).makespan
        print(f"| (b) {policy} makespan | {span:.1f} s ({span / bound:.3f} x bound) |")
    jobs = memory_mix()
    for policy in POLICIES:
        out = simulate(jobs, fleet(2, slots=2, concurrency=2), policy)
        print(
            f"| (c) {len(jobs)} jobs of 30-70 GiB, 2 per 80 GiB GPU: {policy} | {out.ooms} OOMs, "
            f"makespan {out.makespan:.1f} s |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
