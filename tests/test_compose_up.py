"""The compose deployment brought up on a real Docker Engine and used through nginx, as a user would.

One stack (`manage.py compose --cpu 2`) from a fresh build, for the whole module, in the order a
deployment lives: it comes up, an admin is made, jobs go in by the API, the web form and the CLI, then the
faults (a killed worker, Redis and PostgreSQL restarted, down and up, an upgrade), a second host joins,
and a container job runs through the docker-proxy. Skipped, saying why, where no engine can start.
"""

from __future__ import annotations

import io
import ipaddress
import os
import re
import signal
import subprocess
from datetime import datetime

import numpy as np
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests import compose_stack as cs
from tests import support
from tests.engine import IMAGE as BUSYBOX
from tests.engine import Unavailable
from tests.test_pages import browser, log_in  # noqa: F401 (browser is a fixture)

expect = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (the GPU host bundle leaves it out)"
).expect

pytestmark = [pytest.mark.slow]
HOST = "citest"
WORKERS = {f"worker-cpu{i}": f"cpu.{HOST}-cpu{i}" for i in range(2)}
ADMIN_PASSWORD = "admin:p@ss/w0rd"
METRICS_TOKEN = "metrics-t0ken-for-the-test"
FINAL = {"succeeded", "failed", "cancelled"}


@pytest.fixture(scope="module")
def stack(docker_engine, tmp_path_factory):
    try:
        cs.build_images(docker_engine)
    except Unavailable as exc:
        pytest.skip(str(exc))
    port = support.free_port()
    subnet = docker_engine.client().networks.get("bridge").attrs["IPAM"]["Config"][0]["Subnet"]
    bridge = str(ipaddress.ip_network(subnet)[1])  # docker0's own address
    env = {
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "FLOWER_USER": "ops",
        "GPUQ_IMAGE": cs.APP,
        **{f"{name.upper()}_IMAGE": tag for name, tag in cs.STAND_INS.items()},
        "DOCKER_SOCKET": str(docker_engine.socket),
        "HTTP_PORT": f"127.0.0.1:{port}",
        "HEALTHCHECK_INTERVAL": "5s",
        # On a loaded 2-core machine a check that imports Django takes more than the default 15s.
        "HEALTHCHECK_TIMEOUT": "60s",
        "HTTPS_PORT": f"127.0.0.1:{support.free_port()}",
        "WEB_CONCURRENCY": "2",
        # A plain-HTTP trial, as DEPLOYMENT.md describes it.
        "SECURE_SSL_REDIRECT": "false",
        "SESSION_COOKIE_SECURE": "false",
        "CSRF_COOKIE_SECURE": "false",
        "CSRF_TRUSTED_ORIGINS": f"http://127.0.0.1:{port}",
        "SITE_URL": f"http://127.0.0.1:{port}",
        "METRICS_TOKEN": METRICS_TOKEN,
        # The engine refuses a job container more CPUs than the host has (the default is 8; this one has 2).
        "CONTAINER_CPUS": "1",
    }
    folder = tmp_path_factory.mktemp("compose-main")
    path, dotenv = cs.write_project(folder, "gpuqtest", env, "--cpu", "2", "--host", HOST)
    # For the second host only: Redis and PostgreSQL published on the host's docker0 address, which
    # this host and its containers reach and nothing outside does (127.0.0.1 is not reachable from
    # another compose network).
    publish = folder / "publish.yml"
    publish.write_text(
        "services:\n"
        f"  redis: {{ports: ['{bridge}:{support.free_port()}:6379']}}\n"
        f"  postgres: {{ports: ['{bridge}:{support.free_port()}:5432']}}\n"
    )
    main = cs.Stack(docker_engine, "gpuqtest", [path, publish], dotenv, url=f"http://127.0.0.1:{port}", settings=env)
    main.down("-v")  # what a run that died may have left
    main.up()
    main.wait_healthy()
    yield main
    (support.ARTIFACTS / "compose-stack.log").write_text(main.compose("logs", "--no-color").stdout)
    main.down("-v")


@pytest.fixture(scope="module")
def admin(stack) -> requests.Session:
    """The admin made as DEPLOYMENT.md says, with an API token; a session that sends it."""
    stack.compose(
        "exec",
        "-T",
        "-e",
        f"DJANGO_SUPERUSER_PASSWORD={ADMIN_PASSWORD}",
        "web",
        "python",
        "manage.py",
        "createsuperuser",
        "--noinput",
        "--username",
        "admin",
        "--email",
        "admin@example.org",
    )
    out = stack.compose("exec", "-T", "web", "python", "manage.py", "drf_create_token", "admin").stdout
    session = requests.Session()
    token = re.search(r"Generated token (\w+)", out)[1]
    session.headers["Authorization"] = f"Token {token}"
    return session


