"""A small client of the REST API: where the server is, who we are, and errors in words."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

CONFIG_PATH = Path(os.environ.get("GPUQ_CONFIG", Path.home() / ".config" / "gpuq" / "cli.json"))


class CliError(Exception):
    """An error for the user, with the exit status to leave with."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code


def saved_config() -> dict:
    """The config file's URL and token (`submit-job login` and `make run` write it), or {}."""
    try:
        return json.loads(CONFIG_PATH.read_text()) if CONFIG_PATH.exists() else {}
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read {CONFIG_PATH}: {exc}") from None


def save_config(url: str, token: str) -> None:
    """Keep the server's URL and a token for later commands, readable by this user only."""
    CONFIG_PATH.parent.mkdir(parents=True, exist_ok=True)
    CONFIG_PATH.touch(mode=0o600)
    CONFIG_PATH.chmod(0o600)
    CONFIG_PATH.write_text(json.dumps({"url": url.rstrip("/"), "token": token}))


@dataclass
class Client:
    url: str
    token: str
    timeout: float = 30.0
    token_source: str = "--token"  # named when the server refuses the token

    @classmethod
    def configured(cls, url: str | None = None, token: str | None = None) -> Client:
        """From flags, then GPUQ_URL / GPUQ_TOKEN, then the file `submit-job login` (or `make run`) writes."""
        saved = saved_config()
        sources = (
            (token, "--token"),
            (os.environ.get("GPUQ_TOKEN"), "$GPUQ_TOKEN"),
            (saved.get("token"), str(CONFIG_PATH)),
        )
        token, source = next(((t, where) for t, where in sources if t), (None, ""))
        url = url or os.environ.get("GPUQ_URL") or saved.get("url")
        if not url or not token:
            raise CliError(
                "no server configured: run `submit-job login --url URL` (your token is on the server's "
                f"/token/ page), or pass --url and --token, or set GPUQ_URL and GPUQ_TOKEN (read from {CONFIG_PATH})"
            )
        return cls(url.rstrip("/"), token, token_source=source)

    def call_raw(self, method: str, path: str, data: bytes, content_type: str) -> Any:
        """Send `data` as the body, not JSON (an upload)."""
        return _answer(self._send(method, path, data=data, headers={"Content-Type": content_type}))

    def exists(self, path: str) -> bool:
        """Whether GET `path` finds something (200) rather than nothing (404)."""
        r = self._send("GET", path)
        if r.status_code == 404:
            return False
        _answer(r)
        return True

    def download(self, path: str, dest: Path) -> int:
        """Stream the file at `path` into `dest`, whole or not at all; its size in bytes. A 404 says the
        server's reason (the job has no such file), not "no such job"."""
        with self._send("GET", path, stream=True) as r:
            if r.status_code != 200:
                _answer(r, not_found=describe_errors(_body(r)), source=self.token_source)
            partial = dest.with_name(f"{dest.name}.partial")
            try:
                with open(partial, "wb") as f:
                    for chunk in r.iter_content(1 << 20):
                        f.write(chunk)
                partial.replace(dest)
            except requests.RequestException as exc:
                raise CliError(f"the download from {self.url} broke off: {exc}", 3) from None
            except OSError as exc:
                raise CliError(f"cannot write {dest}: {exc.strerror}") from None
            finally:
                partial.unlink(missing_ok=True)
        return dest.stat().st_size

    def _send(self, method: str, path: str, headers: dict | None = None, **kwargs: Any) -> requests.Response:
        try:
            return requests.request(
                method,
                f"{self.url}{path}",
                timeout=self.timeout,
                headers={"Authorization": f"Token {self.token}", **(headers or {})},
                **kwargs,
            )
        except requests.ConnectionError:
            raise CliError(
                f"cannot reach the server at {self.url}: is it running? (`make run` starts one)", 3
            ) from None
        except requests.Timeout:
            raise CliError(f"the server at {self.url} did not answer within {self.timeout:.0f} s", 3) from None

    def call(self, method: str, path: str, body: Any = None, params: dict | None = None) -> Any:
        return _answer(self._send(method, path, json=body, params=params), source=self.token_source)


def _answer(
    r: requests.Response, not_found: str = "not found: no such job (or not yours)", source: str = "--token"
) -> Any:
    if r.status_code == 401:
        raise CliError(
            f"the server at {r.url.split('/api/')[0]} refused the token from {source}: "
            "get yours from its /token/ page and run `submit-job login`",
            3,
        )
    if r.status_code == 404:
        raise CliError(not_found, 2)
    body = _body(r)
    if r.status_code >= 400:
        raise CliError(f"refused ({r.status_code}): {describe_errors(body)}", 2 if r.status_code < 500 else 3)
    return body


def _body(r: requests.Response) -> Any:
    try:
        return r.json()
    except ValueError:
        return r.text


def describe_errors(body: Any, prefix: str = "") -> str:
    """Flatten DRF's nested error bodies into `field: message` lines."""
    if isinstance(body, dict):
        return "; ".join(describe_errors(v, f"{prefix}{k}: " if k != "detail" else prefix) for k, v in body.items())
    if isinstance(body, list):
        parts = [
            describe_errors(v, f"{prefix}[{i}] " if isinstance(v, dict) else prefix) for i, v in enumerate(body) if v
        ]
        return "; ".join(parts)
    return f"{prefix}{body}"
