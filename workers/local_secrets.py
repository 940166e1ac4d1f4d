"""`make run` on a machine other people log in to: nothing of ours readable by them.

`var/` (the SQLite database with the API tokens, result arrays, Redis's data) is made 0700 and
everything under it 0600 (0700 for folders); the processes `make run` starts inherit a umask of 077,
so what they create later is private too. The Redis it starts gets a generated password, kept in
`var/` and passed in a 0600 config file and the children's environment, never on a command line
(`ps` shows command lines to every user).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from urllib.parse import urlparse, urlunparse

PRIVATE_UMASK = 0o077


def make_private(var_dir: Path) -> None:
    """0700 for var/ and its folders, 0600 for its files; and a umask that keeps new ones so."""
    os.umask(PRIVATE_UMASK)
    var_dir.mkdir(parents=True, exist_ok=True)
    var_dir.chmod(0o700)
    for path in var_dir.rglob("*"):
        if path.is_symlink():
            continue
        path.chmod(0o700 if path.is_dir() else 0o600)


def secret(var_dir: Path, name: str) -> str:
    """A secret generated once and kept in var/<name> (0600), the same on every run."""
    path = var_dir / name
    if path.exists():
        return path.read_text().strip()
    value = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    return value


def with_password(url: str, password: str) -> str:
    """`redis://127.0.0.1:6379/0` -> `redis://:PASSWORD@127.0.0.1:6379/0`."""
    parts = urlparse(url)
    host = parts.hostname or "127.0.0.1"
    netloc = f":{password}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunparse(parts._replace(netloc=netloc))


def redis_config(var_dir: Path, password: str) -> Path:
    """The started Redis's config file (0600): its password, read by redis-server from the file."""
    path = var_dir / "redis.conf"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"requirepass {password}\n")
    return path
