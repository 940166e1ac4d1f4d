"""The lab's screens in a real headless Chromium, for a normal user and for staff, at desktop and phone
width, light and dark; the screenshots land in docs/img/ for the README's tour."""

import re

import pytest
import redis

from tests import support
from tests.test_pages import browser, log_in  # noqa: F401 (the browser fixture)

pytestmark = [pytest.mark.slow]
IMG = support.ROOT / "docs" / "img"
DESKTOP, PHONE = {"width": 1280, "height": 860}, {"width": 390, "height": 844}
PASSWORDS = {"alice": "alice-secret-pw", "bob": "bob-secret-pw", "sam": "sam-secret-pw"}


@pytest.fixture
def tokens(live_cast) -> dict[str, str]:
    # Tokens before the browser starts: Playwright's event loop forbids the ORM afterwards.
    return {u.username: live_cast.token(u) for u in (live_cast.alice, live_cast.bob, live_cast.staff)}


@pytest.fixture
def lab(live_system, tokens):
    """Bob holds both workers with long burns (each runs one and holds one more); alice waits, with one job
    after another of hers, and fair share puts her first job before bob's last."""
    http = {name: live_system.session(t) for name, t in tokens.items()}
    url = live_system.url
    burn = {"kind": "burn", "params": {"seconds": 60, "mib": 1}}
    bobs = http["bob"].post(f"{url}/api/jobs/batch/", json={"jobs": [burn] * 5}).json()["jobs"]
    # Bob's round first: had alice's job been waiting when it ran, fair share could have put it among
    # the four that the workers take (a race the full suite's load once lost).
    support.wait_until(
        lambda: sum(j["status"] == "running" for j in http["sam"].get(f"{url}/api/jobs/").json()["results"]) == 2,
        60,
        "bob's burns to hold both workers",
    )
    first = http["alice"].post(f"{url}/api/jobs/", json=burn).json()
    second = http["alice"].post(f"{url}/api/jobs/", json={"kind": "noop", "after": [first["id"]]}).json()
    yield {"bob": [j["id"] for j in bobs], "first": first["id"], "second": second["id"]}
    for job_id in [*[j["id"] for j in bobs], first["id"], second["id"]]:
        http["sam"].post(f"{url}/api/jobs/{job_id}/cancel/")


def _page(browser, url: str, user: str, viewport=DESKTOP, scheme="light"):  # noqa: F811
    page = browser.new_page(viewport=viewport, color_scheme=scheme)
    log_in(page, url, user, PASSWORDS[user])
    return page


def _shot(page, name: str) -> None:
    page.screenshot(path=str(IMG / f"{name}.png"), full_page=True)


def test_it_shows_a_normal_user_the_lab_queue_without_others_ids(live_system, lab, browser):  # noqa: F811
    page = _page(browser, live_system.url, "alice")
    page.goto(f"{live_system.url}/queue/")
    rows = page.locator("#queue tbody tr")
    texts = [rows.nth(i).inner_text() for i in range(rows.count())]
    bobs = [t for t in texts if "bob" in t]
    assert len(bobs) == 5 and all(t.startswith("—") for t in bobs) and sum("running" in t for t in bobs) == 2
    assert page.locator(f"#queue a[href='/jobs/{lab['bob'][0]}/']").count() == 0
    assert page.locator(f"#queue a[href='/jobs/{lab['second']}/']").count() == 1
    assert "bob" in page.inner_text("#shares") and "alice" in page.inner_text("#shares")
    _shot(page, "lab-queue")


def test_staff_see_every_id_and_owner(live_system, lab, browser):  # noqa: F811
    page = _page(browser, live_system.url, "sam")
    page.goto(f"{live_system.url}/queue/")
    assert page.locator(f"#queue a[href='/jobs/{lab['bob'][0]}/']").count() == 1
    page.goto(f"{live_system.url}/")
    assert "owner" in page.inner_text("#jobs thead") and "bob" in page.inner_text("#jobs")
    _shot(page, "jobs-staff")


