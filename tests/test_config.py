"""Configuration is declared once (scheduler/settings.py): .env.example, the docs and compose follow it."""

from __future__ import annotations

import pytest
from django.conf import settings

from scheduler import env, envdocs
from tests.support import ROOT
from workers import composegen

VARIABLES = settings.ENVIRONMENT_VARIABLES


def test_every_variable_says_why_and_where_compose_takes_it_from():
    assert len(VARIABLES) > 50
    assert all(v.why and v.compose in envdocs.HOW for v in VARIABLES.values())


def test_the_env_example_is_written_from_the_declarations():
    assert (ROOT / ".env.example").read_text() == envdocs.env_example(VARIABLES.values())


def test_the_configuration_docs_are_written_from_the_declarations():
    assert (ROOT / "docs" / "CONFIGURATION.md").read_text() == envdocs.docs_table(VARIABLES.values())


def test_compose_passes_every_passed_variable_and_no_other():
    app_env = composegen.app_env("h1", worker_only=False)
    passed = {name for name, value in app_env.items() if value == f"${{{name}:-}}"}
    assert passed == {v.name for v in VARIABLES.values() if v.compose == "pass"}
    assert not {v.name for v in VARIABLES.values() if v.compose == "compose"} & set(app_env)


def test_no_module_reads_the_environment_but_settings_and_the_entry_points():
    readers = {
        str(p.relative_to(ROOT))
        for package in ("scheduler", "workers", "gpu_tasks")
        for p in (ROOT / package).rglob("*.py")
        if "os.environ.get(" in p.read_text() or "getenv(" in p.read_text()
    }
    # env.py is the reader; the others read CUDA's and NCCL's own variables (CUDA_VISIBLE_DEVICES,
    # NCCL_NVLS_ENABLE), not ours, and the local runner hands a few of its own (HOME, PATH, LANG) to the
    # user's process.
    assert readers <= {
        "scheduler/env.py",
        "workers/__main__.py",
        "workers/doctor.py",
        "workers/gang_child.py",
        "workers/local_process.py",
        "workers/management/commands/doctor.py",
    }


def test_a_bad_number_stops_the_start_with_its_name(monkeypatch):
    monkeypatch.setenv("GPU_SLOTS", "two")
    with pytest.raises(ValueError, match="GPU_SLOTS='two' is not an integer"):
        env.envint("GPU_SLOTS", 2, why="jobs a GPU holds at once: one running, one ready")


def test_a_secret_comes_from_its_file(tmp_path, monkeypatch):
    (tmp_path / "key").write_text("from-a-file\n")
    monkeypatch.setenv("SECRET_KEY_FILE", str(tmp_path / "key"))
    assert env.envstr("SECRET_KEY", "x", why=VARIABLES["SECRET_KEY"].why) == "from-a-file"
