"""What a job kind is: a parameter schema, an estimate of what it needs, and one array function.

A kind's `run(xp, **params)` is written once against the array module `xp` (CuPy on a GPU, NumPy
elsewhere) and returns a small JSON-able summary, or an `Output` when it also hands back its result array
(which the worker saves as a `.npy` file for download); the worker adds timing and GPU facts around it.
A kind whose jobs run otherwise (an image in a container) names its `Runner` instead of a `run`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

MiB = 1024 * 1024


class ParamError(ValueError):
    """Parameters a user gave that the kind cannot take; `errors` maps a field to its message."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


class UnknownKind(ValueError):
    pass


@dataclass(frozen=True)
class Param:
    name: str
    type: type  # int, float, str or bool
    default: Any = None  # None: required
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[Any, ...] | None = None
    help: str = ""
    check: Callable[[Any], str | None] | None = None  # a further rule: the error message, or None when fine


@dataclass(frozen=True)
class Estimate:
    memory_bytes: int  # peak GPU memory the job allocates
    work: float  # expected GPU seconds on a recent data-centre GPU (H100 class)


@dataclass(frozen=True)
class Output:
    """What a kind's run hands back when it has a result array: the summary, and the array on `xp`."""

    summary: dict[str, Any]
    array: Any = None


class Stop(StrEnum):
    """How a running attempt is stopped when its job is cancelled."""

    KILL = "kill"  # SIGKILL the pool process: a job inside a CUDA call does not see SIGTERM until it returns
    WATCH = "watch"  # the runner watches its lease and stops its own child (killing the worker would orphan it)


@dataclass(frozen=True)
class Runner:
    """How a kind's jobs run: the worker's runner of this `name` (workers/runners.py) executes them, a
    cancellation stops them by `stop`, and where `allowlisted` names a parameter, its value must be on
    the staff's allowlist for the job to be admitted."""

    name: str
    stop: Stop
    allowlisted: str | None = None


ARRAYS = Runner("arrays", Stop.KILL)  # `run(xp, **params)` on the worker's array module


@dataclass(frozen=True)
class JobKind:
    name: str
    title: str
    params: tuple[Param, ...]
    estimate: Callable[..., Estimate]  # estimate(**params)
    # run(xp, **params) -> summary, or Output with its array; None where another runner runs the job
    run: Callable[..., dict[str, Any] | Output] | None = None
    staff_only: bool = False
    description: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)
    runner: Runner = ARRAYS
    # Whether a job of this kind may ask for several GPUs (`gpus: N`): its run then sees all N of them.
    multi_gpu: bool = False
