"""Saving a job's result array as `.npy` where the web app serves it from (`scheduler/jobs/results.py`)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy
from django.conf import settings

from gpu_tasks.arrays import is_gpu
from scheduler.jobs import results

log = logging.getLogger(__name__)


def save(job_id: int, array: Any, xp: ModuleType) -> dict[str, Any]:
    """Write the job's array when it is at most RESULT_MAX_BYTES; the `npy` entry for the job's result,
    saying what happened ({} when the kind hands back no array)."""
    if array is None:
        return {}
    size = int(array.nbytes)
    if size > settings.RESULT_MAX_BYTES:
        reason = f"the array is {size:,} bytes, over RESULT_MAX_BYTES ({settings.RESULT_MAX_BYTES:,} bytes)"
        return {"npy": {"saved": False, "bytes": size, "reason": reason}}
    host = array.get() if is_gpu(xp) else array  # checked first: a refused array is never copied off the GPU
    try:
        _write(results.path(job_id), host)
    except OSError as exc:
        log.warning("job %s: result array not saved: %s", job_id, exc)
        return {"npy": {"saved": False, "bytes": size, "reason": f"the server could not write it ({exc.strerror})"}}
    return {"npy": {"saved": True, "bytes": size, "shape": list(host.shape), "dtype": str(host.dtype)}}


def _write(path: Path, array: numpy.ndarray) -> None:
    """Whole or not at all: written under a temporary name, then renamed, so a download never reads half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    try:
        with open(partial, "wb") as f:
            numpy.save(f, array, allow_pickle=False)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
