"""An error answered before the request's body was read (a 401 to an unauthenticated upload, say) reads the
body first. gunicorn drains at most 64 KiB of a body the app left unread and then closes the connection;
nginx, still streaming the rest of an upload to it, then fails with a broken pipe and answers 502 in place
of our 4xx (seen: 5 in 40 unauthenticated 9 MB uploads through nginx). nginx caps what there is to read
(NGINX_MAX_BUNDLE)."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

CHUNK = 256 * 1024


class DrainUnreadBody:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code >= 400 and not request._read_started:
            while request.read(CHUNK):
                pass
        return response
