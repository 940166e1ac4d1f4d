"""Every environment variable, declared once: its default and why it exists, where settings.py reads it.

`envstr`, `envbool`, `envint`, `envfloat` and `envlist` read a variable and declare it; `declare` names one
that compose or CUDA reads rather than Django. A bad value fails loudly at start. The declarations are
what `.env.example`, the compose file's pass-through list and docs/CONFIGURATION.md are made from
(`python manage.py settings_docs`; tests/test_config.py keeps the committed files in step).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

T = TypeVar("T")


@dataclass(frozen=True)
class Var:
    name: str
    default: str  # as .env.example and the docs show it
    why: str
    section: str
    # How compose gives it to the app containers: "pass" (from .env; empty means the default), "required"
    # (compose stops without it in .env), "env" (from .env, compose has its own default), "fixed" (set by the
    # compose file or the image, not from .env), "compose" (read by compose or nginx, not by the app).
    compose: str = "pass"
    example: str = ""  # the value .env.example suggests ("" leaves it empty: the default)


DECLARED: dict[str, Var] = {}
_section = ["General"]


def section(title: str) -> None:
    """The variables declared after this belong under `title` (a heading in .env.example and the docs)."""
    _section[0] = title


def declare(name: str, default: str, why: str, *, compose: str = "pass", example: str = "") -> Var:
    if name in DECLARED and DECLARED[name].why != why:
        raise RuntimeError(f"{name} is declared twice")
    DECLARED[name] = var = Var(name, default, why, _section[0], compose, example)
    return var


def _raw(name: str) -> str | None:
    """The value of NAME, or of the file named by NAME_FILE (for secrets); None when unset or empty."""
    path = os.environ.get(f"{name}_FILE")
    if path:
        return Path(path).read_text().strip()
    return os.environ.get(name) or None


def is_set(name: str) -> bool:
    """Whether NAME (or NAME_FILE) is given at all, whatever the default a setting falls back to."""
    return _raw(name) is not None


def _read(name: str, default: T, why: str, parse: Callable[[str], T], shown: str | None, **opts: str) -> T:
    declare(name, _shown(default) if shown is None else shown, why, **opts)
    value = _raw(name)
    return default if value is None else parse(value)


def _shown(default: object) -> str:
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, list):
        return ",".join(default)
    return str(default)


def envstr(name: str, default: str = "", *, why: str, shown: str | None = None, **opts: str) -> str:
    return _read(name, default, why, str, shown, **opts)


def envbool(name: str, default: bool, *, why: str, shown: str | None = None, **opts: str) -> bool:
    return _read(name, default, why, lambda v: _bool(name, v), shown, **opts)


def envint(name: str, default: int, *, why: str, shown: str | None = None, **opts: str) -> int:
    return _read(name, default, why, _number(name, int, "an integer"), shown, **opts)


def envfloat(name: str, default: float, *, why: str, shown: str | None = None, **opts: str) -> float:
    return _read(name, default, why, _number(name, float, "a number"), shown, **opts)


def envlist(name: str, default: str = "", *, why: str, shown: str | None = None, **opts: str) -> list[str]:
    items = envstr(name, default, why=why, shown=shown, **opts)
    return [item.strip() for item in items.split(",") if item.strip()]


def _bool(name: str, value: str) -> bool:
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name}={value!r} is not a boolean (use true or false)")


def _number(name: str, kind: Callable[[str], T], what: str) -> Callable[[str], T]:
    def parse(value: str) -> T:
        try:
            return kind(value)
        except ValueError:
            raise ValueError(f"{name}={value!r} is not {what}") from None

    return parse


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
