"""The submit form, through Django's test client: scheduling fields and their errors."""

import pytest

from scheduler.jobs.models import Job

pytestmark = pytest.mark.sqlite


@pytest.fixture
def browser(client, cast):
    client.force_login(cast.alice)
    return client


def test_the_form_submits_with_priority_and_dependencies(browser, cast):
    first = browser.post("/submit/", {"kind": "noop"})
    first_id = int(first["Location"].strip("/").split("/")[-1])
    response = browser.post("/submit/", {"kind": "fft", "fft.n": "512", "priority": "3", "after": str(first_id)})
    job = Job.objects.get(id=int(response["Location"].strip("/").split("/")[-1]))
    assert (job.priority, job.params["n"], list(job.after.values_list("id", flat=True))) == (3, 512, [first_id])


def test_the_form_submits_an_array_over_a_grid(browser):
    browser.post("/submit/", {"kind": "fft", "array": "n=256,512,1024"})
    assert sorted(Job.objects.values_list("params__n", flat=True)) == [256, 512, 1024]
    assert Job.objects.values("array").distinct().count() == 1


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"priority": "high"}, "priority"),
        ({"priority": "99"}, "priority"),
        ({"after": "12345"}, "after"),
        ({"array": "colour=1,2"}, "array"),
    ],
)
def test_bad_scheduling_fields_are_shown_inline(browser, fields, field):
    response = browser.post("/submit/", {"kind": "fft", **fields})
    assert response.status_code == 400  # the form again, with the error inline
    assert f'data-field="{field}"' in response.content.decode()
    assert Job.objects.count() == 0


def test_another_users_job_page_is_404(client, cast):
    job = Job.objects.create(owner=cast.alice, kind="noop", time_limit=60)
    client.force_login(cast.bob)
    assert client.get(f"/jobs/{job.id}/").status_code == 404
    assert client.post(f"/jobs/{job.id}/", {"cancel": "1"}).status_code == 404


def test_staff_drain_and_resume_a_gpu_from_the_gpu_page(client, cast, fake_gpus):
    [gpu] = fake_gpus([80])
    client.force_login(cast.alice)
    assert client.post("/gpus/", {"uuid": gpu.uuid, "drain": "1"}).status_code == 403
    client.force_login(cast.staff)
    client.post("/gpus/", {"uuid": gpu.uuid, "drain": "1"})
    assert "drained by sam" in client.get("/gpus/").content.decode()
    client.post("/gpus/", {"uuid": gpu.uuid, "resume": "1"})
    assert "Drain</button>" in client.get("/gpus/").content.decode()


def test_a_waiting_job_says_how_many_jobs_are_ahead_of_it(cast):
    api = cast.api(cast.alice)
    for priority in (0, 0, 5):
        api.post("/api/jobs/", {"kind": "noop", "priority": priority}, format="json")
    last = api.post("/api/jobs/", {"kind": "noop"}, format="json").json()
    assert api.get(f"/api/jobs/{last['id']}/").json()["ahead"] == {"jobs": 3, "higher_priority": 1}


def test_an_array_page_lists_its_members_and_cancels_them_whole(client, cast):
    client.force_login(cast.alice)
    response = client.post("/submit/", {"kind": "fft", "array": "n=256,512"})
    page = client.get(response["Location"]).content.decode()
    assert page.count('class="status waiting"') == 2
    client.force_login(cast.bob)
    assert client.get(response["Location"]).status_code == 404
    client.force_login(cast.alice)
    client.post(response["Location"], {"cancel": "1"})
    assert set(Job.objects.values_list("status", flat=True)) == {"cancelled"}
