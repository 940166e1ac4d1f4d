"""What `submit-job` prints: rich tables for people, JSON for scripts (`--json`)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

console = Console()
errors = Console(stderr=True)


def raw(data: Any, as_json: bool) -> None:
    print(json.dumps(data, indent=None if as_json else 2, default=str))


def error(message: str, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"error": message}), file=sys.stderr)
    else:
        errors.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)  # paths stay whole


def warn(message: str, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"warning": message}), file=sys.stderr)
    else:
        errors.print(f"[yellow]warning:[/yellow] {message}", highlight=False, soft_wrap=True)


def jobs_table(jobs: list[dict], as_json: bool, total: int | None = None) -> None:
    """The jobs, an owner column where they are more than one user's, and a summary line under them."""
    if as_json:
        return raw(jobs, True)
    owners = len({j.get("owner") for j in jobs}) > 1
    columns = ("id", "name", "kind", *(["owner"] if owners else []), "status", "GPU", "attempts", "GPU s")
    table = Table(*columns, "result / error")
    for j in jobs:
        table.add_row(
            str(j["id"]),
            _name(j),
            j["kind"] + (f" ({j['runner']})" if j.get("runner") else ""),
            *([j.get("owner") or ""] if owners else []),
            _status(j["status"]),
            j.get("queue") or "—",
            str(j.get("attempts", 0)),
            f"{j['gpu_seconds']:.3f}" if j.get("gpu_seconds") else "",
            _brief(j),
        )
    console.print(table)
    console.print(summary(jobs, total), highlight=False)


def summary(jobs: list[dict], total: int | None = None) -> str:
    """`70 jobs: 65 succeeded, 5 failed` (and `of 240` where the list shows part of them)."""
    by_status: dict[str, int] = {}
    for j in jobs:
        by_status[j["status"]] = by_status.get(j["status"], 0) + 1
    counted = ", ".join(f"{n} {status}" for status, n in sorted(by_status.items(), key=lambda kv: -kv[1]))
    shown = f"{len(jobs)} job{'s' if len(jobs) != 1 else ''}"
    if total is not None and total > len(jobs):
        shown += f" of {total} (--limit shows more)"
    return f"{shown}: {counted}" if jobs else "no jobs"


def state_line(job: dict) -> None:
    """`job 12: running on gpu.host.ab12` on stderr, as the job moves."""
    where = f" on {job['queue']}" if job.get("queue") and job["status"] in ("queued", "running") else ""
    why = (
        job.get("wait_reason") if job["status"] == "waiting" else job.get("error") if job["status"] == "failed" else ""
    )
    errors.print(f"job {job['id']}: {job['status']}{where}{f' ({why})' if why else ''}", highlight=False)


def _name(job: dict) -> str:
    tags = " ".join(f"#{t}" for t in job.get("tags") or [])
    return " ".join(x for x in (job.get("name") or "", tags) if x)


def outputs_saved(job_id: int, dest: Path, names: list[str], as_json: bool) -> None:
    if as_json:
        return raw({"id": job_id, "dir": str(dest), "files": names}, True)
    console.print(f"job {job_id}: {len(names)} output file(s) in {dest}", highlight=False)
    for name in names:
        console.print(f"  {name}", highlight=False)


def _status(status: str) -> str:
    color = {"succeeded": "green", "failed": "red", "running": "blue", "cancelled": "yellow"}.get(status)
    return f"[{color}]{status}[/{color}]" if color else status


def _brief(job: dict) -> str:
    """An error whole (the table wraps it), a result's first figures rounded, or why it waits."""
    if job.get("error"):
        return job["error"]
    if job.get("result") and "exit_code" in job["result"]:  # a command's or container's summary
        kept = (job["result"].get("outputs") or {}).get("files")
        return f"exit {job['result']['exit_code']}" + (f", {kept} output file(s)" if kept else "")
    if job.get("result"):
        return ", ".join(f"{k}={_number(v)}" for k, v in list(job["result"].items())[:4])
    if job["status"] == "waiting":
        return job.get("wait_reason") or ""
    return job.get("route_reason") or "" if job["status"] in ("queued", "running") else ""


