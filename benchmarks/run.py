"""The benchmark suite, one command: `python -m benchmarks.run [--quick] [--out FILE]`.

Each figure of the full path (HTTP through gunicorn, database, router, Celery, worker) is measured
next to its floor in the same run: plain Celery on the same Redis, and bare CuPy for GPU time.
Without a GPU the GPU parts are skipped, and the table says so.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid

import redis

from benchmarks import control_plane, costs
from benchmarks.costs import pct
from benchmarks.database import commit_cost, open_database
from benchmarks.stack import Stack, versions
from scheduler.dispatch import keys
from workers.launch import ROOT, Proc, wait_until

FINAL = {"succeeded", "failed", "cancelled"}


class Plain:
    """Plain Celery workers, pinned like ours, on another DB of the same Redis."""

    def __init__(self, redis_url: str, gpus: list[str], n_workers: int):
        # A DB number of its own beside ours, so that two benchmarks on one Redis keep apart.
        base, db = redis_url.rsplit("/", 1)
        self.url = f"{base}/{(int(db or 0) + 8) % 16}"
        self.r = redis.Redis.from_url(self.url, socket_timeout=600)  # redis-py would cut a long BLPOP at 5 s
        self.r.flushdb()
        env = {**os.environ, "PLAIN_BROKER_URL": self.url}
        self.queues = [f"plain.{i}" for i in range(n_workers)]
        self.procs = [
            Proc(
                f"plain-worker{i}",
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "benchmarks.plain_celery",
                    "worker",
                    "-Q",
                    q,
                    "-c",
                    "1",
                    "-P",
                    "prefork",
                    "-l",
                    "WARNING",
                    "--without-gossip",
                    "--without-mingle",
                ],
                {**env, **({"CUDA_VISIBLE_DEVICES": gpus[i]} if gpus else {"PLAIN_CPU": "1"})},
            )
            for i, q in enumerate(self.queues)
        ]
        from benchmarks import plain_celery

        plain_celery.app.conf.broker_url = self.url
        self.app = plain_celery
        for q in self.queues:  # one round trip each: workers up and warm
            self.round_trip(q, timeout=180)

    def round_trip(self, queue: str, timeout: float = 30) -> float:
        key = f"done:{uuid.uuid4().hex}"
        t0 = time.perf_counter()
        self.app.noop.apply_async(args=[key], queue=queue)
        if self.r.blpop(key, timeout=timeout) is None:
            raise RuntimeError(f"plain Celery round trip on {queue} timed out")
        return time.perf_counter() - t0

    def throughput(self, n: int, task: str = "noop", **kwargs) -> float:
        key = f"done:{uuid.uuid4().hex}"
        sig = getattr(self.app, task)
        t0 = time.perf_counter()
        for i in range(n):
            sig.apply_async(args=[key], kwargs=kwargs, queue=self.queues[i % len(self.queues)])
        wait_until(lambda: self.r.llen(key) >= n, 600, f"{n} plain tasks", every=0.01)
        return n / (time.perf_counter() - t0)

    def stop(self) -> None:
        for p in self.procs:
            p.stop()


# Where a dispatch's time goes, from the job's own timestamps (all processes share this host's clock).
STAGES = (
    ("submit to running", "posted", "running"),
    ("request to row", "posted", "created"),
    ("row to released", "created", "queued"),
    ("released to POST answered", "queued", "answered"),
    ("released to running (Celery, claim)", "queued", "running"),
    ("running to succeeded", "running", "succeeded"),
    ("succeeded to seen by the waiting client", "succeeded", "seen"),
)


def dispatch(stack: Stack, plain: Plain, n: int) -> dict:
    ours, stages = [], []
    for _ in range(n):
        t0, posted = time.perf_counter(), time.time()
        job = stack.http.post(f"{stack.url}/api/jobs/", json={"kind": "noop"}, timeout=30).json()
        answered = time.time()
        # As `submit-job --wait` does: one long poll for the final status (the stages come from the events).
        while (seen := stack.wait(job["id"]))["status"] not in FINAL:
            pass
        ours.append(time.perf_counter() - t0)
        stages.append({"posted": posted, "answered": answered, "seen": time.time(), **_moments(seen)})
    floor = [plain.round_trip(plain.queues[0]) for _ in range(n)]
    # every dispatch, for finding where the tail comes from: seconds since the first, total and stages in ms
    samples = [
        {"at_s": s["posted"] - stages[0]["posted"], "total_ms": (s["seen"] - s["posted"]) * 1e3}
        | {name: (s[b] - s[a]) * 1e3 for name, a, b in STAGES if a in s and b in s}
        for s in stages
    ]
    return {
        "ours_p50": pct(ours, 50),
        "ours_p99": pct(ours, 99),
        "plain_p50": pct(floor, 50),
        "plain_p99": pct(floor, 99),
        "stages_p50_ms": _stage_pct(samples, 50),
        "stages_p99_ms": _stage_pct(samples, 99),
        "samples": samples,
    }


def post_noop(stack: Stack) -> int:
    return stack.http.post(f"{stack.url}/api/jobs/", json={"kind": "noop"}, timeout=30).json()["id"]


def _stage_pct(samples: list[dict], q: float) -> dict[str, float]:
    return {name: pct([s[name] for s in samples if name in s], q) for name, _, _ in STAGES}


def _moments(job: dict) -> dict[str, float]:
    at = {e["status"]: e["at"] for e in job["events"] if e["status"]} | {"created": job["created_at"]}
    return {k: datetime.datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp() for k, v in at.items()}


def throughput(stack: Stack, plain: Plain, n: int, batch: int = 500) -> dict:
    def submit() -> list[int]:
        return [j["id"] for s in range(0, n, batch) for j in stack.submit([{"kind": "noop"}] * min(batch, n - s))]

    counted = costs.per_job(stack, n, submit)
    gaps = costs.idle_gaps(costs.fetch_jobs(stack, counted.pop("ids")))
    ours = n / counted["seconds"]
    return {"ours": ours, "plain": plain.throughput(n), "submit_s": counted["submit_s"], "idle_gap": gaps} | {
        "counts": counted
    }


def gpu_efficiency(stack: Stack, n: int = 8192, jobs_per_gpu: int = 12, repeat: int = 20) -> dict:
    bare = _bare_cupy(stack.gpus[0], n, repeat)
    sampler = _UtilSampler(stack.gpus)
    specs = [{"kind": "matmul", "params": {"n": n, "dtype": "float32", "repeat": repeat}}] * (
        jobs_per_gpu * len(stack.gpus)
    )
    jobs = stack.submit(specs)
    sampler.start()
    wait_until(
        lambda: (
            stack.count("succeeded") >= sum(1 for _ in jobs)
            and all(stack.job(j["id"])["status"] in FINAL for j in jobs)
        ),
        600,
        "matmul jobs",
        every=0.2,
    )
    sampler.stop()
    done = [stack.job(j["id"]) for j in jobs]
    per_job = statistics.median(j["result"]["gpu_time_s"] for j in done if j["status"] == "succeeded")
    bare_busy = _bare_utilization(stack.gpus[0], n, repeat, jobs_per_gpu)
    return {
        "bare_s": bare,
        "per_job_s": per_job,
        "ratio": bare / per_job,
        "utilization": sampler.mean_busy(),
        "bare_utilization": bare_busy,
        "utilization_ratio": sampler.mean_busy() / bare_busy if bare_busy else None,
        "idle_gap": costs.idle_gaps(done),
    }


def _bare_cupy(gpu: str, n: int, repeat: int) -> float:
    code = (
        "import json,statistics; from gpu_tasks import runtime; xp=runtime.array_module(); runtime.warm_up(xp);"
        f"t=[runtime.execute('matmul', dict(n={n}, dtype='float32', seed=0, repeat={repeat}), xp)['gpu_time_s'] for _ in range(5)];"
        "print(json.dumps(statistics.median(t[1:])))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": gpu},
    )
    return float(out.stdout.strip().splitlines()[-1])


def _bare_utilization(gpu: str, n: int, repeat: int, jobs: int) -> float:
    """NVML utilization of the bare CuPy loop running the same jobs back to back, sampled exactly as
    ours is (_UtilSampler): the floor that our utilization is a share of."""
    code = (
        "import sys; from gpu_tasks import runtime; xp=runtime.array_module(); runtime.warm_up(xp);"
        "print('go', flush=True);"
        f"[runtime.execute('matmul', dict(n={n}, dtype='float32', seed=0, repeat={repeat}), xp) for _ in range({jobs})];"
        "print('done', flush=True)"
    )
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": gpu}
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    while proc.stdout.readline().strip() != "go":
        if proc.poll() is not None:
            raise RuntimeError("the bare CuPy loop exited before it started")
    sampler = _UtilSampler([gpu])
    sampler.start()
    proc.wait(timeout=600)
    sampler.stop()
    return sampler.mean_busy()


class _UtilSampler(threading.Thread):
    """NVML utilization of every GPU, sampled every 100 ms while the GPUs are saturated."""

    def __init__(self, gpus: list[str]):
        super().__init__(daemon=True)
        import pynvml

        pynvml.nvmlInit()
        self.nvml = pynvml
        self.handles = [pynvml.nvmlDeviceGetHandleByUUID(u) for u in gpus]
        self.samples: list[list[int]] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.1):
            self.samples.append([self.nvml.nvmlDeviceGetUtilizationRates(h).gpu for h in self.handles])

    def stop(self) -> None:
        self.stopped.set()
        self.join()

    def mean_busy(self) -> float:
        # Drop the ramp-up and ramp-down (first and last second) where not every GPU has work yet.
        window = self.samples[10:-10] or self.samples
        return statistics.mean(statistics.mean(s) for s in window)


def cold_start(stack: Stack) -> dict:
    """From a worker's start to its first job finished; warm-up must not land on the job."""
    first_worker, *others = stack.workers.values()
    first_worker.stop()
    r = redis.Redis.from_url(stack.redis_url)
    live = keys.live_gpu("*")
    wait_until(lambda: len(list(r.scan_iter(live))) < len(stack.workers), 30, "worker gone")
    for worker in others:
        worker.stop()
    wait_until(lambda: not list(r.scan_iter(live)), 30, "all workers gone")
    job = stack.http.post(f"{stack.url}/api/jobs/", json={"kind": "noop"}).json()
    t0 = time.perf_counter()
    stack.workers = {name: stack.start_worker(name) for name in stack.workers}
    wait_until(lambda: stack.job(job["id"])["status"] in FINAL, 300, "first job", every=0.01)
    first = time.perf_counter() - t0
    detail = stack.job(job["id"])
    return {"to_first_job_s": first, "job_run_s": detail.get("gpu_seconds") or 0.0}


