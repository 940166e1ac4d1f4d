"""A new lab member's first steps: a token page, `submit-job login`, API docs that work offline, and a
`make run` that leaves a lab member's CLI config alone."""

import json
import re

import pytest
from django.contrib.staticfiles import finders
from django.test import Client
from rest_framework.authtoken.models import Token

pytestmark = pytest.mark.sqlite


def test_the_api_docs_load_redoc_from_our_own_static_files(cast, settings):
    web = Client()
    web.force_login(cast.alice)
    page = web.get("/api/docs/").content.decode()
    scripts = re.findall(r'<script[^>]+src="([^"]+)"', page)
    assert scripts and not [s for s in scripts if s.startswith(("http:", "https:", "//"))]
    for src in scripts:
        assert finders.find(src.removeprefix(settings.STATIC_URL)), src


def test_the_token_page_shows_the_users_own_token_and_the_login_command(cast):
    web = Client()
    web.force_login(cast.alice)
    page = web.get("/token/").content.decode()
    token = Token.objects.get(user=cast.alice).key
    assert token in page and "submit-job login --url http://testserver" in page
    web.post("/token/", {"renew": "1"}, follow=True)
    assert Token.objects.get(user=cast.alice).key != token  # the old one stops working
    assert Client().get("/token/").status_code == 302  # signed out: to the login page


def test_make_run_keeps_a_config_that_names_another_server(tmp_path, monkeypatch):
    from workers.management.commands import runlocal

    config = tmp_path / "cli.json"
    monkeypatch.setattr(runlocal, "CONFIG_PATH", config)
    monkeypatch.setattr("cli.client.CONFIG_PATH", config)
    assert runlocal._write_cli_config("http://127.0.0.1:8000", "local") is True
    assert json.loads(config.read_text()) == {"url": "http://127.0.0.1:8000", "token": "local"}
    assert config.stat().st_mode & 0o077 == 0
    config.write_text(json.dumps({"url": "https://gpuq.lab.example", "token": "mine"}))
    assert runlocal._write_cli_config("http://127.0.0.1:8000", "local") is False
    assert json.loads(config.read_text())["token"] == "mine"
