"""The submit form after an error: what was typed stays, every error shows once, all in one answer."""

import re

import pytest

from scheduler.jobs.models import Job

pytestmark = pytest.mark.sqlite


@pytest.fixture
def browser(client, cast):
    client.force_login(cast.alice)
    return client


def test_it_keeps_what_was_typed_after_an_error(browser):
    page = browser.post("/submit/", {"kind": "matmul", "matmul.n": "3", "priority": "2", "after": "999"}).content
    text = page.decode()
    assert 'name="matmul.n" value="3"' in text
    assert 'id="priority" value="2"' in text and 'id="after" value="999"' in text
    assert Job.objects.count() == 0


def test_it_shows_no_placeholder_that_looks_like_a_value(browser):
    text = browser.get("/submit/").content.decode()
    assert "placeholder=" not in text
    assert "left empty:" in text  # the default is said in words beside the field


def test_it_shows_every_error_once_and_all_at_once(browser):
    fields = {"kind": "matmul", "matmul.n": "3", "priority": "99", "time_limit": "soon", "after": "12345"}
    text = browser.post("/submit/", fields).content.decode()
    errors = re.findall(r'<p class="error" data-field="([a-z_]+)">', text)
    assert sorted(errors) == ["after", "n", "priority", "time_limit"]
    assert text.count("between") >= 2  # n's range and priority's range, each once
    assert text.count("must be a whole number") == 1


def test_an_array_error_names_the_grid_value_without_a_python_repr(browser):
    text = browser.post("/submit/", {"kind": "matmul", "array": "n=3,256,5"}).content.decode()
    [message] = re.findall(r'<p class="error" data-field="array">([^<]*)</p>', text)
    assert "n=3:" in message and "n=5:" in message and "n=256" not in message
    assert "{" not in message and "&#x27;" not in message
    assert Job.objects.count() == 0