def markdown(info: dict, results: dict) -> str:
    lines = [
        f"### {info['host']}, {info['date']}",
        "",
        " · ".join(f"{k} {v}" for k, v in info.items() if k not in ("host", "date")),
        "",
        "| figure | ours (full path) | floor | ratio | target |",
        "| --- | --- | --- | --- | --- |",
    ]
    d = results.get("dispatch")
    if d:
        lines.append(
            f"| dispatch p50 | {d['ours_p50'] * 1e3:.2f} ms | {d['plain_p50'] * 1e3:.2f} ms (plain Celery) | "
            f"{d['ours_p50'] / d['plain_p50']:.2f}x | <= 2.0x (aim 1.5x) |"
        )
        lines.append(
            f"| dispatch p99 | {d['ours_p99'] * 1e3:.2f} ms | {d['plain_p99'] * 1e3:.2f} ms | "
            f"{d['ours_p99'] / d['plain_p99']:.2f}x | |"
        )
        for name, ms in d.get("stages_p50_ms", {}).items():
            lines.append(f"| · stage: {name} | p50 {ms:.2f} ms, p99 {d['stages_p99_ms'][name]:.2f} ms | | | |")
        s = d.get("stages_p50_ms", {})
        if "submit to running" in s and "running to succeeded" in s:
            bound = s["submit to running"] + s["running to succeeded"] + 3
            lines.append(f"| submit to running, p50 | {s['submit to running']:.2f} ms | | | <= 10 ms (aim 5) |")
            lines.append(
                f"| submit to final status seen, p50 | {d['ours_p50'] * 1e3:.2f} ms | "
                f"{bound:.2f} ms (submit to running + job + 3 ms) | | <= bound |"
            )
    t = results.get("throughput")
    if t:
        lines.append(
            f"| throughput, {t['n']} no-op jobs | {t['ours']:.0f} jobs/s | {t['plain']:.0f} tasks/s (plain Celery) | "
            f"{t['ours'] / t['plain']:.2f}x | >= 0.7x (aim 1.0x) |"
        )
        lines += _gap_line("worker idle between back-to-back no-op jobs", t.get("idle_gap"))
    g = results.get("gpu")
    if g:
        lines.append(
            f"| per-job GPU time, matmul 8192 x20 | {g['per_job_s'] * 1e3:.1f} ms | {g['bare_s'] * 1e3:.1f} ms (bare CuPy) | "
            f"{g['ratio']:.3f} | >= 0.95 (aim 0.99) |"
        )
        bare = g.get("bare_utilization")
        lines.append(
            f"| GPU utilization while saturated (NVML) | {g['utilization']:.1f}% | "
            + (f"{bare:.1f}% (bare CuPy loop, same sampling) | {g['utilization_ratio']:.3f} |" if bare else "| |")
            + " >= 0.98 (aim 0.995) |"
        )
        lines += _gap_line("GPU idle between back-to-back matmul jobs", g.get("idle_gap"))
        lines += _commit_line(results.get("commit"))
    elif "gpu_skipped" in results:
        lines.append(f"| GPU efficiency | skipped: {results['gpu_skipped']} | | | |")
    c = results.get("cold")
    if c:
        lines.append(
            f"| cold start: worker start to first job finished | {c['to_first_job_s']:.2f} s "
            f"(the job itself ran {c['job_run_s'] * 1e3:.1f} ms) | | | |"
        )
    for sc in results.get("scale", []):
        lines.append(
            f"| job list p95, {sc['jobs']:,} jobs | {sc['list_p95_ms']:.1f} ms (p50 {sc['list_p50_ms']:.1f}) | | | "
            f"<= 30 ms at 100k, 1M within 1.5x |"
        )
        lines.append(f"| job detail p95, {sc['jobs']:,} jobs | {sc['detail_p95_ms']:.1f} ms | | | |")
    scale = results.get("scale", [])
    if len(scale) > 1:
        ratio = scale[-1]["list_p95_ms"] / scale[0]["list_p95_ms"]
        lines.append(
            f"| job list p95, {scale[-1]['jobs']:,} against {scale[0]['jobs']:,} jobs | {ratio:.2f}x | | | <= 1.5x (aim flat) |"
        )
    lines += _counts_lines(results.get("counts"), "each sent by its own POST, one at a time")
    if t and "counts" in t:
        lines += _counts_lines(t["counts"], "sent in batches of 500 (the throughput run)")
    return "\n".join(lines) + "\n"


