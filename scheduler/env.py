"""Typed readers for settings that come from the environment: a bad value fails loudly at start."""

import os
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit


def envstr(name: str, default: str = "") -> str:
    """The value of NAME, or of the file named by NAME_FILE (for secrets), or the default."""
    path = os.environ.get(f"{name}_FILE")
    if path:
        return Path(path).read_text().strip()
    return os.environ.get(name) or default


def envbool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name}={value!r} is not a boolean (use true or false)")


def envint(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name}={value!r} is not an integer") from None


def envfloat(name: str, default: float) -> float:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{name}={value!r} is not a number") from None


def envlist(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in envstr(name, default).split(",") if item.strip()]


def url_with_password(url: str, password: str) -> str:
    """URL with the password put in, URL-quoted, so that one with @, : or / cannot break it.

    >>> url_with_password("redis://redis:6379/0", "a@b:c/d")
    'redis://:a%40b%3Ac%2Fd@redis:6379/0'
    >>> url_with_password("postgres://gpuq@db:5432/gpuq", "p")
    'postgres://gpuq:p@db:5432/gpuq'
    """
    if not password:
        return url
    parts = urlsplit(url)
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:{quote(password, safe='')}@{hostport}"))
