"""The workers' docker-proxy against a real Docker Engine: the calls a container job makes pass, and every
request that would hand a container the host, or reach a container the proxy did not create, is refused."""

from __future__ import annotations

import os

import docker
import docker.errors
import pytest
import requests

from dockerproxy import rules
from tests import engine, support

SAFE = {"user": "65534:65534", "network_disabled": False}


@pytest.fixture(scope="module")
def proxy(docker_engine):
    port = support.free_port()
    env = {
        **os.environ,
        "DOCKER_PROXY_LISTEN": f"127.0.0.1:{port}",
        "DOCKER_PROXY_SOCKET": str(docker_engine.socket),
        "PYTHONPATH": str(support.ROOT),
    }
    proc = support.Proc("docker-proxy", [support.python(), "-m", "dockerproxy"], env)
    url = f"http://127.0.0.1:{port}"
    support.wait_until(lambda: support.http_ok(f"{url}/_ping"), 20, "the docker-proxy to answer")
    yield url
    proc.stop()


@pytest.fixture
def via_proxy(proxy) -> docker.DockerClient:
    return docker.DockerClient(base_url=proxy.replace("http", "tcp"), timeout=60)


@pytest.fixture
def direct(docker_engine):
    client = docker_engine.client()
    made: list = []
    yield client, made
    for container in made:
        container.remove(force=True)
    for container in client.containers.list(all=True, filters={"label": f"{rules.LABEL}=1"}):
        container.remove(force=True)


def refused(call) -> str:
    with pytest.raises(docker.errors.APIError) as caught:
        call()
    assert caught.value.status_code == 403, caught.value
    return str(caught.value.explanation)


def our_containers(client) -> list:
    return client.containers.list(all=True, filters={"label": f"{rules.LABEL}=1"})


def test_it_runs_a_locked_down_container_and_follows_its_output(via_proxy, direct):
    client, _ = direct
    container = via_proxy.containers.create(
        engine.IMAGE,
        ["sh", "-c", "echo hello; id -u"],
        user="65534:65534",
        network_mode="none",
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        labels={"gpuq.job": "1"},
    )
    container.start()
    assert container.wait(timeout=30)["StatusCode"] == 0
    assert container.logs().decode().split() == ["hello", "65534"]
    container.reload()
    assert container.labels[rules.LABEL] == "1" and container.labels["gpuq.job"] == "1"
    assert [c.id for c in via_proxy.containers.list(all=True)] == [container.id]
    container.remove(force=True)
    assert our_containers(client) == []


@pytest.mark.parametrize(
    "options, says",
    [
        ({"privileged": True}, "privileged"),
        ({"volumes": ["/:/host"]}, "Binds"),
        ({"mounts": [docker.types.Mount("/host", "/", type="bind")]}, "Mounts"),
        ({"mounts": [docker.types.Mount("/data", "gpuq-secrets", type="volume")]}, "Mounts"),
        ({"volumes_from": ["web"]}, "VolumesFrom"),
        ({"cap_add": ["SYS_ADMIN"]}, "CapAdd"),
        ({"devices": ["/dev/sda:/dev/sda"]}, "Devices"),
        ({"pid_mode": "host"}, "PidMode"),
        ({"ipc_mode": "host"}, "IpcMode"),
        ({"network_mode": "host"}, "network mode"),
        ({"network_mode": "container:postgres"}, "network mode"),
        ({"userns_mode": "host"}, "UsernsMode"),
        ({"ports": {"80/tcp": 8080}}, "published ports"),
        ({"security_opt": ["seccomp=unconfined"]}, "security option"),
        ({"user": "0"}, "root"),
        ({"user": "65534:0"}, "root"),
        ({"user": "root"}, "numeric"),
        ({"user": ""}, "numeric"),
    ],
)
def test_it_refuses_a_container_that_would_reach_the_host(via_proxy, direct, options, says):
    client, _ = direct
    spec = {**SAFE, **options}
    assert says in refused(lambda: via_proxy.containers.create(engine.IMAGE, ["true"], **spec))
    assert our_containers(client) == []


def test_it_refuses_anonymous_volumes_in_the_raw_request(proxy, direct):
    body = {"Image": engine.IMAGE, "User": "65534:65534", "Volumes": {"/data": {}}}
    answer = requests.post(f"{proxy}/v1.41/containers/create", json=body, timeout=10)
    assert answer.status_code == 403 and "Volumes" in answer.json()["message"]


def test_it_hides_and_refuses_containers_it_did_not_create(via_proxy, direct, proxy):
    client, made = direct
    other = client.containers.create(engine.IMAGE, ["sleep", "60"], environment={"SECRET_KEY": "s3cret"})
    made.append(other)
    other.start()
    assert via_proxy.containers.list(all=True) == []
    for method, path in [
        ("GET", "json"),
        ("GET", "logs?stdout=1"),
        ("GET", "archive?path=/"),
        ("PUT", "archive?path=/tmp"),
        ("POST", "exec"),
        ("POST", "attach?stream=1"),
        ("POST", "kill"),
        ("POST", "update"),
        ("DELETE", ""),
    ]:
        answer = requests.request(method, f"{proxy}/v1.41/containers/{other.id}/{path}".rstrip("/"), timeout=10)
        assert answer.status_code == 403, (method, path, answer.text)
        assert "s3cret" not in answer.text
    other.reload()
    assert other.status == "running"


def test_it_refuses_exec_and_archive_even_on_its_own_containers(via_proxy, direct, proxy):
    container = via_proxy.containers.create(engine.IMAGE, ["sleep", "60"], user="65534:65534")
    container.start()
    refused(lambda: container.exec_run(["id"]))
    refused(lambda: container.get_archive("/"))
    answer = requests.post(f"{proxy}/v1.41/containers/{container.id}/attach?stream=1", timeout=10)
    assert answer.status_code == 403


def test_it_refuses_the_rest_of_the_api(proxy):
    for method, path in [
        ("POST", "/build"),
        ("POST", "/images/create?fromImage=busybox"),
        ("GET", "/volumes"),
        ("POST", "/volumes/create"),
        ("GET", "/networks"),
        ("POST", "/commit?container=x"),
        ("GET", "/events"),
        ("POST", "/containers/prune"),
        ("GET", "/secrets"),
    ]:
        answer = requests.request(method, f"{proxy}/v1.41{path}", timeout=10)
        assert answer.status_code == 403, (method, path, answer.text)


def test_it_passes_the_jobs_own_network_and_no_other_named_one():
    body = {"Image": "x", "User": "65534:65534", "HostConfig": {"NetworkMode": rules.JOB_NETWORK}}
    assert rules.checked_create(__import__("json").dumps(body).encode(), allow_root=False)
    body["HostConfig"]["NetworkMode"] = "compose_default"
    with pytest.raises(rules.Refused, match="not allowed"):
        rules.checked_create(__import__("json").dumps(body).encode(), allow_root=False)