@pytest.fixture(scope="module")
def finished(stack, admin) -> dict:
    """A matmul job submitted by the API and finished, with its result's bytes."""
    job = submit(stack, admin, "matmul", n=64)
    done = wait_final(stack, admin, job["id"])
    result = admin.get(f"{stack.url}{done['result_url']}", timeout=30)
    return {**done, "npy": result.content, "status_code": result.status_code}


def submit(stack, http, kind: str, **params) -> dict:
    answer = http.post(f"{stack.url}/api/jobs/", json={"kind": kind, "params": params}, timeout=30)
    assert answer.status_code == 201, answer.text
    return answer.json()


def job(stack, http, job_id: int) -> dict:
    return http.get(f"{stack.url}/api/jobs/{job_id}/", timeout=30).json()


def wait_final(stack, http, job_id: int, timeout: float = 120) -> dict:
    def final():
        try:
            found = job(stack, http, job_id)
        except (requests.RequestException, ValueError):  # nginx or web being replaced
            return None
        return found if found["status"] in FINAL else None

    return cs.wait_for(final, timeout, f"job {job_id} to finish")


def finished_once(found: dict) -> bool:
    return found["status"] == "succeeded" and [e["status"] for e in found["events"]].count("succeeded") == 1


def started(container) -> datetime:
    return _time(container.attrs["State"]["StartedAt"])


def _time(stamp: str) -> datetime:
    return datetime.fromisoformat(re.sub(r"(\.\d{6})\d*", r"\1", stamp).replace("Z", "+00:00"))


def test_it_comes_up_healthy_and_migrates_once_before_web_releaser_and_workers(stack):
    states = stack.health()
    expected = {"redis", "postgres", "migrate", "web", "releaser", "flower", "nginx", "docker-proxy", *WORKERS}
    assert set(states) == expected
    assert {name: s for name, s in states.items() if s != "healthy"} == {"migrate": "exited(0)"}
    [migrate] = stack.containers("migrate")
    migrated = _time(migrate.attrs["State"]["FinishedAt"])
    for service in ["web", "releaser", *WORKERS]:
        assert started(stack.container(service)) > migrated, service
    assert migrate.attrs["RestartCount"] == 0 and "Applying jobs.0001_initial... OK" in migrate.logs().decode()


def test_a_job_submitted_by_the_api_runs_on_a_worker_container_and_its_result_downloads(stack, finished):
    assert finished["status"] == "succeeded" and finished["queue"] in WORKERS.values()
    assert finished["status_code"] == 200 and np.load(io.BytesIO(finished["npy"])).shape == (64, 64)


def test_the_web_form_in_chromium_submits_a_job_that_finishes(stack, admin, browser):  # noqa: F811
    page = browser.new_page()
    log_in(page, stack.url, "admin", ADMIN_PASSWORD)
    page.goto(f"{stack.url}/submit/")
    page.select_option("#kind", "matmul")
    page.fill("input[name='matmul.n']", "32")
    page.click("#submit")
    page.wait_for_url("**/jobs/*/")
    # A condition the page's CSP allows (no eval in the page, unlike wait_for_function).
    expect(page.locator("#status")).to_have_text("succeeded", timeout=60000)
    page.screenshot(path=str(support.ARTIFACTS / "compose-job-page.png"), full_page=True)
    assert "checksum" in page.inner_text("#result")


