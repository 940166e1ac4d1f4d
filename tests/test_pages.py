"""The pages in a real headless Chromium against the running app; screenshots go to test-artifacts/."""

import shutil

import numpy as np
import pytest

from tests import support

pytestmark = [pytest.mark.slow]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def browser():
    if not shutil.which("chromium"):
        pytest.skip("Debian's chromium is not installed (make test installs it as root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


def log_in(page, url: str, user: str, password: str) -> None:
    page.goto(f"{url}/login/")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("#login")
    page.wait_for_url(f"{url}/")


def test_a_job_submitted_in_the_form_shows_up_finished_on_its_page(live_system, live_cast, browser):
    page = browser.new_page()
    log_in(page, live_system.url, "alice", "alice-secret-pw")
    page.goto(f"{live_system.url}/submit/")
    page.select_option("#kind", "matmul")
    page.fill("input[name='matmul.n']", "128")
    page.screenshot(path=str(support.ARTIFACTS / "submit-form.png"), full_page=True)
    page.click("#submit")
    page.wait_for_url("**/jobs/*/")
    page.wait_for_function("document.getElementById('status').textContent === 'succeeded'", timeout=60000)
    assert "checksum" in page.inner_text("#result")
    link = page.locator("#result-npy")
    assert link.is_visible() and link.inner_text() == "Download result (.npy)"
    job_id = page.url.rstrip("/").rsplit("/", 1)[1]
    assert link.get_attribute("href") == f"/api/jobs/{job_id}/result.npy"
    with page.expect_download() as download:  # with the page's session, as a user's click would
        link.click()
    assert download.value.suggested_filename == f"job-{job_id}.npy"
    assert np.load(download.value.path()).shape == (128, 128)
    page.screenshot(path=str(support.ROOT / "docs" / "img" / "job-page.png"), full_page=True)  # the tour


def test_the_form_shows_a_bad_parameter_inline(live_system, live_cast, browser):
    page = browser.new_page()
    log_in(page, live_system.url, "alice", "alice-secret-pw")
    page.goto(f"{live_system.url}/submit/")
    page.select_option("#kind", "matmul")
    page.fill("input[name='matmul.n']", "3")
    page.click("#submit")
    error = page.locator("p.error[data-field=n]")
    assert "between" in error.inner_text()
    page.screenshot(path=str(support.ARTIFACTS / "submit-error.png"), full_page=True)


def test_the_gpu_page_lists_every_worker(live_system, live_cast, browser):
    page = browser.new_page()
    log_in(page, live_system.url, "alice", "alice-secret-pw")
    page.goto(f"{live_system.url}/gpus/")
    text = page.inner_text("#gpus")
    assert "hostA" in text and "hostB" in text
    page.screenshot(path=str(support.ARTIFACTS / "gpus.png"), full_page=True)


@pytest.fixture
def alice_token(live_cast) -> str:
    return live_cast.token(live_cast.alice)  # before the browser: Playwright's loop forbids the ORM after


def test_the_dashboard_updates_itself_with_charts_and_counts(live_system, alice_token, browser):
    page = browser.new_page()
    log_in(page, live_system.url, "alice", "alice-secret-pw")
    page.goto(f"{live_system.url}/gpus/")
    page.wait_for_function("Number(document.getElementById('gpus').dataset.refreshed || 0) >= 1", timeout=30000)
    assert page.inner_text("#counts [data-status=succeeded] b") == "0"
    http = live_system.session(alice_token)
    http.post(f"{live_system.url}/api/jobs/", json={"kind": "noop"})
    # No reload: the page's own refresh picks up the finished job and draws each GPU's history.
    page.wait_for_function(
        "document.querySelector('#counts [data-status=succeeded] b').textContent === '1'", timeout=30000
    )
    page.wait_for_selector("#gpus td.chart .uplot canvas", timeout=30000)  # a uPlot chart, axes and legend
    assert "util" in page.inner_text("#gpus td.chart .u-legend")
    page.screenshot(path=str(support.ROOT / "docs" / "img" / "dashboard.png"), full_page=True)  # the tour
