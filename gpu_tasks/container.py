"""The `container` kind: a user's own image, run on the routed GPU by the worker (`workers/containers.py`).

Its parameters are checked here like any kind's, so a bad command or environment is a 400 at submission;
which images may run is the staff's allowlist, checked by the scheduler.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from gpu_tasks.base import Estimate, JobKind, MiB, Param, Runner, Stop

# Set by the worker to the GPU it gives the container; a user's value would point it at another GPU.
# The NVIDIA container toolkit reads every NVIDIA_* name (capabilities, NVSWITCH, MOFED, GDS, GDRCOPY,
# IMEX channels, MIG_*), and some of them inject devices: all of them are the worker's to set.
RESERVED_ENV = ("CUDA_VISIBLE_DEVICES",)
RESERVED_PREFIX = "NVIDIA_"
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
EXPECTED_SECONDS = 60.0  # the router's work estimate: a container's run time cannot be derived from its params


def command_words(command: str) -> list[str]:
    """The command as argv, split as a POSIX shell would (no shell runs it)."""
    return shlex.split(command)


def environment(env: str) -> dict[str, str]:
    """`A=1 B="two words"` -> {"A": "1", "B": "two words"}; ValueError names the first bad entry."""
    pairs = {}
    for word in shlex.split(env):
        name, eq, value = word.partition("=")
        if not eq or not ENV_NAME.match(name):
            raise ValueError(f"{word!r} is not NAME=VALUE")
        if name.upper() in RESERVED_ENV or name.upper().startswith(RESERVED_PREFIX):
            raise ValueError(f"{name} is set by the worker (the GPU the job runs on and what it may use of it)")
        pairs[name] = value
    return pairs


def check_image(image: str) -> str | None:
    if not image or len(image) > 300 or any(c.isspace() for c in image):
        return "must be an image reference such as registry.example/team/train:1.2, without spaces"
    return None


def _parses(parse, longest: int, problem: str = "{}"):
    """A Param check: the text is at most `longest` characters and `parse` takes it; else the message."""

    def check(text: str) -> str | None:
        if len(text) > longest:
            return f"must be at most {longest} characters"
        try:
            parse(text)
        except ValueError as exc:  # shlex: "No closing quotation"; environment: the bad entry
            return problem.format(exc)
        return None

    return check


check_command = _parses(command_words, 4096, "cannot be split into words: {}")
check_env = _parses(environment, 16384)


ENV = Param(
    "env", str, "", help='Environment as NAME=VALUE pairs, quoted as in a shell: A=1 B="two words"', check=check_env
)
GPU_MIB = Param(
    "gpu_mib", int, 1024, 0, 1024 * 1024, help="GPU memory the job will use on each GPU, in MiB (for routing)"
)


def estimate_container(*, gpu_mib: int, **_: Any) -> Estimate:
    """A container's or a command's estimate: the memory it declares; its run time cannot be derived."""
    return Estimate(gpu_mib * MiB, EXPECTED_SECONDS)


# The worker's container runner (workers/containers.py) starts the image; the image must be allowlisted.
CONTAINERS = Runner("container", Stop.WATCH, allowlisted="image")


CONTAINER = JobKind(
    name="container",
    title="Container image",
    params=(
        Param("image", str, help="An image on the allowlist kept by staff", check=check_image),
        Param(
            "command",
            str,
            "",
            help="Command and arguments, quoted as in a shell; empty: the image's own",
            check=check_command,
        ),
        ENV,
        GPU_MIB,
    ),
    estimate=estimate_container,
    description="Runs an allowlisted image on the GPU the job was routed to; its output is the job's log.",
    tags=("container",),
    runner=CONTAINERS,
    multi_gpu=True,
)

KINDS = (CONTAINER,)
