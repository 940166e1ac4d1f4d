"""User and staff actions on GPUs and arrays: an unknown GPU is a 404 in the API and on the GPU page."""

from __future__ import annotations

from django.test import Client

from scheduler.jobs import control, submission


def test_draining_a_gpu_the_fleet_never_saw_is_404_with_its_name(cast):
    answer = cast.api(cast.staff).post("/api/gpus/GPU-nowhere/drain/", {}, format="json")
    assert answer.status_code == 404 and answer.json() == {"detail": "no GPU GPU-nowhere in the fleet"}


def test_the_history_of_an_unknown_gpu_is_404(cast):
    assert cast.api(cast.alice).get("/api/gpus/GPU-nowhere/history/").status_code == 404


def test_resuming_an_unknown_gpu_on_the_gpu_page_is_404_not_500(cast):
    client = Client()
    client.force_login(cast.staff)
    assert client.post("/gpus/", {"uuid": "GPU-nowhere", "resume": "1"}).status_code == 404


def test_cancelling_an_array_cancels_each_unfinished_job_once(cast):
    array, jobs = submission.submit_array(cast.alice, "matmul", {}, {"n": [16, 32, 64]})
    control.cancel(jobs[0], by="alice")
    assert control.cancel_array(array, by="alice") == 2
    assert control.cancel_array(array, by="alice") == 0
    assert {j.status for j in array.jobs.all()} == {"cancelled"}
