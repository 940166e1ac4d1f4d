"""Security as deployed: production settings pass Django's deploy checks, JSON only, no secrets in code."""

import os
import subprocess
from pathlib import Path

from tests import support

PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "p" * 20 + "-a-long-random-secret-for-the-deploy-check-" + "q" * 20,
    "ALLOWED_HOSTS": "gpuq.example.org",
    "CSRF_TRUSTED_ORIGINS": "https://gpuq.example.org",
    "DATABASE_URL": "sqlite:////tmp/gpuq-deploy-check.sqlite3",
}


def check_deploy(**overrides) -> subprocess.CompletedProcess:
    """`manage.py check --deploy` with production settings, failing on warnings too."""
    env = {key: value for key, value in {**os.environ, **PRODUCTION, **overrides}.items() if value is not None}
    return subprocess.run(
        [support.python(), "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=support.ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_settings_pass_check_deploy_without_a_warning():
    out = check_deploy()
    assert out.returncode == 0, out.stdout + out.stderr
    assert "no issues" in out.stdout


def test_the_default_secret_key_fails_check_deploy():
    out = check_deploy(SECRET_KEY=None)
    assert out.returncode != 0 and "SECRET_KEY" in out.stdout + out.stderr


def test_celery_speaks_json_only():
    from scheduler.dispatch.celery_app import app

    assert app.conf.accept_content == ["json"]
    assert app.conf.task_serializer == app.conf.result_serializer == app.conf.event_serializer == "json"
    assert app.conf.task_acks_late and app.conf.task_reject_on_worker_lost
    assert app.conf.worker_prefetch_multiplier == 1


def test_no_pickle_anywhere_in_our_code():
    ours = [p for d in ("scheduler", "workers", "gpu_tasks", "cli") for p in (support.ROOT / d).rglob("*.py")]
    offenders = [str(p) for p in ours if "import pickle" in p.read_text() or "pickle.load" in p.read_text()]
    assert not offenders


def test_no_secret_is_committed_in_settings():
    text = Path(support.ROOT / "scheduler" / "settings.py").read_text()
    assert 'envstr("SECRET_KEY"' in text and "PASSWORD =" not in text
