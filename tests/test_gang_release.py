"""Multi-GPU jobs through submission and release, on published fake GPUs: all or nothing, quotas, refusals."""

import threading

import pytest
from django.db import connection

from scheduler.jobs import forecast, lifecycle
from scheduler.jobs.models import HELD, Job, Quota, Status
from scheduler.jobs.release import release
from scheduler.jobs.submission import SubmissionError, submit

pytestmark = pytest.mark.sqlite


def allreduce(user, gpus: int, n: int = 1, **extra) -> list[Job]:
    return submit(user, [{"kind": "allreduce", "params": {"n": 1024}, "gpus": gpus, **extra} for _ in range(n)])


def test_a_two_gpu_job_is_released_to_both_gpus_of_a_host_at_once(transactional_db, live_cast, fake_gpus):
    a = fake_gpus([80, 80], host="hostA")
    fake_gpus([80], host="hostB")
    [job] = allreduce(live_cast.alice, 2)
    job.refresh_from_db()
    assert job.status == Status.QUEUED and job.queue == a[0].queue
    assert job.gang == [{"queue": g.queue, "uuid": g.uuid} for g in a]


def test_its_gpus_take_no_other_job_until_it_ends_then_all_are_free(transactional_db, live_cast, fake_gpus):
    a = fake_gpus([80, 80], host="hostA")
    [gang] = allreduce(live_cast.alice, 2)
    others = submit(live_cast.bob, [{"kind": "noop"}] * 2)
    assert all(j.status == Status.WAITING for j in Job.objects.filter(id__in=[o.id for o in others]))
    claimed, lease = lifecycle.claim(gang.id, "hostA", a[0].queue)
    lifecycle.finish(claimed, lease, Status.FAILED, error="a failed attempt")
    release()
    assert {j.queue for j in Job.objects.filter(id__in=[o.id for o in others])} == {g.queue for g in a}


def test_a_requeued_gang_job_holds_nothing_while_it_waits(transactional_db, live_cast, fake_gpus):
    fake_gpus([80, 80], host="hostA")
    [gang] = allreduce(live_cast.alice, 2)
    Job.objects.filter(id=gang.id).update(status=Status.RUNNING)
    fake_gpus([80], host="hostB")  # somewhere for the job below, which must not land on hostA meanwhile
    lifecycle.requeue(gang.id, "its worker died")
    gang.refresh_from_db()
    assert gang.status == Status.WAITING and gang.gang == [] and gang.queue == ""


