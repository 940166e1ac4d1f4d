"""The submit form: text fields turned into a submission, and every error found in one pass.

A form that reports one error at a time, or empties its fields on an error, makes a user fix one
thing, submit, and meet the next; so all fields are read, all problems collected, and the page
shows them beside their fields with what was typed still in place.
"""

from __future__ import annotations

from typing import Any

from gpu_tasks.registry import KINDS
from scheduler.jobs import submission
from scheduler.jobs.submission import SubmissionError, collect
from scheduler.web import forms

SCHEDULING = {"priority": 0, "time_limit": None, "gpus": 1}  # whole-number fields and their defaults


def submit(user, form, kind: str, files=None) -> tuple[str, int]:
    """Submit what the form holds (one job, or an array over a grid); where to go next. `files`: a run
    job's uploaded working dir."""
    if kind not in KINDS:
        raise SubmissionError({"kind": f"unknown kind {kind!r}"})
    problems: dict = {}
    common = {name: _whole(form.get(name), name, default, problems) for name, default in SCHEDULING.items()}
    common |= {"name": form.get("name", "").strip()[:100], "tags": collect(problems, forms.tags, form.get("tags", ""))}
    after = [_whole(x, "after", 0, problems) for x in form.get("after", "").split(",") if x.strip()]
    params = params_from_form(kind, form) | (collect(problems, forms.uploaded_bundle, user, files, kind) or {})
    grid = collect(problems, _grid, kind, form.get("array", "")) or {}
    specs: list[dict[str, Any]]
    if grid:
        specs = [{"kind": kind, "params": {**params, **point}, **common} for point in _points(grid, problems)]
    else:
        specs = [{"kind": kind, "params": params, "after": after, **common}]
    if problems:  # what is wrong so far, and whatever validation finds in the rest
        collect(problems, submission.validate_all, user, specs, bool(grid))
        raise SubmissionError(flatten(problems, grid))
    try:
        if grid:
            array, _ = submission.submit_array(user, kind, params, grid, **common)
            return ("array", array.id)
        return ("job", submission.submit(user, specs)[0].id)
    except SubmissionError as exc:
        raise SubmissionError(flatten(exc.errors, grid), exc.status) from None


def _whole(text: str | None, field: str, default: int | None, problems: dict) -> int | None:
    if not text or not text.strip():
        return default
    try:
        return int(text)
    except ValueError:
        problems[field] = f"must be a whole number, got {text!r}"
        return default


def _points(grid: dict, problems: dict) -> list[dict]:
    return collect(problems, submission.expand_grid, grid) or []


def _grid(kind: str, text: str) -> dict[str, list]:
    """`n=1024,2048` -> {"n": [1024, 2048]}, each value typed as its parameter declares."""
    if not text.strip():
        return {}
    name, sep, values = text.partition("=")
    declared = {p.name: p.type for p in KINDS[kind].params}
    if not sep or name.strip() not in declared:
        raise SubmissionError({"array": f"write NAME=V1,V2,... with a parameter of {kind}"})
    return {name.strip(): [_typed(declared[name.strip()], v.strip()) for v in values.split(",") if v.strip()]}


def params_from_form(kind: str, form) -> dict:
    """Form fields are text: give each the type its parameter declares, leaving bad text for the
    validator to name in its message. An empty field takes the parameter's default."""
    params = {}
    for p in KINDS[kind].params:
        text = form.get(f"{kind}.{p.name}", "").strip()
        if text:
            params[p.name] = _typed(p.type, text)
    return params


def _typed(kind: type, text: str):
    try:
        if kind is bool:
            return text.lower() in ("1", "true", "on", "yes")
        return kind(text) if kind in (int, float) else text
    except ValueError:
        return text


def flatten(errors: dict, grid: dict) -> dict:
    """Submission errors as the form shows them: `params` a dict by parameter, and an array's
    per-member errors merged, each message once, naming the grid value it was about."""
    members = errors.get("jobs")
    if not isinstance(members, list):
        return errors
    merged: dict = {k: v for k, v in errors.items() if k != "jobs"}
    points = submission.expand_grid(grid) if grid else [{}] * len(members)
    about_grid: list[str] = []
    for point, member in zip(points, members, strict=False):
        for field, message in (member or {}).items():
            if field == "params" and isinstance(message, dict):
                for name, text in message.items():
                    if name in point:
                        about_grid.append(f"{name}={point[name]}: {text}")
                    elif isinstance(merged.setdefault("params", {}), dict):
                        merged["params"].setdefault(name, text)
            else:
                merged.setdefault(field, message)
    if about_grid:
        merged["array"] = "; ".join(dict.fromkeys(about_grid))
    return merged
