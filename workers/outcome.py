"""What an attempt came to, as a runner reports it and `run_job` records it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Outcome:
    status: str
    result: dict | None = None
    error: str = ""
    error_kind: str = ""  # oom, sticky, timeout, error, or the runner's own (exit, image, engine, ...)
