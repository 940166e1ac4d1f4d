"""Submission rules of `run` jobs: where the command runs, which image, the uploaded dir, the mounts.

The worker checks the same runner rule again (`workers/command_runner.py`): a row written by other means
must not run user code outside a container on a multi-user deployment either.
"""

from __future__ import annotations

from django.conf import settings

from gpu_tasks.command import mount_names
from scheduler.jobs.errors import SubmissionError
from scheduler.jobs.models import Bundle, Mount

LOCAL_REFUSED = (
    "this is a multi-user deployment (MULTI_USER): user code runs only in containers, never as a local process"
)


def prepare(user, params: dict) -> tuple[dict, str]:
    """The params as the worker will run them (the image resolved) and the runner: "local" or "container"."""
    runner = runner_for(params.get("runner", ""))
    if runner == "container":
        params = {**params, "image": _image(params.get("image", ""))}
    if params.get("bundle") and not Bundle.objects.filter(owner=user, digest=params["bundle"]).exists():
        raise SubmissionError(
            {
                "params": {
                    "bundle": "no working dir with that sha256 was uploaded by you: PUT it to /api/bundles/<sha256>/"
                }
            }
        )
    allowed(user, mount_names(params.get("mounts", "")))
    return params, runner


def runner_for(requested: str) -> str:
    """The runner a job gets: what it asked for, else RUN_JOBS_IN (auto: a container where an engine is
    configured or several users share the system)."""
    chosen = requested or settings.RUN_JOBS_IN
    if chosen == "auto":
        chosen = "container" if settings.ENGINE_CONFIGURED or settings.MULTI_USER else "local"
    if chosen not in ("local", "container"):
        raise SubmissionError({"params": {"runner": f"RUN_JOBS_IN={chosen!r} is not auto, local or container"}}, 500)
    if chosen == "local" and settings.MULTI_USER:
        raise SubmissionError({"params": {"runner": LOCAL_REFUSED}})
    return chosen


def _image(image: str) -> str:
    chosen = image or settings.RUN_DEFAULT_IMAGE
    if not chosen:
        raise SubmissionError(
            {
                "params": {
                    "image": "this deployment has no default image for run jobs: name one (--image) from /api/images/"
                }
            }
        )
    return chosen


def allowed(user, names: list[str]) -> list[Mount]:
    """The mounts named, each one this user may use; SubmissionError naming the first that is not."""
    found = {m.name: m for m in Mount.objects.filter(name__in=names).prefetch_related("users", "groups")}
    for name in names:
        mount = found.get(name)
        if mount is None:
            usable = ", ".join(m.name for m in usable_by(user)) or "none"
            raise SubmissionError({"params": {"mounts": f"no mount named {name!r}; mounts you may use: {usable}"}})
        if not may_use(user, mount):
            raise SubmissionError({"params": {"mounts": f"you may not mount {name!r}: staff have not given it to you"}})
    return [found[n] for n in names]


def may_use(user, mount: Mount) -> bool:
    if mount.everyone or user in mount.users.all():
        return True
    return bool(set(mount.groups.all()) & set(user.groups.all()))


def usable_by(user) -> list[Mount]:
    return [m for m in Mount.objects.prefetch_related("users", "groups") if may_use(user, m)]
