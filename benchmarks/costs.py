"""What one job costs the system, counted rather than timed: database statements and transactions per
job and process (scheduler/querycount.py), and the GPU's idle time between back-to-back jobs."""

from __future__ import annotations

import datetime
import statistics
import time

import redis

from scheduler.dispatch import keys
from scheduler.querycount import FLUSH_EVERY_S
from workers.launch import wait_until


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def counters(r: redis.Redis) -> dict[str, int]:
    return {k.decode(): int(v) for k, v in r.hgetall(keys.QUERY_COUNTS).items()}


def finished(r: redis.Redis) -> int:
    """Jobs finished so far, from the duration histogram that each finish counts in Redis (no query)."""
    return int(r.hget(keys.histogram("duration"), "count") or 0)


def per_job(stack, n: int, submit) -> dict:
    """Statements, explicit transactions and round trips per job, by process, over the `n` jobs that
    `submit()` sends (it returns their ids), and the seconds from the first submission to the last
    job finished: waiting for them reads Redis, so the wait itself is not counted."""
    r = redis.Redis.from_url(stack.redis_url)
    time.sleep(3 * FLUSH_EVERY_S)
    done0, before, t0 = finished(r), counters(r), time.perf_counter()
    ids = submit()
    submitted = time.perf_counter() - t0
    wait_until(lambda: finished(r) - done0 >= n, 900, f"{n} counted jobs", every=0.01)
    elapsed = time.perf_counter() - t0
    time.sleep(3 * FLUSH_EVERY_S)
    after = counters(r)
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    roles = sorted({k.split(":")[0] for k in delta})
    table = {}
    for role in roles:
        statements, commits = delta.get(f"{role}:statements", 0) / n, delta.get(f"{role}:commits", 0) / n
        # psycopg sends BEGIN and COMMIT as round trips of their own; a statement outside a transaction
        # commits by itself.
        table[role] = {"statements": statements, "transactions": commits, "round_trips": statements + 2 * commits}
    table["total"] = {k: sum(table[r][k] for r in roles) for k in ("statements", "transactions", "round_trips")}
    return {"n": n, "seconds": elapsed, "submit_s": submitted, "ids": ids, "per_job": table}


def idle_gaps(jobs: list[dict]) -> dict:
    """GPU idle between back-to-back jobs on one GPU queue: job i's `gpu_ended_at` to job i+1's
    `gpu_began_at`, both taken in the worker process; only where job i+1 was already released to
    that GPU when job i ended (otherwise the GPU had nothing to do, which is not our overhead)."""
    by_queue: dict[str, list[dict]] = {}
    for job in jobs:
        if (job.get("result") or {}).get("gpu_began_at"):
            by_queue.setdefault(job["queue"], []).append(job)
    gaps = []
    parts: dict[str, list[float]] = {name: [] for name, _, _ in GAP_PARTS}
    for held in by_queue.values():
        held.sort(key=lambda j: j["result"]["gpu_began_at"])
        for prev, nxt in zip(held, held[1:], strict=False):
            if _at(nxt["queued_at"]) <= prev["result"]["gpu_ended_at"]:
                gaps.append(nxt["result"]["gpu_began_at"] - prev["result"]["gpu_ended_at"])
                moments = _gap_moments(prev, nxt)
                for name, a, b in GAP_PARTS:
                    parts[name].append(moments[b] - moments[a])
    if not gaps:
        return {"n": 0}
    return {
        "n": len(gaps),
        "p50_ms": pct(gaps, 50) * 1e3,
        "p99_ms": pct(gaps, 99) * 1e3,
        "mean_ms": statistics.mean(gaps) * 1e3,
        "parts_p50_ms": {name: pct(values, 50) * 1e3 for name, values in parts.items()},
    }


# Where a gap goes, from the jobs' own times (one host clock): the attempt's end as the worker noted it
# (`finished_at`) and the next attempt's start (`started_at`: taken as its claim's statement is sent, or
# for a job claimed early, as it begins: workers/early_claim.py).
GAP_PARTS = (
    ("kernels ended to the attempt's end noted", "ended", "finished"),
    ("to the next claim sent, or the next job begun", "finished", "claimed"),
    ("that claim (or Redis for one claimed early) and the start", "claimed", "began"),
)


def _gap_moments(prev: dict, nxt: dict) -> dict[str, float]:
    return {
        "ended": prev["result"]["gpu_ended_at"],
        "finished": _at(prev["finished_at"]),
        "claimed": _at(nxt["started_at"]),
        "began": nxt["result"]["gpu_began_at"],
    }


def _at(iso: str) -> float:
    return datetime.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def fetch_jobs(stack, ids: list[int]) -> list[dict]:
    """Jobs by id through the list API, a thousand a page, newest first, until all are seen."""
    wanted, found, offset = set(ids), [], 0
    while wanted and offset < 10 * len(ids) + 1000:
        page = stack.http.get(f"{stack.url}/api/jobs/", params={"limit": 1000, "offset": offset}, timeout=120)
        rows = page.json()["results"]
        if not rows:
            break
        found += [j for j in rows if j["id"] in wanted]
        wanted -= {j["id"] for j in rows}
        offset += len(rows)
    return found
