"""Where a lone job's dispatch spends its time, process by process: `python -m benchmarks.stage_trace`.

The job's events time the stages between its rows (benchmarks/run.py); this times the points between,
in the processes themselves (scheduler/stages.py names them): the stack runs with STAGE_TRACE set,
and lone no-op jobs are sent one at a time, each POST followed by the long poll for its end, as
`submit-job --wait` does. Printed, per point of the path: its p50 time from the leg's start (the POST,
or the end of the job's own work) and the p50 of its step from the point before, per dispatch.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

from benchmarks.database import open_database
from benchmarks.run import FINAL
from benchmarks.stack import Stack

# (label, which of its marks in one dispatch) in path order; a leg starts at its first row.
POST_LEG = [
    ("client.posted", 0),
    ("web.in", 0),
    ("submit.view", 0),
    ("submit.admitted", 0),
    ("submit.allowance", 0),
    ("submit.stored", 0),
    ("submit.committed", 0),
    ("submit.sent", 0),
    ("worker.received", 0),
    ("worker.started", 0),
    ("worker.claimed", 0),
]
ANSWER_LEG = [("submit.sent", 0), ("web.out", 0), ("client.answered", 0)]
END_LEG = [
    ("worker.ended", 0),
    ("worker.recorded", 0),
    ("worker.told", 0),
    ("wait.begun", -1),
    ("wait.read", -1),
    ("wait.answered", 0),
    ("web.out", -1),
    ("client.seen", 0),
]
LEGS = {"POST to the job running": POST_LEG, "the POST's answer": ANSWER_LEG, "job's end to the answer": END_LEG}


def run(stack: Stack, trace: str, n: int) -> None:
    with open(trace, "a", buffering=1) as out:

        def mark(label: str) -> None:
            out.write(f"{time.time():.6f} {os.getpid()} {label}\n")

        for _ in range(n):
            mark("client.posted")
            job = stack.http.post(f"{stack.url}/api/jobs/", json={"kind": "noop"}, timeout=30).json()
            mark("client.answered")
            while stack.wait(job["id"])["status"] not in FINAL:
                pass
            mark("client.seen")
            time.sleep(0.005)  # the worker's work after the answer (Celery's ack, its events) is not the next POST's


def dispatches(trace: str) -> list[dict[str, list[float]]]:
    """Per dispatch: each label's times, in order."""
    out: list[dict[str, list[float]]] = []
    with open(trace) as f:
        rows = sorted((float(at), label) for at, _, label in (line.split() for line in f))
    for at, label in rows:
        if label == "client.posted":
            out.append({})
        if out:
            out[-1].setdefault(label, []).append(at)
    return out


def table(runs: list[dict[str, list[float]]]) -> dict[str, list[dict]]:
    legs = {}
    for name, leg in LEGS.items():
        rows = []
        for i, (label, which) in enumerate(leg):
            since, step = [], []
            for run in runs:
                at = _at(run, label, which)
                start = _at(run, *leg[0])
                before = _at(run, *leg[i - 1]) if i else None
                if at is None or start is None:
                    continue
                since.append((at - start) * 1e3)
                if before is not None:
                    step.append((at - before) * 1e3)
            rows.append(
                {
                    "point": label if which == 0 else f"{label} (last)",
                    "n": len(since),
                    "since_start_p50_ms": statistics.median(since) if since else None,
                    "step_p50_ms": statistics.median(step) if step else None,
                }
            )
        legs[name] = rows
    return legs


def _at(run: dict[str, list[float]], label: str, which: int) -> float | None:
    times = run.get(label)
    return times[which] if times else None


def markdown(legs: dict[str, list[dict]], n: int, info: str) -> str:
    lines = [f"Stage trace: {n} lone no-op jobs, one at a time ({info})", ""]
    for name, rows in legs.items():
        lines += [f"| {name} | p50 since its start | p50 step from the point before | n |", "| --- | --- | --- | --- |"]
        for row in rows:
            since, step = row["since_start_p50_ms"], row["step_p50_ms"]
            lines.append(f"| {row['point']} | {_ms(since)} | {_ms(step)} | {row['n']} |")
        lines.append("")
    return "\n".join(lines)


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.2f} ms"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=300, help="dispatches timed (after 30 to warm up)")
    p.add_argument("--redis", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13"))
    p.add_argument("--database", default=os.environ.get("BENCH_DATABASE_URL"), help="as benchmarks/run.py takes it")
    p.add_argument("--out", help="write the Markdown table here too")
    p.add_argument("--json", help="write the figures here")
    p.add_argument("--trace", help="keep the processes' raw marks in this file")
    args = p.parse_args()
    database_url, database = open_database(args.database)
    trace = args.trace or os.path.join(tempfile.mkdtemp(prefix="gpuq-stages-"), "trace.log")
    open(trace, "w").close()
    os.environ["STAGE_TRACE"] = trace  # the stack's processes inherit it
    stack = Stack(args.redis, database_url)
    try:
        stack.wait_live(len(stack.workers))
        run(stack, trace, 30)
        os.truncate(trace, 0)
        run(stack, trace, args.n)
    finally:
        stack.stop()
    legs = table(dispatches(trace))
    text = markdown(legs, args.n, f"{database}, workers: {', '.join(stack.workers)}")
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(legs, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
