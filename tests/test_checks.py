"""Bad settings are refused at start, each by its own system check, with the setting named."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured

from scheduler import checks
from tests.support import ROOT


def ids(messages) -> list[str]:
    return [m.id for m in messages]


def test_the_default_settings_pass_every_check():
    assert run_checks(tags=[checks.TAG]) == []


def test_an_unknown_router_policy_is_refused(settings):
    settings.ROUTER_POLICY = "fastest"
    [error] = checks.router_policy()
    assert error.id == "gpuq.E001" and "ROUTER_POLICY='fastest'" in error.msg and "balanced" in error.hint


def test_a_telemetry_ttl_shorter_than_its_interval_is_refused(settings):
    settings.TELEMETRY_INTERVAL, settings.TELEMETRY_TTL = 2.0, 1.5
    assert "gpuq.E002" in ids(checks.ordering())


def test_a_gpu_stale_before_its_next_snapshot_is_refused(settings):
    settings.TELEMETRY_INTERVAL, settings.GPU_STALE_AFTER = 1.0, 0.5
    assert "gpuq.E003" in ids(checks.ordering())


def test_requeueing_before_a_gpu_goes_stale_is_refused(settings):
    settings.GPU_STALE_AFTER, settings.DEAD_GPU_REQUEUE_AFTER = 5.0, 3.0
    assert ids(checks.ordering()) == ["gpuq.E004"]


def test_a_lease_that_one_late_renewal_loses_is_refused(settings):
    settings.LEASE_TTL, settings.LEASE_RENEW = 3, 2
    assert ids(checks.lease_timing()) == ["gpuq.E005"]


def test_a_default_time_limit_over_the_maximum_is_refused(settings):
    settings.JOB_TIME_LIMIT_DEFAULT, settings.JOB_TIME_LIMIT_MAX = 7200, 3600
    assert ids(checks.time_limits()) == ["gpuq.E006"]


def test_users_outranking_staff_is_refused(settings):
    settings.USER_PRIORITY_MAX, settings.STAFF_PRIORITY_MAX = 200, 100
    assert ids(checks.ordering()) == ["gpuq.E007"]


def test_a_count_or_interval_of_zero_is_refused(settings):
    settings.GPU_SLOTS = 0
    [error] = checks.positive()
    assert error.id == "gpuq.E008" and "GPU_SLOTS" in error.msg


def test_more_concurrency_than_slots_is_refused(settings):
    settings.GPU_SLOTS, settings.GPU_CONCURRENCY = 2, 4
    assert ids(checks.ordering()) == ["gpuq.E009"]


def test_the_web_app_and_the_worker_refuse_to_start(settings):
    settings.ROUTER_POLICY = "fastest"
    with pytest.raises(ImproperlyConfigured, match="gpuq.E001: ROUTER_POLICY='fastest'"):
        checks.refuse_bad_settings()


def test_a_management_command_refuses_to_start_on_a_bad_policy():
    env = {**os.environ, "ROUTER_POLICY": "fastest"}
    out = subprocess.run(
        [sys.executable, "manage.py", "releaser", "--once"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert out.returncode != 0 and "gpuq.E001" in out.stderr


def test_a_worker_refuses_to_start_on_a_bad_policy():
    env = {**os.environ, "ROUTER_POLICY": "fastest"}
    out = subprocess.run(
        [sys.executable, "-m", "workers", "--cpu", "--host", "badpolicy"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and "worker refuses to start: bad settings" in out.stderr
    assert "gpuq.E001" in out.stderr and "Traceback" not in out.stderr