def test_submit_job_pointed_at_nginx_waits_for_its_job(stack, admin):
    env = {"GPUQ_URL": stack.url, "GPUQ_TOKEN": admin.headers["Authorization"].split()[1]}
    out = subprocess.run(
        [support.python(), "-m", "cli.submit_job", "stats", "--param", "size=100", "--wait", "--json"],
        env={"PATH": "/usr/bin:/bin", "GPUQ_CONFIG": "/nonexistent/cli.json", **env},
        cwd=support.ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert '"status": "succeeded"' in out.stdout


def test_flower_through_nginx_asks_for_its_password_and_lists_the_workers(stack):
    url = f"{stack.url}/flower/api/workers"
    assert requests.get(url, timeout=30).status_code == 401
    auth = ("ops", cs.PASSWORD.format("flower_password"))

    nodes = {f"{queue}@{queue.removeprefix('cpu.')}": queue for queue in WORKERS.values()}  # queue@host

    def listed():
        answer = requests.get(url, params={"refresh": "1"}, auth=auth, timeout=30)
        return answer.json() if answer.status_code == 200 and set(nodes) <= set(answer.json()) else None

    workers = support.wait_until(listed, 60, "Flower to list both workers", every=1)
    for node, queue in nodes.items():
        assert [q["name"] for q in workers[node]["active_queues"]] == [queue]


def test_metrics_parse_and_count_the_finished_jobs(stack, finished):
    assert requests.get(f"{stack.url}/metrics", timeout=30).status_code == 401
    bearer = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    text = requests.get(f"{stack.url}/metrics", headers=bearer, timeout=30).text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    succeeded = [s for s in families["gpuq_jobs"].samples if s.labels["status"] == "succeeded"]
    assert sum(s.value for s in succeeded) >= 1
    assert {s.labels["queue"] for s in families["gpuq_queue_depth"].samples} >= set(WORKERS.values())


def test_check_deploy_is_clean_in_the_web_container_with_tls_settings(stack):
    """The trial runs on plain HTTP; with the three settings a TLS deployment has, nothing is left to warn of."""
    tls = ["-e", "SECURE_SSL_REDIRECT=true", "-e", "SESSION_COOKIE_SECURE=true", "-e", "CSRF_COOKIE_SECURE=true"]
    out = stack.compose(
        "exec", "-T", *tls, "web", "python", "manage.py", "check", "--deploy", "--fail-level", "WARNING"
    )
    assert "System check identified no issues" in out.stdout


def test_a_container_job_runs_through_the_docker_proxy_locked_down(stack, admin, docker_engine):
    image = admin.post(f"{stack.url}/api/images/", json={"image": BUSYBOX, "description": "test"}, timeout=30)
    assert image.status_code == 201, image.text
    command = "sh -c 'echo hello from the sandbox; id -u; sleep 3'"
    submitted = submit(stack, admin, "container", image=BUSYBOX, command=command)
    client = docker_engine.client()

    def created():
        found = client.containers.list(filters={"label": [f"gpuq.job={submitted['id']}", "gpuq.sandboxed=1"]})
        return found[0] if found else None

    container = cs.wait_for(created, 60, "the job's container on the engine")
    host, config = container.attrs["HostConfig"], container.attrs["Config"]
    assert config["User"] == "65534:65534" and host["Privileged"] is False and host["NetworkMode"] == "none"
    assert host["CapDrop"] == ["ALL"] and not host["CapAdd"] and "no-new-privileges" in host["SecurityOpt"]
    assert not host["Binds"] and not container.attrs["Mounts"] and host["PidMode"] == "" and host["IpcMode"] != "host"
    assert config["Labels"]["gpuq.queue"] in WORKERS.values()
    done = wait_final(stack, admin, submitted["id"])
    assert done["status"] == "succeeded", done
    answer = admin.get(f"{stack.url}/api/jobs/{submitted['id']}/log/", timeout=30)  # the job's numbered log
    lines = [line["text"] for line in answer.json()["lines"]]
    assert "hello from the sandbox" in lines and "65534" in lines


def test_a_worker_container_killed_mid_job_is_restarted_and_the_job_finishes_once(stack, admin):
    """SIGKILL of the container's process, as the OOM killer or a crash would. (`docker kill` is not
    this: Engine 20.10 counts it as a manual stop, which no restart policy undoes, measured.)"""
    submitted = submit(stack, admin, "burn", seconds=6, mib=1)
    running = cs.wait_for(lambda: (j := job(stack, admin, submitted["id"]))["status"] == "running" and j, 60, "running")
    service = next(name for name, queue in WORKERS.items() if queue == running["queue"])
    worker = stack.container(service)
    restarts = worker.attrs["RestartCount"]
    os.kill(worker.attrs["State"]["Pid"], signal.SIGKILL)
    cs.wait_for(lambda: stack.container(service).attrs["RestartCount"] > restarts, 60, f"{service} to be restarted")
    done = wait_final(stack, admin, submitted["id"], timeout=180)
    assert finished_once(done) and done["attempts"] == 2, done
    stack.wait_healthy()


def test_docker_kill_is_a_manual_stop_that_start_undoes(stack):
    worker = stack.container("worker-cpu1")
    worker.kill()
    assert stack.container("worker-cpu1").attrs["State"]["Status"] == "exited"
    stack.compose("start", "worker-cpu1")  # or `up -d`, which also runs migrate again
    stack.wait_healthy()


def test_redis_and_postgres_restarted_while_jobs_run_lose_nothing_and_run_nothing_twice(stack, admin):
    ids = [submit(stack, admin, "burn", seconds=1, mib=1)["id"] for _ in range(6)]
    cs.wait_for(lambda: job(stack, admin, ids[0])["status"] != "waiting", 60, "the first job to be released")
    stack.container("redis").restart(timeout=20)
    stack.container("postgres").restart(timeout=20)
    done = [wait_final(stack, admin, i, timeout=240) for i in ids]
    assert [d["id"] for d in done if not finished_once(d)] == [], done
    stack.wait_healthy()


def test_down_then_up_keeps_the_job_history_and_the_result_files(stack, admin, finished):
    stack.down()
    stack.up()
    stack.wait_healthy()
    again = job(stack, admin, finished["id"])
    assert again["status"] == "succeeded" and again["finished_at"] == finished["finished_at"]
    assert admin.get(f"{stack.url}{again['result_url']}", timeout=30).content == finished["npy"]


def test_an_upgrade_rebuilt_and_brought_up_while_jobs_run_loses_no_job(stack, admin):
    ids = [submit(stack, admin, "burn", seconds=2, mib=1)["id"] for _ in range(6)]
    before = stack.container("web").image.id
    cs.build_app(stack.engine.env(), f"gpuq.test.upgrade={datetime.now().isoformat()}")
    stack.up()
    assert stack.container("web").image.id != before
    stack.wait_healthy()
    done = [wait_final(stack, admin, i, timeout=240) for i in ids]
    assert [d["id"] for d in done if not finished_once(d)] == [], done


def test_a_second_host_joins_with_the_worker_only_file_and_takes_jobs(stack, admin, tmp_path_factory):
    redis_port, pg_port = _published(stack, "redis", "6379"), _published(stack, "postgres", "5432")
    env = {
        **{
            k: stack.settings[k] for k in ("GPUQ_IMAGE", "DOCKER_SOCKET", "HEALTHCHECK_INTERVAL", "HEALTHCHECK_TIMEOUT")
        },
        "REDIS_URL": f"redis://{redis_port}/0",
        "DATABASE_URL": f"postgres://gpuq@{pg_port}/gpuq",
    }
    folder = tmp_path_factory.mktemp("compose-second")
    path, dotenv = cs.write_project(folder, "gpuqtest2", env, "--worker-only", "--cpu", "1", "--host", "citest2")
    second = cs.Stack(stack.engine, "gpuqtest2", [path], dotenv)
    second.down("-v")
    drained: list[str] = []
    try:
        second.up()
        assert second.wait_healthy() == {"worker-cpu0": "healthy", "docker-proxy": "healthy"}
        queue = "cpu.citest2-cpu0"
        gpus = cs.wait_for(lambda: _gpus(stack, admin, queue), 60, "the second host's worker in the fleet")
        assert gpus[queue]["alive"] and gpus[queue]["host"] == "citest2-cpu0"
        drained = [g["uuid"] for q, g in gpus.items() if q != queue]  # so that only the second host takes jobs
        for uuid in drained:
            assert admin.post(f"{stack.url}/api/gpus/{uuid}/drain/", json={"reason": "test"}, timeout=30).ok
        ids = [submit(stack, admin, "stats", size=100)["id"] for _ in range(3)]
        done = [wait_final(stack, admin, i) for i in ids]
        assert {(d["status"], d["queue"]) for d in done} == {("succeeded", queue)}
    finally:
        for uuid in drained:
            admin.post(f"{stack.url}/api/gpus/{uuid}/resume/", timeout=30)
        second.down("-v")


def _gpus(stack, admin, wanted: str) -> dict | None:
    found = {g["queue"]: g for g in admin.get(f"{stack.url}/api/gpus/", timeout=30).json()}
    return found if not wanted or wanted in found else None


def _published(stack, service: str, port: str) -> str:
    [binding] = stack.container(service).attrs["NetworkSettings"]["Ports"][f"{port}/tcp"]
    return f"{binding['HostIp']}:{binding['HostPort']}"
