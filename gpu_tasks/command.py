"""The `run` kind: a user's own command (`submit-job run -- python train.py`) in their uploaded working dir.

Where it runs (a local process or a container) is decided at submission (`scheduler/jobs/commands.py`) and
carried out by the worker (`workers/command_runner.py`); here are only its parameters, checked like any kind's.
"""

from __future__ import annotations

import re
from typing import Any

from gpu_tasks.base import Estimate, JobKind, MiB, Param
from gpu_tasks.container import EXPECTED_SECONDS, check_command, check_env, check_image, command_words

DIGEST = re.compile(r"[0-9a-f]{64}\Z")
MOUNT_NAME = re.compile(r"[-a-zA-Z0-9_]{1,40}\Z")
RUNNERS = ("", "local", "container")


def mount_names(text: str) -> list[str]:
    """`imagenet, scratch` -> ["imagenet", "scratch"], in order, without repeats."""
    return list(dict.fromkeys(n for n in re.split(r"[,\s]+", text) if n))


def _check_bundle(digest: str) -> str | None:
    return (
        None if not digest or DIGEST.match(digest) else "must be the sha256 of an uploaded working dir (64 hex digits)"
    )


def _check_mounts(text: str) -> str | None:
    bad = [n for n in mount_names(text) if not MOUNT_NAME.match(n)]
    return f"not a mount name: {', '.join(bad)}" if bad else None


def _check_run_command(text: str) -> str | None:
    return check_command(text) or (None if command_words(text) else "give the command to run, e.g. python train.py")


def _check_optional_image(image: str) -> str | None:
    return check_image(image) if image else None


def estimate_command(*, gpu_mib: int, **_: Any) -> Estimate:
    return Estimate(gpu_mib * MiB, EXPECTED_SECONDS)


def run_command(xp, **params: Any) -> dict[str, Any]:
    raise RuntimeError("a run job's command runs as a process or in a container, not on the array module")


RUN = JobKind(
    name="run",
    title="Your own command",
    params=(
        Param("command", str, help="Command and arguments, quoted as in a shell", check=_check_run_command),
        Param(
            "bundle", str, "", help="sha256 of the uploaded working dir (submit-job run packs it)", check=_check_bundle
        ),
        Param("image", str, "", help="An allowlisted image; empty: the lab's default", check=_check_optional_image),
        Param(
            "env",
            str,
            "",
            help='Environment as NAME=VALUE pairs, quoted as in a shell: A=1 B="two words"',
            check=check_env,
        ),
        Param("mounts", str, "", help="Names of mounts staff declared, e.g. imagenet,scratch", check=_check_mounts),
        Param("gpu_mib", int, 1024, 0, 1024 * 1024, help="GPU memory the job will use, in MiB (for routing)"),
        Param("runner", str, "", choices=RUNNERS, help="local or container; empty: the deployment's choice"),
    ),
    estimate=estimate_command,
    run=run_command,
    description="Runs your command in your working dir on the GPU the job was routed to; "
    "what it writes under $GPUQ_OUTPUTS is kept with the job.",
    tags=("command",),
    runs_in="command",
)

KINDS = (RUN,)
