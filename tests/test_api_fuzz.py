"""The API fuzzed from its own OpenAPI schema: no 5xx, no response that breaks the schema."""

import pytest

schemathesis = pytest.importorskip(
    "schemathesis", reason="schemathesis is not installed (the GPU host bundle leaves it out)"
)
from hypothesis import HealthCheck  # noqa: E402
from hypothesis import settings as hypothesis_settings  # noqa: E402
from schemathesis.checks import content_type_conformance, not_a_server_error, response_schema_conformance  # noqa: E402


@pytest.fixture
def api_schema(db):
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    from scheduler.wsgi import application

    # As Django's own test client does: the test's transaction must survive each request.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield schemathesis.from_wsgi("/api/schema/?format=json", application)
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


schema = schemathesis.from_pytest_fixture("api_schema")


# 60 examples an operation for each of two users, a normal one and staff (who reach drain, resume and
# the allowlist's writes): about a minute and a half on two cores. (Schemathesis's lazy schema takes no
# parametrized fixture, hence two tests.)
FUZZ = hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))


@schema.parametrize()
@FUZZ
def test_the_api_survives_its_own_schema_as_a_user(case, cast):
    _check(case, cast.token(cast.alice))


@schema.parametrize()
@FUZZ
def test_the_api_survives_its_own_schema_as_staff(case, cast):
    _check(case, cast.token(cast.staff))


def _check(case, token: str) -> None:
    case.headers = {**(case.headers or {}), "Authorization": f"Token {token}"}
    response = case.call_wsgi()
    case.validate_response(response, checks=(not_a_server_error, response_schema_conformance, content_type_conformance))
