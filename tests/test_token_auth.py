"""An API token's owner is remembered for a second per process: a renewed token stops working at once
where it was renewed, a token deleted or a user deactivated elsewhere within TOKEN_REMEMBER_S."""

import time

from django.test import Client
from rest_framework.authtoken.models import Token

from scheduler.api.auth import TOKEN_REMEMBER_S


def refused_after(api, deadline: float) -> float:
    """Seconds until `api`'s token is refused, polling until `deadline` seconds have passed."""
    start = time.monotonic()
    while api.get("/api/jobs/").status_code != 401:
        assert time.monotonic() - start < deadline, "still accepted"
        time.sleep(0.05)
    return time.monotonic() - start


def test_a_token_renewed_on_its_page_stops_working_at_once(cast):
    api = cast.api(cast.alice)
    assert api.get("/api/jobs/").status_code == 200
    web = Client()
    web.force_login(cast.alice)
    web.post("/token/", {"renew": "1"})
    assert api.get("/api/jobs/").status_code == 401


def test_a_token_deleted_elsewhere_stops_working_within_a_second(cast):
    api = cast.api(cast.alice)
    assert api.get("/api/jobs/").status_code == 200
    Token.objects.filter(user=cast.alice).delete()
    assert refused_after(api, TOKEN_REMEMBER_S + 1) <= TOKEN_REMEMBER_S + 0.2


def test_a_deactivated_user_is_refused_within_a_second(cast):
    api = cast.api(cast.bob)
    assert api.get("/api/jobs/").status_code == 200
    cast.bob.is_active = False
    cast.bob.save()
    assert refused_after(api, TOKEN_REMEMBER_S + 1) <= TOKEN_REMEMBER_S + 0.2


def test_each_request_gets_its_own_copy_of_the_remembered_user(cast):
    api = cast.api(cast.alice)
    first = api.get("/api/jobs/").wsgi_request.user
    second = api.get("/api/jobs/").wsgi_request.user
    assert first == second and first is not second
