"""Uploaded working dirs: a tar.gz stored once under its sha256, checked before it is kept.

The CLI asks whether the server has a digest before sending it, so an unchanged dir is not sent twice.
Another user's upload of the same bytes is not revealed: each owner has their own row, one file serves both.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.db import IntegrityError

from scheduler.jobs.errors import SubmissionError
from scheduler.jobs.models import Bundle

CHUNK = 1 << 20


def path(digest: str) -> Path:
    return Path(settings.BUNDLES_DIR) / f"{digest}.tar.gz"


def store(user, digest: str, stream: BinaryIO, declared: int | None) -> Bundle:
    """Read the upload into place whole or not at all; SubmissionError (413/400) saying what was wrong."""
    cap = settings.BUNDLE_MAX_BYTES
    if declared is not None and declared > cap:
        raise SubmissionError({"detail": _too_big(declared, cap)}, 413)
    final = path(digest)
    final.parent.mkdir(parents=True, exist_ok=True)
    partial = final.with_name(f"{final.name}.{os.getpid()}.partial")
    try:
        size = _receive(stream, partial, digest, cap)
        check_archive(partial)
        os.replace(partial, final)
    finally:
        partial.unlink(missing_ok=True)
    try:
        return Bundle.objects.get_or_create(owner=user, digest=digest, defaults={"size": size})[0]
    except IntegrityError:  # the same upload twice at once
        return Bundle.objects.get(owner=user, digest=digest)


def _receive(stream: BinaryIO, dest: Path, digest: str, cap: int) -> int:
    sha, size = hashlib.sha256(), 0
    with open(dest, "wb") as f:
        while chunk := stream.read(CHUNK):
            size += len(chunk)
            if size > cap:
                raise SubmissionError({"detail": _too_big(size, cap)}, 413)
            sha.update(chunk)
            f.write(chunk)
    if sha.hexdigest() != digest:
        raise SubmissionError(
            {"detail": f"the upload's sha256 is {sha.hexdigest()}, not {digest}: it was cut short or changed"}
        )
    return size


def _too_big(size: int, cap: int) -> str:
    return (
        f"the packed working dir is {size / 2**20:.1f} MiB, over this server's BUNDLE_MAX_BYTES of "
        f"{cap / 2**20:.1f} MiB: leave data out (.gitignore or .gpuqignore) and mount datasets instead"
    )


def check_archive(file: Path) -> int:
    """A gzip'd tar of plain files and directories with relative paths, unpacking to at most
    BUNDLE_MAX_UNPACKED_BYTES; its unpacked size. SubmissionError otherwise."""
    total = 0
    try:
        with tarfile.open(file, "r:gz") as tar:
            for member in tar:
                problem = _member_problem(member)
                if problem:
                    raise SubmissionError({"detail": f"{member.name!r} in the upload: {problem}"})
                total += member.size
                if total > settings.BUNDLE_MAX_UNPACKED_BYTES:
                    limit = settings.BUNDLE_MAX_UNPACKED_BYTES / 2**20
                    raise SubmissionError({"detail": f"the working dir unpacks to more than {limit:.0f} MiB"}, 413)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise SubmissionError({"detail": f"the upload is not a tar.gz archive: {exc}"}) from None
    return total


def _member_problem(member: tarfile.TarInfo) -> str | None:
    if not (member.isfile() or member.isdir()):
        return "only files and directories are taken (no links or devices)"
    parts = Path(member.name).parts
    if member.name.startswith("/") or ".." in parts:
        return "paths must stay inside the working dir"
    return None


def unpack(digest: str, dest: Path) -> None:
    """Unpack a stored upload into `dest` (the worker's job dir), with tarfile's `data` filter as a second guard."""
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path(digest), "r:gz") as tar:
        tar.extractall(dest, filter="data")
