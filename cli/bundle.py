"""Packing a working dir for upload: a reproducible tar.gz (same files, same bytes, same sha256), without
what `.gitignore`/`.gpuqignore` exclude, and never bigger than the cap the user is told about."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pathspec

from cli.client import CliError

# Never worth sending: version control, environments, caches, and the outputs of an earlier local run.
ALWAYS_LEFT_OUT = [
    ".git/",
    ".hg/",
    ".venv/",
    "venv/",
    "__pycache__/",
    "*.pyc",
    ".mypy_cache/",
    ".pytest_cache/",
    "/outputs/",
]
IGNORE_FILES = (".gitignore", ".gpuqignore")
DEFAULT_MAX_BYTES = 100 * 1024 * 1024


@dataclass(frozen=True)
class Packed:
    data: bytes
    digest: str
    files: int


def excludes(root: Path) -> pathspec.PathSpec:
    """Git's own rules (GitIgnoreSpec) from the dir's top-level ignore files, after our fixed list."""
    lines = list(ALWAYS_LEFT_OUT)
    for name in IGNORE_FILES:
        if (root / name).is_file():
            lines += (root / name).read_text(errors="replace").splitlines()
    return pathspec.GitIgnoreSpec.from_lines(lines)


def files(root: Path) -> list[Path]:
    """The files to send, relative to root, sorted; ignored dirs are not walked into."""
    spec, chosen = excludes(root), []
    for here, dirs, names in os.walk(root):
        rel = Path(here).relative_to(root)
        dirs[:] = sorted(d for d in dirs if not spec.match_file(f"{(rel / d).as_posix()}/"))
        for name in sorted(names):
            path = rel / name
            full = root / path
            if full.is_file() and not full.is_symlink() and not spec.match_file(path.as_posix()):
                chosen.append(path)
    return chosen


def pack(root: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> Packed:
    """The dir as tar.gz bytes with fixed owners and times, so an unchanged dir has an unchanged digest."""
    if not root.is_dir():
        raise CliError(f"--working-dir {root}: not a directory")
    chosen = files(root)
    raw = io.BytesIO()
    with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        for path in chosen:
            info = tarfile.TarInfo(path.as_posix())
            info.size = (root / path).stat().st_size
            info.mode = 0o755 if os.access(root / path, os.X_OK) else 0o644
            with open(root / path, "rb") as f:
                tar.addfile(info, f)
            if raw.tell() > max_bytes:
                raise CliError(_too_big(root, raw.tell(), max_bytes))
    data = raw.getvalue()
    if len(data) > max_bytes:
        raise CliError(_too_big(root, len(data), max_bytes))
    return Packed(data, hashlib.sha256(data).hexdigest(), len(chosen))


def _too_big(root: Path, size: int, cap: int) -> str:
    return (
        f"{root} packs to more than {cap / 2**20:.0f} MiB (at {size / 2**20:.1f} MiB when packing stopped): "
        "leave data and checkpoints out with .gitignore or .gpuqignore and mount datasets (--mount) instead"
    )
