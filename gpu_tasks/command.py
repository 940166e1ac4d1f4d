"""The `run` kind: a user's own command (`submit-job run -- python train.py`) in their uploaded working dir.

Where it runs (a local process or a container) is decided at submission (`scheduler/jobs/commands.py`) and
carried out by the worker (`workers/command_runner.py`); here are only its parameters, checked like any kind's.
"""

from __future__ import annotations

import re

from gpu_tasks.base import JobKind, Param, Runner, Stop
from gpu_tasks.container import (
    ENV,
    GPU_MIB,
    check_command,
    check_image,
    command_words,
    estimate_container,
)

DIGEST = re.compile(r"[0-9a-f]{64}\Z")
MOUNT_NAME = re.compile(r"[-a-zA-Z0-9_]{1,40}\Z")
RUNNERS = ("", "local", "container")
# The worker's command runner (workers/command_runner.py) runs it as a process or in a container and stops it
# itself when cancelled; which image (when in a container) is checked against the allowlist at submission.
COMMANDS = Runner("command", Stop.WATCH)


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


RUN = JobKind(
    name="run",
    title="Your own command",
    params=(
        Param("command", str, help="Command and arguments, quoted as in a shell", check=_check_run_command),
        Param(
            "bundle", str, "", help="sha256 of the uploaded working dir (submit-job run packs it)", check=_check_bundle
        ),
        Param("image", str, "", help="An allowlisted image; empty: the lab's default", check=_check_optional_image),
        ENV,
        Param("mounts", str, "", help="Names of mounts staff declared, e.g. imagenet,scratch", check=_check_mounts),
        GPU_MIB,
        Param("runner", str, "", choices=RUNNERS, help="local or container; empty: the deployment's choice"),
    ),
    estimate=estimate_container,
    description="Runs your command in your working dir on the GPU the job was routed to; "
    "what it writes under $GPUQ_OUTPUTS is kept with the job.",
    tags=("command",),
    runner=COMMANDS,
    multi_gpu=True,  # it sees all its GPUs (CUDA_VISIBLE_DEVICES lists them) and uses them as it likes
)

KINDS = (RUN,)
