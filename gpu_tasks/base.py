"""What a job kind is: a parameter schema, an estimate of what it needs, and one array function.

A kind's `run(xp, **params)` is written once against the array module `xp` (CuPy on a GPU, NumPy
elsewhere) and returns a small JSON-able summary, or an `Output` when it also hands back its result array
(which the worker saves as a `.npy` file for download); the worker adds timing and GPU facts around it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class JobKind:
    name: str
    title: str
    params: tuple[Param, ...]
    estimate: Callable[..., Estimate]  # estimate(**params)
    run: Callable[..., dict[str, Any] | Output]  # run(xp, **params) -> summary, or Output with its array
    staff_only: bool = False
    description: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)
    # "array": `run` computes on the worker's array module; "container": the worker runs an image instead.
    runs_in: str = "array"
    # Whether a job of this kind may ask for several GPUs (`gpus: N`): its run then sees all N of them.
    multi_gpu: bool = False
