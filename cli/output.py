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
        errors.print(f"[red]error:[/red] {message}", highlight=False)


def warn(message: str, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"warning": message}), file=sys.stderr)
    else:
        errors.print(f"[yellow]warning:[/yellow] {message}", highlight=False, soft_wrap=True)


def note(message: str, quiet: bool) -> None:
    if not quiet:
        errors.print(message, highlight=False, soft_wrap=True)


def jobs_table(jobs: list[dict], as_json: bool) -> None:
    if as_json:
        return raw(jobs, True)
    table = Table("id", "name", "kind", "status", "GPU", "attempts", "GPU s", "result / error")
    for j in jobs:
        table.add_row(
            str(j["id"]),
            _name(j),
            j["kind"] + (f" ({j['runner']})" if j.get("runner") else ""),
            _status(j["status"]),
            j.get("queue") or "—",
            str(j.get("attempts", 0)),
            f"{j['gpu_seconds']:.3f}" if j.get("gpu_seconds") else "",
            _brief(j),
        )
    console.print(table)


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
    if job.get("error"):
        return job["error"][:80]
    if job.get("result") and "exit_code" in job["result"]:  # a command's or container's summary
        kept = (job["result"].get("outputs") or {}).get("files")
        return f"exit {job['result']['exit_code']}" + (f", {kept} output file(s)" if kept else "")
    if job.get("result"):
        return ", ".join(f"{k}={v}" for k, v in list(job["result"].items())[:4])[:80]
    return job.get("wait_reason") or job.get("route_reason") or ""


def job_detail(job: dict, as_json: bool) -> None:
    if as_json:
        return raw(job, True)
    jobs_table([job], False)
    for key in ("params", "result"):
        if job.get(key):
            console.print(f"[bold]{key}[/bold]", json.dumps(job[key], indent=1))
    events(job, False)


def events(job: dict, as_json: bool) -> None:
    if as_json:
        return raw(job.get("events", []), True)
    for e in job.get("events", []):
        console.print(f"{e['at'][11:23]}  {e['status'] or '':9} {e['message']}", highlight=False)


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
    table = Table("GPU", "host", "state", "memory used/total MiB", "util %", "queued", "running")
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
        mem = f"{s['memory_used'] // 2**20}/{s['memory_total'] // 2**20}" if s else ""
        table.add_row(
            f"{g['name']} {g['queue']}",
            g["host"],
            state,
            mem,
            str(s.get("utilization", "")),
            str(g["queued"]),
            str(g["running_job"] or ""),
        )
    console.print(table)


@contextmanager
def progress(total: int, quiet: bool) -> Iterator[Callable[[dict], None]]:
    """A progress bar over `total` jobs; call the yielded function as each one ends."""
    if quiet or not sys.stderr.isatty():
        yield lambda job: None
        return
    with Progress(
        TextColumn("jobs"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=errors, transient=True
    ) as bar:
        task = bar.add_task("jobs", total=total)
        yield lambda job: bar.advance(task)
