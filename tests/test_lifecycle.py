"""The job lifecycle reads as its table: every transition's function exists, and nothing outside
scheduler/jobs/lifecycle.py (and its PostgreSQL statements, lifecycle_sql.py) writes a job's status."""

from __future__ import annotations

import ast
import re

from scheduler.jobs import lifecycle
from tests.support import ROOT

STATUSES = r"(?:\(new\)|waiting|queued|running|succeeded|failed|cancelled)"
ROW = re.compile(rf"^    ({STATUSES}(?: \| {STATUSES})*)\s+({STATUSES}(?: \| {STATUSES})*)\s+.*\s(\w+)$")


def transitions() -> list[tuple[str, str, str]]:
    return [m.groups() for line in lifecycle.__doc__.splitlines() if (m := ROW.match(line))]


def status_writes(path) -> list[int]:
    """Lines where `path` writes a status: `.update(status=...)`, `job.status = ...`, or a raw UPDATE."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") in ("update", "bulk_update"):
            if any(k.arg == "status" for k in node.keywords):
                found.append(node.lineno)
        if isinstance(node, ast.Assign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            # `self.status` is an exception's HTTP status, not a job's.
            if any(
                isinstance(t, ast.Attribute) and t.attr == "status" and ast.unparse(t.value) != "self" for t in targets
            ):
                found.append(node.lineno)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and "SET status" in node.value:
            found.append(node.lineno)
    return sorted(found)


def test_the_table_names_every_transition_and_its_function():
    rows = transitions()
    assert len(rows) == 9
    assert {fn for _, _, fn in rows} == {
        "submitted",
        "mark_queued",
        "claim",
        "finish",
        "requeue",
        "fail_running",
        "cancel",
        "fail_dependents",
    }
    assert all(callable(getattr(lifecycle, fn)) for _, _, fn in rows)


def test_it_finds_a_status_write(tmp_path):
    code = tmp_path / "x.py"
    code.write_text("Job.objects.filter(id=1).update(status='failed')\njob.status = 'x'\n")
    assert status_writes(code) == [1, 2]


def test_only_the_lifecycle_writes_a_jobs_status():
    writes = {
        str(path.relative_to(ROOT)): lines
        for package in ("scheduler", "workers")
        for path in (ROOT / package).rglob("*.py")
        if "migrations" not in path.parts and (lines := status_writes(path))
    }
    assert set(writes) == {"scheduler/jobs/lifecycle.py", "scheduler/jobs/lifecycle_sql.py"}


def test_only_the_lifecycle_calls_its_postgresql_statements():
    callers = {
        str(path.relative_to(ROOT))
        for package in ("scheduler", "workers", "benchmarks")
        for path in (ROOT / package).rglob("*.py")
        if "lifecycle_sql" in path.read_text() and path.name != "lifecycle_sql.py"
    }
    assert callers == {"scheduler/jobs/lifecycle.py"}
