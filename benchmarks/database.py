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
