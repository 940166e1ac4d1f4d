"""Password guessing is slowed at the door: sign-in POSTs are counted per client address and per
user name (as django-axes does), whichever sign-in page they come through."""

from __future__ import annotations

import math
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from scheduler import ratelimit

LOGIN_PATHS = ("/login/", "/admin/login/")


def client_address(request: HttpRequest) -> str:
    """nginx appends the address it saw to X-Forwarded-For: the last entry is the one not forged."""
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    return forwarded.rsplit(",", 1)[-1].strip() or request.META.get("REMOTE_ADDR", "")


class LoginThrottle:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method == "POST" and request.path in LOGIN_PATHS:
            name = request.POST.get("username", "")[:150].lower()
            wait = max(
                ratelimit.take(f"login:addr:{client_address(request)}", settings.LOGIN_RATE),
                ratelimit.take(f"login:user:{name}", settings.LOGIN_RATE),
            )
            if wait:
                answer = HttpResponse(f"too many sign-in attempts: try again in {math.ceil(wait)} s\n", status=429)
                answer["Retry-After"] = str(math.ceil(wait))
                return answer
        return self.get_response(request)
