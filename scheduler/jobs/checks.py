"""Settings that contradict each other, said when Django starts (`manage.py check`) rather than at a job."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, register


@register()
def run_jobs_settings(app_configs, **kwargs) -> list[Error]:
    errors = []
    if settings.RUN_JOBS_IN not in ("auto", "local", "container"):
        errors.append(Error(f"RUN_JOBS_IN={settings.RUN_JOBS_IN!r}: use auto, local or container", id="gpuq.E101"))
    if settings.MULTI_USER and settings.RUN_JOBS_IN == "local":
        errors.append(
            Error(
                "MULTI_USER=true with RUN_JOBS_IN=local: a multi-user deployment never runs user code outside a "
                "container, so every run job would be refused",
                hint="set RUN_JOBS_IN=auto or container, and DOCKER_HOST",
                id="gpuq.E102",
            )
        )
    return errors
