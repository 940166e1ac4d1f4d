"""The benchmark's database: a URL given, a private PostgreSQL from the `pgserver` wheel, or SQLite.

GPU hosts have no PostgreSQL and no package registry; `make bundle` carries the pgserver wheel (a
PostgreSQL build inside a wheel), so the GPU figures are taken on the database production uses.
"""

from __future__ import annotations

import tempfile
from urllib.parse import quote


def open_database(choice: str | None) -> tuple[str | None, str]:
    """(DATABASE_URL or None for the stack's SQLite default, a description for the table)."""
    if choice == "pgserver":
        import pgserver  # from the bundle; PostgreSQL runs as its own user when we are root

        server = pgserver.get_server(tempfile.mkdtemp(prefix="gpuq-bench-pg-"), cleanup_mode="delete")
        socket_dir = server.get_postmaster_info().socket_dir
        version = server.psql("SHOW server_version;").split("\n")[2].strip()
        return f"postgres://postgres@{quote(str(socket_dir), safe='')}/postgres", f"PostgreSQL {version} (pgserver)"
    if choice:
        return choice, "PostgreSQL" if choice.startswith("postgres") else choice.split(":", 1)[0]
    return None, "SQLite (WAL)"


def commit_cost(url: str | None, n: int = 300) -> dict | None:
    """What one durable commit costs on this database, and one round trip without one (ms, p50/p99): the
    floor of a job's claim, which must be committed before the job starts (None on SQLite)."""
    if not url or not url.startswith("postgres"):
        return None
    import time

    import psycopg

    from benchmarks.costs import pct

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS gpuq_bench_commit (id int PRIMARY KEY, n bigint)")
        conn.execute("INSERT INTO gpuq_bench_commit VALUES (1, 0) ON CONFLICT DO NOTHING")

        def timed(sql: str) -> list[float]:
            out = []
            for _ in range(n):
                t0 = time.perf_counter()
                conn.execute(sql)
                out.append((time.perf_counter() - t0) * 1e3)
            return out

        commits = timed("UPDATE gpuq_bench_commit SET n = n + 1 WHERE id = 1")
        trips = timed("SELECT 1")
        conn.execute("DROP TABLE gpuq_bench_commit")
    return {
        "commit_p50_ms": pct(commits, 50),
        "commit_p99_ms": pct(commits, 99),
        "select_p50_ms": pct(trips, 50),
        "select_p99_ms": pct(trips, 99),
    }
