"""The runner seam: each kind names how it runs, is admitted and is stopped; run_job asks no kind's type."""

from __future__ import annotations

import ast

from gpu_tasks.base import ARRAYS, Estimate, JobKind, Runner, Stop
from gpu_tasks.container import CONTAINERS
from gpu_tasks.registry import KINDS
from scheduler.jobs.models import Job, Status
from tests.support import ROOT
from workers import runners
from workers.outcome import Outcome


def test_every_kind_has_a_runner_on_the_worker():
    assert {k.runner.name for k in KINDS.values()} <= set(runners.RUNNERS)


def test_an_array_kind_has_an_array_function_and_no_other_kind_does():
    assert all((k.run is not None) == (k.runner is ARRAYS) for k in KINDS.values())


def test_containers_are_stopped_by_their_worker_and_admitted_by_the_image_allowlist():
    assert (ARRAYS.stop, ARRAYS.allowlisted) == (Stop.KILL, None)
    assert (CONTAINERS.stop, CONTAINERS.allowlisted) == (Stop.WATCH, "image")
    assert "image" in {p.name for p in KINDS["container"].params}


def test_a_new_runner_is_one_entry_in_the_runners(monkeypatch):
    echo = Runner("echo", Stop.WATCH)
    monkeypatch.setitem(KINDS, "echo", JobKind("echo", "Echo", (), lambda: Estimate(0, 0), runner=echo))
    monkeypatch.setitem(
        runners.RUNNERS, "echo", lambda job, still_ours: Outcome(Status.SUCCEEDED, {"ours": still_ours()})
    )
    assert runners.run(Job(kind="echo", params={}), lambda: True) == Outcome(Status.SUCCEEDED, {"ours": True})


def test_run_job_has_no_branch_on_the_kind():
    source = (ROOT / "workers" / "tasks.py").read_text()
    names = {n.attr for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Attribute)}
    assert not names & {"runner", "runs_in", "tags"} and "container" not in source
