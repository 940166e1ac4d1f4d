"""Django system checks that refuse bad settings at start (each is a test in tests/test_checks.py).

`manage.py` commands run them by themselves; the web app (scheduler/wsgi.py) and the worker
(`python -m workers`) call `refuse_bad_settings`, so no process starts on a setting that would make
every release round raise or every GPU flap.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from scheduler.fleet.router import POLICIES

TAG = "gpuq"
POSITIVE = (
    "GPU_SLOTS",
    "GPU_CONCURRENCY",
    "JOB_MAX_ATTEMPTS",
    "BATCH_MAX_JOBS",
    "TELEMETRY_INTERVAL",
    "TELEMETRY_HISTORY_HOURS",
    "RELEASER_INTERVAL",
    "LEASE_RENEW",
    "FAIRSHARE_HALF_LIFE",
)


def _error(n: int, message: str, hint: str = "") -> checks.Error:
    return checks.Error(message, hint=hint or None, id=f"gpuq.E{n:03d}")


def router_policy(**_: Any) -> list[checks.CheckMessage]:
    if settings.ROUTER_POLICY in POLICIES:
        return []
    return [_error(1, f"ROUTER_POLICY={settings.ROUTER_POLICY!r} is no router policy", f"use one of {POLICIES}")]


# (id, a setting, one that must be above it (or, not strict, at least it), what goes wrong otherwise)
ORDERED = (
    (2, "TELEMETRY_INTERVAL", "TELEMETRY_TTL", True, "every snapshot would expire before the next one"),
    (3, "TELEMETRY_INTERVAL", "GPU_STALE_AFTER", True, "every GPU would count as stale between its snapshots"),
    (4, "GPU_STALE_AFTER", "DEAD_GPU_REQUEUE_AFTER", True, "a GPU's jobs would go back while it is still routed to"),
    (7, "USER_PRIORITY_MAX", "STAFF_PRIORITY_MAX", False, "users could outrank staff"),
    (9, "GPU_CONCURRENCY", "GPU_SLOTS", False, "a GPU would never hold enough jobs to run that many at once"),
)


def _ordered(n: int, low: str, high: str, strict: bool, why: str) -> checks.Error | None:
    a, b = getattr(settings, low), getattr(settings, high)
    if a < b or (a == b and not strict):
        return None
    return _error(n, f"{high} ({b}) must be {'above' if strict else 'at least'} {low} ({a}): {why}")


def ordering(**_: Any) -> list[checks.CheckMessage]:
    return [e for rule in ORDERED if (e := _ordered(*rule)) is not None]


def lease_timing(**_: Any) -> list[checks.CheckMessage]:
    if settings.LEASE_TTL >= 2 * settings.LEASE_RENEW:
        return []
    return [
        _error(
            5,
            f"LEASE_TTL ({settings.LEASE_TTL} s) must be at least twice LEASE_RENEW ({settings.LEASE_RENEW} s): "
            "one late renewal would send a running job back to waiting",
        )
    ]


def time_limits(**_: Any) -> list[checks.CheckMessage]:
    if 1 <= settings.JOB_TIME_LIMIT_DEFAULT <= settings.JOB_TIME_LIMIT_MAX:
        return []
    limits = f"({settings.JOB_TIME_LIMIT_DEFAULT} s) must be between 1 and JOB_TIME_LIMIT_MAX"
    return [_error(6, f"JOB_TIME_LIMIT_DEFAULT {limits} ({settings.JOB_TIME_LIMIT_MAX} s)")]


def positive(**_: Any) -> list[checks.CheckMessage]:
    return [
        _error(8, f"{name} must be above 0, not {getattr(settings, name)}")
        for name in POSITIVE
        if getattr(settings, name) <= 0
    ]


def run_jobs(**_: Any) -> list[checks.CheckMessage]:
    """Where `run` jobs run: a known choice, and never a local process on a multi-user deployment."""
    if settings.RUN_JOBS_IN not in ("auto", "local", "container"):
        return [_error(10, f"RUN_JOBS_IN={settings.RUN_JOBS_IN!r} is none of auto, local, container")]
    if settings.MULTI_USER and settings.RUN_JOBS_IN == "local":
        message = "MULTI_USER with RUN_JOBS_IN=local: user code never runs outside a container there, so every run job"
        return [_error(11, f"{message} would be refused", "set RUN_JOBS_IN=auto or container, and DOCKER_HOST")]
    return []


def register() -> None:
    """Add these checks to Django's (called when the jobs app is ready)."""
    for check in (router_policy, ordering, lease_timing, time_limits, positive, run_jobs):
        checks.register(check, TAG)


def refuse_bad_settings() -> None:
    """Raise ImproperlyConfigured, listing every error, when a check of ours fails."""
    errors = [m for m in checks.run_checks(tags=[TAG]) if m.is_serious()]
    if errors:
        raise ImproperlyConfigured("bad settings:\n" + "\n".join(f"  {m.id}: {m.msg}" for m in errors))