def test_no_gpu_is_given_twice_under_concurrent_releasers(transactional_db, live_cast, fake_gpus):
    fake_gpus([80] * 4, host="hostA", ttl=120)
    fake_gpus([80] * 2, host="hostB", ttl=120)
    stop = threading.Event()

    def releaser():
        while not stop.is_set():
            release()
        connection.close()

    threads = [threading.Thread(target=releaser) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for _ in range(6):
            allreduce(live_cast.alice, 2, n=2)
            submit(live_cast.bob, [{"kind": "noop"}] * 3)
            _check_no_gpu_shared()
            _finish_some()
    finally:
        stop.set()
        for t in threads:
            t.join()
    _check_no_gpu_shared()


def _check_no_gpu_shared() -> None:
    held = list(Job.objects.filter(status__in=HELD).values("id", "queue", "gang", "gpus"))
    gang_gpus = [m["queue"] for j in held for m in j["gang"]]
    assert len(gang_gpus) == len(set(gang_gpus)), "a GPU is in two multi-GPU jobs"
    assert all(len(j["gang"]) == j["gpus"] for j in held if j["gpus"] > 1), "a job holds part of its GPUs"
    assert all(len({m["queue"].split(".")[1] for m in j["gang"]}) == 1 for j in held if j["gpus"] > 1)
    assert not {j["queue"] for j in held if j["gpus"] == 1} & set(gang_gpus), "a one-GPU job on a held GPU"


def _finish_some() -> None:
    for job in Job.objects.filter(status=Status.QUEUED)[:4]:
        claimed = lifecycle.claim(job.id, "fakehost", job.queue)
        if claimed:
            lifecycle.finish(claimed[0], claimed[1], Status.SUCCEEDED, result={})


def test_a_job_no_host_can_hold_is_refused_with_the_reason(transactional_db, live_cast, fake_gpus):
    fake_gpus([80, 80], host="hostA")
    fake_gpus([80, 80], host="hostB")
    with pytest.raises(SubmissionError) as refused:
        allreduce(live_cast.alice, 3)
    assert "needs 3 GPUs of one host" in refused.value.errors["gpus"] and "the most: 2" in refused.value.errors["gpus"]


def test_a_draining_gpu_does_not_count_for_admission(transactional_db, live_cast, fake_gpus, r):
    from scheduler.fleet import store as fleet

    a = fake_gpus([80, 80], host="hostA")
    fleet.set_draining(r, a[1].uuid, True)
    with pytest.raises(SubmissionError):
        allreduce(live_cast.alice, 2)
    fleet.set_draining(r, a[1].uuid, False)


def test_a_one_gpu_kind_cannot_ask_for_several(transactional_db, live_cast, fake_gpus):
    fake_gpus([80, 80], host="hostA")
    with pytest.raises(SubmissionError) as refused:
        submit(live_cast.alice, [{"kind": "matmul", "gpus": 2}])
    assert refused.value.errors["gpus"].startswith("kind 'matmul' runs on one GPU; kinds that use several: allreduce")


def test_a_four_gpu_job_uses_four_of_the_quota(transactional_db, live_cast, fake_gpus):
    fake_gpus([80] * 4, host="hostA")
    fake_gpus([80], host="hostB")
    Quota.objects.create(user=live_cast.alice, max_gpus=4)
    with pytest.raises(SubmissionError):
        allreduce(live_cast.alice, 5)
    [big] = allreduce(live_cast.alice, 4)
    [small] = submit(live_cast.alice, [{"kind": "noop"}])
    big.refresh_from_db(), small.refresh_from_db()
    assert big.status == Status.QUEUED
    assert small.status == Status.WAITING and small.wait_reason == "quota: 4 of your 4 GPUs in use"


def test_a_multi_gpu_job_is_charged_for_each_of_its_gpus(transactional_db, live_cast, fake_gpus, r):
    from scheduler.jobs.fairshare import usage

    a = fake_gpus([80] * 4, host="hostA")
    [job] = allreduce(live_cast.alice, 4)
    claimed, lease = lifecycle.claim(job.id, "hostA", a[0].queue)
    lifecycle.finish(claimed, lease, Status.SUCCEEDED, result={})
    job.refresh_from_db()
    seconds = (job.finished_at - job.started_at).total_seconds()
    assert usage(r, [live_cast.alice.id])[live_cast.alice.id] == pytest.approx(4 * seconds, rel=1e-3)


def test_a_waiting_job_gets_its_position_and_estimated_start(transactional_db, live_cast, fake_gpus, r):
    a = fake_gpus([80, 80], host="hostA")
    [busy] = submit(live_cast.bob, [{"kind": "burn", "params": {"seconds": 30, "mib": 1}, "time_limit": 60}])
    [gang] = allreduce(live_cast.alice, 2)
    forecast.update(r)
    told = forecast.of(gang)
    assert told["position"] == 1 and told["gpus"] == [g.queue for g in a]
    assert told["text"] == f"reserved GPUs 0-1 of hostA for job {gang.id}; starts in about 30 s"
    assert forecast.reserved_queues(r) == {g.queue: gang.id for g in a}
    busy.refresh_from_db()
    assert forecast.of(busy) is None  # released: no estimate


def test_a_multi_gpu_container_gets_device_requests_for_all_its_gpus(cast):
    from scheduler.jobs.models import ContainerImage
    from workers.containers import create_options
    from workers.identity import WorkerIdentity

    entry = ContainerImage.objects.create(image="team/train:1")
    gang = [{"queue": "gpu.node1.aaaa", "uuid": "GPU-aaaa"}, {"queue": "gpu.node1.bbbb", "uuid": "GPU-bbbb"}]
    job = Job(id=6, attempts=1, gpus=2, gang=gang, params={"image": "team/train:1", "command": "", "env": ""})
    options = create_options(job, entry, WorkerIdentity("gpu", "node1", "GPU-aaaa", "gpu.node1.aaaa"))
    assert [r["DeviceIDs"] for r in options["device_requests"]] == [["GPU-aaaa"], ["GPU-bbbb"]]
    env = options["environment"]
    assert env["CUDA_VISIBLE_DEVICES"] == env["NVIDIA_VISIBLE_DEVICES"] == "GPU-aaaa,GPU-bbbb"
    assert env["NCCL_NVLS_ENABLE"] == "0"


def test_the_form_and_the_array_api_take_gpus(transactional_db, live_cast, fake_gpus, client):
    fake_gpus([80, 80], host="hostA")
    client.force_login(live_cast.alice)
    client.post("/submit/", {"kind": "allreduce", "allreduce.n": "512", "gpus": "2"})
    refused = client.post("/submit/", {"kind": "matmul", "gpus": "2"})
    assert 'data-field="gpus"' in refused.content.decode()
    api = live_cast.api(live_cast.alice)
    answer = api.post("/api/arrays/", {"kind": "allreduce", "grid": {"n": [256, 512]}, "gpus": 2}, format="json")
    assert answer.status_code == 201, answer.json()
    assert sorted(Job.objects.values_list("gpus", flat=True)) == [2, 2, 2]
    bad = api.post("/api/jobs/", {"kind": "allreduce", "gpus": 0}, format="json")
    assert bad.status_code == 400 and "gpus" in bad.json()


def test_the_gpu_page_shows_which_job_holds_and_which_reserves_a_gpu(transactional_db, live_cast, fake_gpus, r, client):
    a = fake_gpus([80, 80], host="hostA")
    b = fake_gpus([80, 80], host="hostB")
    [holder] = allreduce(live_cast.alice, 2)  # takes one host whole
    submit(live_cast.bob, [{"kind": "burn", "params": {"seconds": 30, "mib": 1}, "time_limit": 60}])
    Job.objects.filter(id=holder.id).update(work_estimate=600)  # the other host frees far sooner
    [waiting] = allreduce(live_cast.alice, 2)  # the other host has a job: it reserves that host
    forecast.update(r)
    rows = {row["queue"]: row for row in client.get("/api/gpus/", HTTP_AUTHORIZATION=_token(live_cast)).json()}
    holder.refresh_from_db()
    held = {m["queue"] for m in holder.gang}
    other = ({g.queue for g in a} | {g.queue for g in b}) - held
    assert all(rows[q]["held_by"] == holder.id for q in held)
    assert all(rows[q]["reserved_for"] == waiting.id for q in other)
    client.force_login(live_cast.alice)
    page = client.get("/gpus/").content.decode()
    assert f"held by job {holder.id}" in page and f"reserved for job {waiting.id}" in page


def _token(cast) -> str:
    return f"Token {cast.token(cast.alice)}"
