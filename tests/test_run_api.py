"""The API of `run` jobs without workers: uploads and their caps, mounts and who may use them, where a job
runs (and a multi-user deployment refusing local processes), time-limit defaults, the log's pages."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext

from cli import bundle as packing
from scheduler.jobs.models import Bundle, ContainerImage, GroupLimits, Job, LogLine, Mount

pytestmark = pytest.mark.sqlite


@pytest.fixture(autouse=True)
def files_in_tmp(settings, tmp_path):
    settings.BUNDLES_DIR = tmp_path / "bundles"
    settings.OUTPUTS_DIR = tmp_path / "outputs"
    settings.RUN_JOBS_IN = "auto"
    settings.ENGINE_CONFIGURED = False
    settings.MULTI_USER = False


def tar_gz(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def put(client, data: bytes, digest: str | None = None):
    digest = digest or hashlib.sha256(data).hexdigest()
    return client.put(f"/api/bundles/{digest}/", data, content_type="application/gzip")


def run(client, **params):
    body = {"kind": "run", "params": {"command": "python train.py", **params}}
    body |= {k: params.pop(k) for k in ("name", "tags", "time_limit") if k in params}
    body["params"] = {"command": "python train.py", **params}
    return client.post("/api/jobs/", body, format="json")


def test_it_stores_an_upload_once_and_tells_its_owner_only(cast):
    data = tar_gz({"train.py": b"print('hi')\n"})
    digest = hashlib.sha256(data).hexdigest()
    alice = cast.api(cast.alice)
    assert alice.get(f"/api/bundles/{digest}/").status_code == 404
    assert put(alice, data).status_code == 201
    assert alice.get(f"/api/bundles/{digest}/").json()["size"] == len(data)
    # Bob has not uploaded it: the server does not say someone else did.
    assert cast.api(cast.bob).get(f"/api/bundles/{digest}/").status_code == 404
    assert put(alice, data).status_code == 201 and Bundle.objects.count() == 1


def test_an_upload_whose_digest_does_not_match_is_refused(cast):
    response = put(cast.api(cast.alice), tar_gz({"a": b"1"}), "0" * 64)
    assert response.status_code == 400 and "sha256" in response.json()["detail"]
    assert not Bundle.objects.exists()


def test_an_upload_over_the_cap_is_413_saying_what_to_leave_out(cast, settings):
    settings.BUNDLE_MAX_BYTES = 1000
    data = tar_gz({"weights.bin": os.urandom(4000)})
    response = put(cast.api(cast.alice), data)
    assert response.status_code == 413
    assert "BUNDLE_MAX_BYTES" in response.json()["detail"] and ".gitignore" in response.json()["detail"]


@pytest.mark.parametrize("name", ["../escape.py", "/etc/passwd"])
def test_an_upload_reaching_outside_its_dir_is_refused(cast, name):
    response = put(cast.api(cast.alice), tar_gz({name: b"x"}))
    assert response.status_code == 400 and "inside the working dir" in response.json()["detail"]


def test_it_refuses_bytes_that_are_no_archive(cast):
    response = put(cast.api(cast.alice), b"not a tarball")
    assert response.status_code == 400 and "not a tar.gz" in response.json()["detail"]


def test_the_cli_packs_a_dir_reproducibly_without_what_gitignore_excludes(tmp_path):
    (tmp_path / "train.py").write_text("print(1)\n")
    (tmp_path / ".gitignore").write_text("data/\n*.ckpt\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "big.bin").write_bytes(b"x" * 1000)
    (tmp_path / "model.ckpt").write_bytes(b"y")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref")
    first, second = packing.pack(tmp_path), packing.pack(tmp_path)
    assert first.digest == second.digest and first.files == 2
    with tarfile.open(fileobj=io.BytesIO(first.data), mode="r:gz") as tar:
        assert sorted(tar.getnames()) == [".gitignore", "train.py"]
    (tmp_path / "train.py").write_text("print(2)\n")
    assert packing.pack(tmp_path).digest != first.digest


def test_the_cli_refuses_to_pack_past_its_cap(tmp_path):
    from cli.client import CliError

    (tmp_path / "noise.bin").write_bytes(os.urandom(50_000))
    with pytest.raises(CliError, match="packs to more than"):
        packing.pack(tmp_path, max_bytes=10_000)


def test_a_run_job_needs_an_upload_of_its_own_owner(cast):
    data = tar_gz({"train.py": b"1"})
    put(cast.api(cast.alice), data)
    digest = hashlib.sha256(data).hexdigest()
    assert run(cast.api(cast.alice), bundle=digest).status_code == 201
    refused = run(cast.api(cast.bob), bundle=digest)
    assert refused.status_code == 400 and "no working dir with that sha256" in refused.json()["params"]["bundle"]


def test_it_runs_locally_on_ones_own_machine_and_says_so(cast):
    response = run(cast.api(cast.alice), name="first try", tags=["exp1", "lr=3e-4"])
    assert response.status_code == 201, response.content
    assert response.json()["runner"] == "local"
    listed = cast.api(cast.alice).get("/api/jobs/").json()["results"][0]
    assert (listed["name"], listed["tags"], listed["runner"]) == ("first try", ["exp1", "lr=3e-4"], "local")


def test_a_multi_user_deployment_refuses_local_processes(cast, settings):
    settings.MULTI_USER = True
    response = run(cast.api(cast.alice), runner="local")
    assert response.status_code == 400 and "only in containers" in response.json()["params"]["runner"]
    settings.RUN_JOBS_IN = "local"  # a misconfigured deployment refuses too
    assert run(cast.api(cast.alice)).status_code == 400
    assert not Job.objects.exists()


def test_in_containers_it_takes_the_labs_default_image_from_the_allowlist(cast, settings):
    settings.MULTI_USER = True
    none = run(cast.api(cast.alice))
    assert none.status_code == 400 and "no default image" in none.json()["params"]["image"]
    settings.RUN_DEFAULT_IMAGE = "lab/pytorch:2"
    off_list = run(cast.api(cast.alice))
    assert off_list.status_code == 400 and "allowlist" in off_list.json()["params"]["image"]
    ContainerImage.objects.create(image="lab/pytorch:2")
    job = run(cast.api(cast.alice)).json()
    assert (job["runner"], job["params"]["image"]) == ("container", "lab/pytorch:2")


@pytest.fixture
def mounts(cast):
    imagenet = Mount.objects.create(name="imagenet", kind=Mount.DATASET, path="/data/imagenet", everyone=True)
    alice_ws = Mount.objects.create(name="alice-ws", kind=Mount.WORKSPACE, path="/ws/alice")
    alice_ws.users.add(cast.alice)
    team = Group.objects.create(name="vision")
    shared = Mount.objects.create(name="vision-scratch", kind=Mount.WORKSPACE, path="/scratch/{user}")
    shared.groups.add(team)
    cast.bob.groups.add(team)
    return imagenet, alice_ws, shared


def test_a_job_mounts_what_staff_gave_its_owner_and_not_another_users_workspace(cast, mounts):
    assert run(cast.api(cast.alice), mounts="imagenet,alice-ws").status_code == 201
    assert run(cast.api(cast.bob), mounts="imagenet vision-scratch").status_code == 201
    refused = run(cast.api(cast.bob), mounts="alice-ws")
    assert refused.status_code == 400 and "may not mount 'alice-ws'" in refused.json()["params"]["mounts"]
    unknown = run(cast.api(cast.bob), mounts="cifar")
    assert unknown.status_code == 400 and "imagenet, vision-scratch" in unknown.json()["params"]["mounts"]


def test_the_mounts_list_shows_each_user_what_they_may_use(cast, mounts):
    names = [m["name"] for m in cast.api(cast.alice).get("/api/mounts/").json()]
    assert names == ["alice-ws", "imagenet"]
    assert [m["read_only"] for m in cast.api(cast.alice).get("/api/mounts/").json()] == [False, True]
    assert len(cast.api(cast.staff).get("/api/mounts/").json()) == 3


def test_a_job_left_to_the_default_time_limit_is_warned(cast, settings):
    settings.JOB_TIME_LIMIT_DEFAULT = 900
    warned = run(cast.api(cast.alice)).json()
    assert warned["time_limit"] == 900 and "default of 900 s" in warned["warnings"][0]
    assert run(cast.api(cast.alice), time_limit=3600).json()["warnings"] == []


def test_a_groups_maximum_bounds_the_time_limit(cast):
    students = Group.objects.create(name="students")
    GroupLimits.objects.create(group=students, max_time_limit=7200)
    cast.alice.groups.add(students)
    refused = run(cast.api(cast.alice), time_limit=7201)
    assert refused.status_code == 400 and "between 1 and 7200" in refused.json()["time_limit"]
    assert run(cast.api(cast.alice), time_limit=7200).status_code == 201
    assert run(cast.api(cast.bob), time_limit=86400).status_code == 201  # no group: the deployment's maximum


def _log(job: Job, count: int) -> None:
    LogLine.objects.bulk_create(LogLine(job=job, n=i, text=f"line {i}") for i in range(1, count + 1))


def test_the_log_pages_by_line_number_and_its_tail(cast):
    job = Job.objects.get(id=run(cast.api(cast.alice)).json()["id"])
    _log(job, 2500)
    api = cast.api(cast.alice)
    first = api.get(f"/api/jobs/{job.id}/log/").json()
    assert len(first["lines"]) == 1000 and first["last"] == 2500 and first["final"] is False
    page = api.get(f"/api/jobs/{job.id}/log/?after=2400&limit=50").json()
    assert [line["n"] for line in page["lines"]] == list(range(2401, 2451))
    assert [line["text"] for line in api.get(f"/api/jobs/{job.id}/log/?tail=2").json()["lines"]] == [
        "line 2499",
        "line 2500",
    ]
    assert cast.api(cast.bob).get(f"/api/jobs/{job.id}/log/").status_code == 404
    assert api.get(f"/api/jobs/{job.id}/log/?after=-1").status_code == 400
    text = b"".join(api.get(f"/api/jobs/{job.id}/log.txt").streaming_content).decode()
    assert text.splitlines()[0] == "line 1" and len(text.splitlines()) == 2500


def test_a_log_page_costs_the_same_queries_however_long_the_log(cast):
    short, long = (Job.objects.get(id=run(cast.api(cast.alice)).json()["id"]) for _ in range(2))
    _log(short, 10)
    _log(long, 20000)
    api = cast.api(cast.alice)
    api.get(f"/api/jobs/{short.id}/log/")  # the token's owner is then remembered (scheduler/api/auth.py)
    counts = []
    for job in (short, long):
        with CaptureQueriesContext(connection) as queries:
            assert api.get(f"/api/jobs/{job.id}/log/?after=5&limit=5").status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_the_form_submits_a_run_job_with_an_uploaded_dir_a_name_and_tags(cast, client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.force_login(cast.alice)
    upload = SimpleUploadedFile("project.tar.gz", tar_gz({"train.py": b"print(1)\n"}), "application/gzip")
    response = client.post(
        "/submit/",
        {"kind": "run", "run.command": "python train.py", "run.upload": upload, "name": "from the form", "tags": "a b"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    job = Job.objects.get(kind="run")
    assert (job.name, job.tags, job.runner) == ("from the form", ["a", "b"], "local")
    assert Bundle.objects.get(owner=cast.alice).digest == job.params["bundle"]
    listed = client.get("/").content.decode()
    assert "from the form" in listed and '<span class="tag">b</span>' in listed


def test_the_form_says_why_an_upload_was_refused(cast, client, settings):
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.BUNDLE_MAX_BYTES = 100
    client.force_login(cast.alice)
    upload = SimpleUploadedFile("big.tar.gz", tar_gz({"w.bin": os.urandom(1000)}), "application/gzip")
    page = client.post("/submit/", {"kind": "run", "run.command": "python train.py", "run.upload": upload})
    assert page.status_code == 400 and "BUNDLE_MAX_BYTES" in page.content.decode()
    assert not Job.objects.exists()


def test_the_job_page_shows_the_log_pane_the_runner_and_the_outputs(cast, client, settings):
    job = Job.objects.get(id=run(cast.api(cast.alice), name="page test").json()["id"])
    _log(job, 500)
    LogLine.objects.filter(job=job, n=500).update(stream="stderr", text="<b>last</b>")
    client.force_login(cast.alice)
    page = client.get(f"/jobs/{job.id}/").content.decode()
    assert "Runs as a local process" in page and "page test" in page
    assert "line 301" in page and "line 300\n" not in page and "all 500" in page  # the last 200 lines only
    assert '<span class="stderr">&lt;b&gt;last&lt;/b&gt;</span>' in page  # escaped
    assert f'href="/api/jobs/{job.id}/log.txt"' in page and "None kept yet" in page
    from scheduler.jobs import outputs

    (outputs.directory(job.id)).mkdir(parents=True)
    (outputs.directory(job.id) / "model.txt").write_text("w")
    Job.objects.filter(id=job.id).update(outputs_bytes=1, status="succeeded")
    page = client.get(f"/jobs/{job.id}/").content.decode()
    assert f'href="/api/jobs/{job.id}/outputs.tar.gz"' in page and "model.txt" in page
    archive = client.get(f"/api/jobs/{job.id}/outputs.tar.gz")
    with tarfile.open(fileobj=io.BytesIO(b"".join(archive.streaming_content)), mode="r:gz") as tar:
        assert tar.getnames() == [f"job-{job.id}/model.txt"]
    client.force_login(cast.bob)
    assert client.get(f"/api/jobs/{job.id}/outputs.tar.gz").status_code == 404


def test_expired_outputs_are_swept(cast):
    from datetime import timedelta

    from django.utils import timezone

    from scheduler.jobs import outputs

    old, fresh = (Job.objects.get(id=run(cast.api(cast.alice)).json()["id"]) for _ in range(2))
    for job, when in ((old, timezone.now() - timedelta(hours=1)), (fresh, timezone.now() + timedelta(days=1))):
        outputs.directory(job.id).mkdir(parents=True)
        (outputs.directory(job.id) / "ckpt").write_bytes(b"x" * 10)
        Job.objects.filter(id=job.id).update(outputs_bytes=10, outputs_expire_at=when)
    assert outputs.sweep() == 1
    assert not outputs.directory(old.id).exists() and outputs.directory(fresh.id).exists()
    old.refresh_from_db()
    assert old.outputs_bytes == 0 and "expired" in outputs.why_none(old)


def test_contradicting_run_settings_fail_djangos_checks(settings):
    from scheduler.checks import run_jobs

    settings.MULTI_USER, settings.RUN_JOBS_IN = True, "local"
    assert [e.id for e in run_jobs()] == ["gpuq.E011"]
    settings.MULTI_USER, settings.RUN_JOBS_IN = False, "elsewhere"
    assert [e.id for e in run_jobs()] == ["gpuq.E010"]
    settings.RUN_JOBS_IN = "auto"
    assert run_jobs() == []


def test_a_run_job_sees_exactly_its_gpus_and_none_on_a_cpu_worker():
    from workers import command_runner, identity
    from workers.identity import WorkerIdentity

    saved = list(identity._current)
    try:
        identity.set_current(WorkerIdentity("gpu", "node1", "GPU-a", "gpu.node1.a"))
        gang = Job(gpus=2, gang=[{"uuid": "GPU-a"}, {"uuid": "GPU-b"}])
        assert command_runner._gpu_env(gang)["CUDA_VISIBLE_DEVICES"] == "GPU-a,GPU-b"
        assert command_runner._gpu_env(Job(gpus=1))["CUDA_VISIBLE_DEVICES"] == "GPU-a"
        identity.set_current(WorkerIdentity("cpu", "node1", "cpu", "cpu.node1"))
        assert command_runner._gpu_env(Job(gpus=1)) == {"CUDA_VISIBLE_DEVICES": ""}
    finally:
        identity._current[:] = saved