def _commit_line(commit: dict | None) -> list[str]:
    if not commit:
        return []
    return [
        f"| · floor of the gap: one durable commit on this database (a claim commits before its job starts), "
        f"p50 / p99 | {commit['commit_p50_ms']:.2f} / {commit['commit_p99_ms']:.2f} ms (a round trip without "
        f"one: {commit['select_p50_ms']:.2f} / {commit['select_p99_ms']:.2f} ms) | | | |"
    ]


def _gap_line(what: str, gap: dict | None) -> list[str]:
    if not gap or not gap.get("n"):
        return []
    return [
        f"| {what} (worker timestamps), p50 / p99 | {gap['p50_ms']:.2f} / {gap['p99_ms']:.2f} ms "
        f"({gap['n']} gaps) | | | <= 2 / 10 ms (aim 0.5 / 3) |"
    ] + [f"| · {name}, p50 | {ms:.2f} ms | | | |" for name, ms in gap.get("parts_p50_ms", {}).items()]


def _counts_lines(counts: dict | None, how: str) -> list[str]:
    if not counts:
        return []
    lines = [
        "",
        f"Database work per no-op job, counted over {counts['n']} jobs {how} (exact, not timed):",
        "",
        "| process | statements | explicit transactions | round trips (statements + BEGIN/COMMIT) |",
        "| --- | --- | --- | --- |",
    ]
    for role, c in counts["per_job"].items():
        if not c["statements"] and role != "total":
            continue  # a process that made no query (the benchmark's own shell)
        lines.append(f"| {role} | {c['statements']:.2f} | {c['transactions']:.2f} | {c['round_trips']:.2f} |")
    return lines