def _number(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def job_detail(job: dict, as_json: bool) -> None:
    if as_json:
        return raw(job, True)
    jobs_table([job], False)
    if job.get("forecast"):
        console.print(f"[bold]start[/bold] {job['forecast']['text']}", highlight=False)
    if job.get("gang"):
        console.print(f"[bold]GPUs[/bold] {', '.join(m['queue'] for m in job['gang'])}", highlight=False)
    for key in ("params", "result"):
        if job.get(key):
            console.print(f"[bold]{key}[/bold]", json.dumps(job[key], indent=1))
    events(job, False)


def events(job: dict, as_json: bool) -> None:
    if as_json:
        return raw(job.get("events", []), True)
    for e in job.get("events", []):
        console.print(f"{_when(e['at'])}  {e['status'] or '':9} {e['message']}", highlight=False)


def downloaded(job_id: int, path: Path, size: int, as_json: bool) -> None:
    if as_json:
        return raw({"id": job_id, "path": str(path), "bytes": size}, True)
    console.print(f"job {job_id}: result array saved to {path} ({size / 1024:,.1f} KiB)", highlight=False)


def kinds(items: list[dict], as_json: bool) -> None:
    if as_json:
        return raw(items, True)
    table = Table("kind", "title", "parameters")
    for k in items:
        props = k["schema"].get("properties", {})
        table.add_row(k["name"], k["title"], ", ".join(_param(n, p) for n, p in props.items()))
    console.print(table)


def _param(name: str, p: dict) -> str:
    if "enum" in p:
        return f"{name} in {'|'.join(map(str, p['enum']))}"
    if "minimum" in p:
        return f"{name} {p['minimum']}..{p.get('maximum', '')}"
    return name


def gpus(items: list[dict], as_json: bool) -> None:
    if as_json:
        return raw(items, True)
    table = Table("GPU", "host", "state", "memory used / total", "util %", "queued", "running")
    for g in items:
        s = g.get("snapshot") or {}
        state = (
            "silent"
            if not g["alive"]
            else "draining"
            if g["draining"]
            else "ready"
            if s.get("healthy", True)
            else "unhealthy"
        )
        mem = f"{_gib(s['memory_used'])} / {_gib(s['memory_total'])}" if s else ""
        table.add_row(
            f"{g['name']} {g['queue']}",
            g["host"],
            state,
            mem,
            str(s.get("utilization", "")),
            str(g["queued"]),
            _holder(g.get("holder")) or str(g["running_job"] or ""),
        )
    console.print(table)


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def _holder(h: dict | None) -> str:
    """`12 alice · fft`, or `bob · fft` where the job is not yours to name."""
    return f"{h['id'] or ''} {h['owner']} · {h['kind']}".strip() if h else ""


def lab_queue(body: dict, as_json: bool) -> None:
    """Fair share per user, then every unfinished job in the lab (another user's without its id)."""
    if as_json:
        return raw(body, True)
    shares = Table("user", "running", "queued", "waiting", "GPUs (quota)", "recent GPU h", "share", "fair share")
    for u in body["users"]:
        shares.add_row(
            u["user"],
            str(u["running"]),
            str(u["queued"]),
            str(u["waiting"]),
            f"{u['gpus']}" + (f" of {u['max_gpus']}" if u["max_gpus"] else ""),
            f"{u['usage_gpu_hours']:.2f}",
            f"{u['usage_share']:.0%}",
            f"{u['fair_share']:.0%}",
        )
    console.print(shares)
    jobs = Table("id", "kind", "owner", "status", "GPU", "submitted", "started")
    for j in body["jobs"]:
        jobs.add_row(
            str(j["id"] or "—"),
            j["kind"],
            j["owner"],
            _status(j["status"]),
            j["gpu"] or "—",
            _when(j["created_at"]),
            _when(j["started_at"]),
        )
    console.print(jobs)
    console.print(f"{body['total']} unfinished jobs in the lab", highlight=False)


def _when(iso: str | None) -> str:
    """`2026-12-02T01:12:50.123456Z` -> `2026-12-02 01:12:50 UTC`."""
    if not iso:
        return "—"
    return f"{iso[:10]} {iso[11:19]} UTC" if iso.endswith("Z") else f"{iso[:10]} {iso[11:19]} {iso[26:]}"


@contextmanager
def progress(total: int, quiet: bool) -> Iterator[Callable[[dict], None]]:
    """A progress bar over `total` jobs, counting those that failed; call the yielded function as each
    one ends."""
    if quiet or not sys.stderr.isatty():
        yield lambda job: None
        return
    columns = (
        TextColumn("jobs"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("[red]{task.fields[failed]} failed[/red]"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=errors, transient=True) as bar:
        task = bar.add_task("jobs", total=total, failed=0)
        failed = 0

        def advance(job: dict) -> None:
            nonlocal failed
            failed += job["status"] == "failed"
            bar.update(task, advance=1, failed=failed)

        yield advance


def note(message: str) -> None:
    """A line for the person at the terminal (stderr), whatever stdout carries."""
    errors.print(message, highlight=False, soft_wrap=True)