def test_the_gpu_page_names_who_holds_each_gpu_and_its_running_link_works(live_system, lab, browser):  # noqa: F811
    page = _page(browser, live_system.url, "alice")
    page.goto(f"{live_system.url}/gpus/")
    page.wait_for_function("Number(document.getElementById('gpus').dataset.refreshed || 0) >= 1", timeout=30000)
    assert page.inner_text("#gpus").count("bob · burn") == 2
    assert page.locator("#gpus a[href^='/jobs/']").count() == 0  # no link that would be a 404
    _shot(page, "gpus-user")


def test_a_dependent_job_names_the_job_it_waits_for(live_system, lab, browser):  # noqa: F811
    page = _page(browser, live_system.url, "alice")
    page.goto(f"{live_system.url}/jobs/{lab['second']}/")
    assert page.inner_text("#reason") == f"waiting for job {lab['first']} (waiting)"
    page.goto(f"{live_system.url}/jobs/{lab['first']}/")
    assert page.inner_text("#ahead") == "· behind 0 waiting jobs in the release order"  # bob's 5th is after it
    assert "UTC" in page.inner_text("#facts")
    _shot(page, "job-waiting")


def test_cancel_asks_first(live_system, lab, browser):  # noqa: F811
    page = _page(browser, live_system.url, "alice")
    page.goto(f"{live_system.url}/jobs/{lab['second']}/")
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.click("#cancel")
    page.wait_for_timeout(300)  # a dismissed dialog sends nothing; give a wrong submit time to land
    assert page.inner_text("#status") == "waiting"
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#cancel")
    page.wait_for_function("document.getElementById('status').textContent === 'cancelled'", timeout=10000)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_pages_fit_a_phone_and_follow_the_colour_scheme(live_system, lab, browser, scheme):  # noqa: F811
    page = _page(browser, live_system.url, "alice", PHONE, scheme)
    for path, name in (("/gpus/", "gpus"), ("/queue/", "lab-queue"), ("/", "jobs")):
        page.goto(f"{live_system.url}{path}")
        # The page itself does not scroll sideways: wide tables scroll inside their box.
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        _shot(page, f"{name}-phone-{scheme}")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert (background == "rgb(255, 255, 255)") == (scheme == "light")
    desk = _page(browser, live_system.url, "alice", DESKTOP, scheme)
    desk.goto(f"{live_system.url}/queue/")
    _shot(desk, f"lab-queue-{scheme}")


def test_the_form_keeps_its_input_and_lists_every_error(live_system, tokens, browser):  # noqa: F811
    page = _page(browser, live_system.url, "alice")
    page.goto(f"{live_system.url}/submit/")
    page.select_option("#kind", "matmul")
    page.fill("input[name='matmul.n']", "3")
    page.fill("#priority", "99")
    page.click("#submit")
    assert page.input_value("input[name='matmul.n']") == "3" and page.input_value("#priority") == "99"
    assert sorted(page.locator("p.error[data-field]").evaluate_all("els => els.map(e => e.dataset.field)")) == [
        "n",
        "priority",
    ]
    _shot(page, "submit-errors")


def test_staff_read_the_accounting_and_download_it_as_csv(live_system, tokens, browser):  # noqa: F811
    from tests.test_e2e import wait_final

    specs = [{"kind": "fft", "params": {"n": 256}}] * 2 + [{"kind": "fault", "params": {"mode": "raise"}}]
    for user, spec in zip(("alice", "bob", "sam"), specs, strict=True):
        http = live_system.session(tokens[user])
        wait_final(http, live_system.url, http.post(f"{live_system.url}/api/jobs/", json=spec).json()["id"])
    page = _page(browser, live_system.url, "sam")
    page.goto(f"{live_system.url}/accounting/?days=1")
    by_user, by_kind = page.inner_text("#by-user"), page.inner_text("#by-kind")
    assert all(name in by_user for name in ("alice", "bob", "sam")) and "fault" in by_kind and "fft" in by_kind
    with page.expect_download() as download:
        page.click("#csv")
    assert download.value.suggested_filename == "gpuq-accounting-1d.csv"
    assert open(download.value.path()).readline().startswith("id,owner,kind,status")
    _shot(page, "accounting")


