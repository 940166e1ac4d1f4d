"""API token authentication that remembers a token's owner for a second in each process.

DRF's TokenAuthentication builds and runs a query on every request: 10% of a lone job's POST in-process
(cProfile). Remembered for TOKEN_REMEMBER_S, a token deleted (renewed on /token/) or a user deactivated
stops working in every process within that time; in the process that renewed it, at once.
"""

from __future__ import annotations

import copy
import time

from rest_framework.authentication import TokenAuthentication

TOKEN_REMEMBER_S = 1.0
MOST_REMEMBERED = 10_000  # tokens; past this the memory is emptied, so a flood of keys cannot grow it
_remembered: dict[str, tuple[float, tuple]] = {}


class RememberingTokenAuthentication(TokenAuthentication):
    def authenticate_credentials(self, key: str) -> tuple:
        now = time.monotonic()
        until, (user, token) = _remembered.get(key, (0.0, (None, None)))
        if now >= until:
            user, token = super().authenticate_credentials(key)  # raises for an unknown key or inactive user
            if len(_remembered) >= MOST_REMEMBERED:
                _remembered.clear()
            _remembered[key] = (now + TOKEN_REMEMBER_S, (user, token))
        # A copy per request: requests on other threads of this process hold the same remembered user.
        return copy.copy(user), token


def forget(key: str) -> None:
    """Stop remembering `key` in this process (its token was deleted here)."""
    _remembered.pop(key, None)
