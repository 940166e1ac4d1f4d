"""Where a lone job's dispatch spends its time, process by process: `python -m benchmarks.stage_trace`.

The job's events time the stages between its rows (benchmarks/run.py); this times the points between,
in the processes themselves (scheduler/stages.py names them): the stack runs with STAGE_TRACE set,
and lone no-op jobs are sent one at a time, each POST followed by the long poll for its end, as
`submit-job --wait` does. Printed, per point of the path: its p50 time from the leg's start (the POST,
or the end of the job's own work) and the p50 of its step from the point before, per dispatch. With
`--profile DIR`, py-spy samples the web and worker processes meanwhile, and the functions most often
on their busy stacks are printed too (the samples where a process waits on a socket or lock are left out).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import contextmanager, nullcontext

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


# A sample whose innermost Python frame waits in C (a socket, a lock, a queue, the event loop): not CPU.
# py-spy sees no native frames here, so these are told apart by name.
IDLE = re.compile(
    r"^(?:\S+\.)?(select|poll|epoll|wait|_wait_for_tstate_lock|acquire|recv|_recv|recv_into|read|accept|sleep"
    r"|can_read|_read_from_socket|_worker|get) \("
)


@contextmanager
def profiled(pids: dict[str, int], folder: str):
    """py-spy samples each process in `pids` (name -> pid) while the block runs: `folder`/<name>.txt."""
    spies = [
        subprocess.Popen(
            [_py_spy(), "record", "--pid", str(pid), "--rate", "500", "--format", "raw", "--nonblocking"]
            + ["--output", os.path.join(folder, f"{name}.txt")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name, pid in pids.items()
    ]
    time.sleep(1)  # attached
    try:
        yield
    finally:
        for spy in spies:
            spy.send_signal(signal.SIGINT)  # py-spy writes what it sampled and exits
        for spy in spies:
            spy.wait(timeout=30)


OURS = ("scheduler", "workers", "gpu_tasks", "benchmarks", "cli")


def _py_spy() -> str:
    """py-spy beside this Python (a venv, the GPU host's bundle), else on the PATH."""
    beside = os.path.join(os.path.dirname(sys.executable), "py-spy")
    return beside if os.path.exists(beside) else shutil.which("py-spy") or "py-spy"


def hot(raw: str, top: int = 12) -> tuple[int, list[tuple[str, float]], list[tuple[str, float]]]:
    """From py-spy's raw output: the busy samples; where they were, by package of the innermost frame
    (ours, or the library's); and the innermost functions most often there (shares of the busy ones)."""
    packages: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    with open(raw) as f:
        for line in f:
            stack, _, n = line.rstrip().rpartition(" ")
            leaf = stack.split(";")[-1]
            if IDLE.match(leaf):
                continue
            packages[_package(leaf)] += int(n)
            functions[re.sub(r":\d+\)$", ")", leaf)] += int(n)
    busy = sum(packages.values())
    share = [(name, k / busy) for name, k in packages.most_common()] if busy else []
    return busy, share, [(name, k / busy) for name, k in functions.most_common(top)] if busy else []


def _package(frame: str) -> str:
    path = frame[frame.rfind("(") + 1 :]
    first = path.split("/", 1)[0] if "/" in path else "python (standard library)"
    return f"{first} (ours)" if first in OURS else first


def profile_markdown(folder: str, pids: dict[str, int]) -> str:
    lines = []
    for name in pids:
        raw = os.path.join(folder, f"{name}.txt")
        busy, packages, functions = hot(raw) if os.path.exists(raw) else (0, [], [])
        if not busy:
            continue  # idle throughout: the other worker, a web process no request reached
        lines += [
            f"**{name}**: {busy} busy samples at 500/s",
            "",
            "| where (innermost frame) | share |",
            "| --- | --- |",
        ]
        lines += [f"| {package} | {part:.0%} |" for package, part in packages]
        lines += [f"| · `{function}` | {part:.0%} |" for function, part in functions]
        lines.append("")
    return "\n".join(lines)


def pids_of(stack: Stack) -> dict[str, int]:
    """The web workers and each GPU worker's main and pool processes."""
    found = {f"web-{i}": pid for i, pid in enumerate(_children(stack.web.popen.pid))}
    for name, proc in stack.workers.items():
        found[f"{name}-main"] = proc.popen.pid
        found |= {f"{name}-pool-{i}": pid for i, pid in enumerate(_children(proc.popen.pid))}
    return found


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=300, help="dispatches timed (after 30 to warm up)")
    p.add_argument("--redis", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13"))
    p.add_argument("--database", default=os.environ.get("BENCH_DATABASE_URL"), help="as benchmarks/run.py takes it")
    p.add_argument("--out", help="write the Markdown table here too")
    p.add_argument("--json", help="write the figures here")
    p.add_argument("--trace", help="keep the processes' raw marks in this file")
    p.add_argument("--profile", help="sample the web and worker processes with py-spy meanwhile; raw output here")
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
        pids = pids_of(stack) if args.profile else {}
        if args.profile:
            os.makedirs(args.profile, exist_ok=True)
        with profiled(pids, args.profile) if args.profile else nullcontext():
            run(stack, trace, args.n)
    finally:
        stack.stop()
    legs = table(dispatches(trace))
    text = markdown(legs, args.n, f"{database}, workers: {', '.join(stack.workers)}")
    if args.profile:
        text += "\n" + profile_markdown(args.profile, pids)
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