@pytest.fixture
def ran_here(live_system, tokens):
    """A short job of bob's, then one of alice's, on one GPU (the other drained meanwhile): the GPU, both jobs."""
    from tests.test_e2e import wait_final

    url, staff = live_system.url, live_system.session(tokens["sam"])
    gpu, other = sorted(staff.get(f"{url}/api/gpus/").json(), key=lambda g: g["host"])
    staff.post(f"{url}/api/gpus/{other['uuid']}/drain/", json={"reason": "the chart test wants one GPU"})
    try:
        jobs = {}
        for user in ("bob", "alice"):
            http = live_system.session(tokens[user])
            job = http.post(f"{url}/api/jobs/", json={"kind": "burn", "params": {"seconds": 2, "mib": 1}}).json()
            jobs[user] = wait_final(http, url, job["id"])
    finally:
        staff.post(f"{url}/api/gpus/{other['uuid']}/resume/")
    assert {j["queue"] for j in jobs.values()} == {gpu["queue"]}
    return gpu, jobs


def test_a_gpus_chart_spans_hours_on_a_local_time_axis_and_marks_the_jobs_that_ran_there(
    live_system, ran_here, browser, redis_url  # noqa: F811
):  # fmt: skip
    from tests.test_gpu_chart import hours_of_minutes

    gpu, jobs = ran_here
    hours_of_minutes(redis.Redis.from_url(redis_url), gpu["uuid"], 3, gpu["snapshot"]["memory_total"])
    page = _page(browser, live_system.url, "alice")
    page.goto(f"{live_system.url}/gpus/")
    page.click(f"#gpus a[href='/gpus/{gpu['uuid']}/']")
    page.click("#ranges >> text=3 h")
    page.wait_for_selector("#chart[data-drawn='1']")
    ticks = page.get_attribute("#chart", "data-ticks").split(" | ")
    assert len(ticks) >= 3 and all(re.match(r"\d\d:\d\d", t) for t in ticks), ticks
    assert "utilization" in page.inner_text("#chart .u-legend") and "memory" in page.inner_text("#chart .u-legend")
    mine, bobs = jobs["alice"]["id"], jobs["bob"]["id"]
    for edge in ("start", "end"):
        assert page.locator(f"#chart a.marker.{edge}[href='/jobs/{mine}/']").count() == 1
        assert page.locator(f'#chart span.marker.{edge}[title^="bob\'s burn"]').count() == 1  # named, no link
    assert page.locator(f"#chart [href='/jobs/{bobs}/']").count() == 0
    assert "4 job markers" in page.get_attribute("#chart", "aria-label")
    page.hover("#chart .u-over", position={"x": 380, "y": 60})  # the legend then gives that minute's range
    assert re.search(r"utilization\s*\d+% \(\d+–\d+\)", page.inner_text("#chart .u-legend"))
    _shot(page, "gpu-chart")
    # The phone shots show the last 15 minutes: a reading a second, followed every 2 s.
    for viewport, scheme, minutes, name in ((DESKTOP, "dark", 180, "gpu-chart-dark"),
                                            (PHONE, "light", 15, "gpu-chart-phone-light"),
                                            (PHONE, "dark", 15, "gpu-chart-phone-dark")):  # fmt: skip
        other = _page(browser, live_system.url, "alice", viewport, scheme)
        other.goto(f"{live_system.url}/gpus/{gpu['uuid']}/?minutes={minutes}")
        other.wait_for_selector("#chart[data-drawn='1']")
        assert other.locator(f"#chart a.marker[href='/jobs/{mine}/']").count() == 2
        assert other.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
        if minutes == 15:
            other.wait_for_function("Number(document.getElementById('chart').dataset.refreshed || 0) >= 1")
        _shot(other, name)
