"""Scale of the control plane (no GPU needed): the API with 100,000 jobs in PostgreSQL.

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/gpuq_bench python -m benchmarks.control_plane
Prints p95 of the job list and job detail calls, and the time to submit a 10,000-job batch.
"""

from __future__ import annotations

import os
import random
import sys
import time

from benchmarks.costs import pct
from benchmarks.stack import Stack

SEED_CODE = """
import random
from django.contrib.auth import get_user_model
from scheduler.jobs.models import Job, Status
User = get_user_model()
users = [User.objects.get_or_create(username=f"user{i}")[0] for i in range(20)]
users.append(User.objects.get(username="bench"))
rng = random.Random(7)
statuses = [Status.SUCCEEDED] * 8 + [Status.FAILED, Status.WAITING]
rows = [Job(owner=rng.choice(users), kind="matmul", params={"n": 1024}, status=rng.choice(statuses),
            time_limit=600, memory_estimate=12 << 20, work_estimate=0.01) for _ in range(100_000)]
Job.objects.bulk_create(rows, batch_size=5000)
print(Job.objects.count())
"""


def main() -> int:
    db = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/gpuq_bench")
    _fresh_database(db)
    stack = Stack(os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13"), db)
    try:
        seeded = stack.manage_shell(SEED_CODE)
        mine = stack.http.get(f"{stack.url}/api/jobs/", params={"limit": 1}).json()["count"]
        ids = [j["id"] for j in stack.http.get(f"{stack.url}/api/jobs/", params={"limit": 200}).json()["results"]]
        lists = _timed(lambda: stack.http.get(f"{stack.url}/api/jobs/", params={"limit": 50}), 200)
        details = _timed(lambda: stack.http.get(f"{stack.url}/api/jobs/{random.choice(ids)}/"), 200)
        t0 = time.perf_counter()
        stack.submit([{"kind": "matmul", "params": {"n": 512}}] * 10_000)
        batch = time.perf_counter() - t0
    finally:
        stack.stop()
    print(f"| jobs in the database | {seeded} ({mine} visible to the benchmark's staff user) |")
    print(
        f"| job list p95 (50 a page) | {pct(lists, 95) * 1e3:.1f} ms (p50 {pct(lists, 50) * 1e3:.1f} ms) | <= 100 ms (aim 30) |"
    )
    print(
        f"| job detail p95 | {pct(details, 95) * 1e3:.1f} ms (p50 {pct(details, 50) * 1e3:.1f} ms) | <= 100 ms (aim 30) |"
    )
    print(f"| 10,000-job batch submit | {batch:.2f} s | <= 20 s (aim 5) |")
    return 0


# Finished jobs only (a waiting one would be released to the benchmark's workers), older than any
# job the benchmark submits, spread over the staff user and 20 others, in one INSERT ... SELECT; named
# so that a later run (the database is kept between runs) tops them up to SIZE or cuts them down to it.
SCALE_SEED_CODE = """
from django.contrib.auth import get_user_model
from django.db import connection
from scheduler.jobs.models import Job
User = get_user_model()
owners = [User.objects.get_or_create(username=f"user{i}")[0].id for i in range(20)]
owners.append(User.objects.get(username="bench").id)
have = Job.objects.filter(name="scale-seed").count()
with connection.cursor() as cur:
    cur.execute(
        f"DELETE FROM {Job._meta.db_table} WHERE id IN (SELECT id FROM {Job._meta.db_table} "
        "WHERE name = 'scale-seed' ORDER BY id OFFSET %s)",
        [SIZE],
    )
    cur.execute(
        f"INSERT INTO {Job._meta.db_table} (owner_id, kind, params, status, priority, time_limit, memory_estimate, "
        "work_estimate, queue, gpu_uuid, route_reason, wait_reason, attempts, lease, error, error_kind, "
        "name, tags, gpus, gang, runner, outputs_bytes, created_at, started_at, finished_at) "
        "SELECT (%s::bigint[])[1 + g %% 21], 'matmul', %s::jsonb, "
        "(ARRAY['succeeded','succeeded','succeeded','succeeded','succeeded','succeeded','succeeded','succeeded','failed','cancelled'])[1 + (g * 7) %% 10], "
        "0, 600, 12582912, 0.01, '', '', '', '', 1, '', '', '', 'scale-seed', '[]'::jsonb, 1, '[]'::jsonb, '', 0, "
        "now() - make_interval(days => 1, secs => g), "
        "now() - make_interval(days => 1, secs => g), now() - make_interval(days => 1, secs => g) "
        "FROM generate_series(%s, %s) AS g",
        [owners, '{"n": 1024}', have + 1, SIZE],
    )
    cur.execute(f"ANALYZE {Job._meta.db_table}")
print(Job.objects.count())
"""


def at_scale(stack, sizes: list[int], calls: int = 200) -> list[dict]:
    """List and detail p95 with each of `sizes` seeded jobs in the database (PostgreSQL), as the staff
    user who sees them all; each size is seeded to exactly, whatever an earlier run left there."""
    figures = []
    for size in sizes:
        t0 = time.perf_counter()
        total = int(stack.manage_shell(SCALE_SEED_CODE.replace("SIZE", str(size))))
        seed_s = time.perf_counter() - t0
        ids = [j["id"] for j in stack.http.get(f"{stack.url}/api/jobs/", params={"limit": 200}).json()["results"]]
        lists = _timed(lambda: stack.http.get(f"{stack.url}/api/jobs/", params={"limit": 50}), calls)
        details = _timed(lambda ids=ids: stack.http.get(f"{stack.url}/api/jobs/{random.choice(ids)}/"), calls)
        figures.append(
            {
                "jobs": total,
                "seed_s": seed_s,
                "list_p50_ms": pct(lists, 50) * 1e3,
                "list_p95_ms": pct(lists, 95) * 1e3,
                "detail_p50_ms": pct(details, 50) * 1e3,
                "detail_p95_ms": pct(details, 95) * 1e3,
            }
        )
        print("scale", figures[-1], flush=True)
    return figures


def _timed(call, n: int) -> list[float]:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        call().raise_for_status()
        times.append(time.perf_counter() - t0)
    return times


def _fresh_database(url: str) -> None:
    import psycopg

    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


if __name__ == "__main__":
    sys.exit(main())