def _interrupt(*_) -> None:
    raise KeyboardInterrupt


def _counted_one_by_one(stack: Stack, n: int) -> dict:
    counted = costs.per_job(stack, n, lambda: [post_noop(stack) for _ in range(n)])
    counted.pop("ids")
    return counted


def _scale(stack: Stack, sizes: str, database: str) -> list[dict] | None:
    if not sizes or not database.startswith("PostgreSQL"):
        return None  # seeded with PostgreSQL's generate_series
    return control_plane.at_scale(stack, [int(n) for n in sizes.split(",")])


def _brief(figures):
    return {k: v for k, v in figures.items() if k != "samples"} if isinstance(figures, dict) else figures


def _save(path: str | None, info: dict, results: dict) -> None:
    if path:
        with open(path, "w") as f:
            json.dump({"info": info, "results": results}, f, indent=1)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run)")
    p.add_argument("--redis", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13"))
    p.add_argument(
        "--database",
        default=os.environ.get("BENCH_DATABASE_URL"),
        help="a DATABASE_URL, or 'pgserver' for a private PostgreSQL from the pgserver wheel (default: SQLite)",
    )
    p.add_argument(
        "--scale",
        default="100000,1000000",
        help="job list/detail p95 with this many jobs in the database, comma-separated ('' to skip; PostgreSQL)",
    )
    p.add_argument("--out", help="append the Markdown table to this file")
    p.add_argument("--json", help="write the raw figures here")
    args = p.parse_args()
    n_dispatch, n_through, n_counted = (50, 400, 50) if args.quick else (300, 2000, 200)
    database_url, database = open_database(args.database)
    info = {"host": socket.gethostname(), "date": datetime.date.today().isoformat(), **versions(), "database": database}
    # A timeout's SIGTERM ends the run like Ctrl-C: the stack stops and the figures so far are written.
    results: dict = {}
    stack = Stack(args.redis, database_url)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        plain = Plain(args.redis, stack.gpus, len(stack.workers))
    except BaseException:
        stack.stop()
        raise
    phases = [
        ("commit", lambda: commit_cost(database_url)),
        ("counts", lambda: _counted_one_by_one(stack, n_counted)),
        ("dispatch", lambda: dispatch(stack, plain, n_dispatch)),
        ("throughput", lambda: {**throughput(stack, plain, n_through), "n": n_through}),
        ("gpu", lambda: gpu_efficiency(stack) if stack.gpus else None),
        ("cold", lambda: cold_start(stack)),
        ("scale", lambda: _scale(stack, args.scale, database)),
    ]
    try:
        for name, phase in phases:
            figures = phase()
            if figures is not None:
                results[name] = figures
                print(name, _brief(figures), flush=True)
            _save(args.json, info, results)
    except KeyboardInterrupt:
        results["stopped"] = "interrupted (a timeout?) before every phase ran"
    finally:
        plain.stop()
        stack.stop()
    if not stack.gpus:
        results["gpu_skipped"] = "no GPU on this host"
    _save(args.json, info, results)
    table = markdown(info, results)
    print(table)
    if args.out:
        with open(args.out, "a") as f:
            f.write("\n" + table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
