"""The compose files: the committed one and generated ones, parsed by the real `docker-compose config`."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from django.core.management import CommandError, call_command

from workers import composegen, doctor, gpu

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "compose" / "docker-compose.yml"
EXAMPLE_GPUS = ["GPU-3f5b2d1e-8a7c-4b1e-9d2f-6a0b1c2d3e4f", "GPU-c901ab12-3d4e-5f60-7182-93a4b5c6d7e8"]
DOTENV = {"FLOWER_USER": "ops", "ALLOWED_HOSTS": "gpuq.example.org", "SECRETS_DIR": "/srv/gpuq-secrets"}
APP_SECRETS = {"secret_key", "redis_password", "postgres_password"}
needs_compose = pytest.mark.skipif(
    not shutil.which("docker-compose"), reason="docker-compose (v1) not installed: apt-get install docker-compose"
)
no_nvml = pytest.mark.skipif(doctor.load_nvml() is not None, reason="NVML is here: indexes resolve to UUIDs")


def uuids(n: int) -> list[str]:
    return [f"GPU-{i:08x}-1111-2222-3333-{i:012x}" for i in range(n)]


def compose_config(path: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    base = {"PATH": "/usr/bin:/bin", "HOME": str(path.parent)}
    return subprocess.run(
        ["docker-compose", "-f", str(path), "config"],
        capture_output=True,
        text=True,
        env=base | (DOTENV if env is None else env),
        cwd=path.parent,
        timeout=60,
    )


def parsed(path: Path, env: dict[str, str] | None = None) -> dict:
    out = compose_config(path, env)
    assert out.returncode == 0, out.stderr
    return yaml.safe_load(out.stdout)


def generate(tmp_path: Path, gpus: list[str], *flags: str, host: str = "h1") -> Path:
    folder = tmp_path / "compose"  # the file's relative paths (.., ../nginx) point from compose/
    folder.mkdir(exist_ok=True)
    path = folder / "docker-compose.yml"
    call_command("compose", "--gpus", ",".join(gpus), "--output", str(path), "--host", host, *flags)
    return path


def workers(config: dict) -> dict[str, dict]:
    return {name: s for name, s in config["services"].items() if name.startswith("worker-")}


def test_committed_file_is_the_generators_output(tmp_path):
    assert generate(tmp_path, EXAMPLE_GPUS, host="gpuhost1").read_text() == COMMITTED.read_text()


@needs_compose
@pytest.mark.parametrize("n", [1, 2, 8])
def test_each_worker_reserves_exactly_its_own_gpu(tmp_path, n):
    config = parsed(generate(tmp_path, uuids(n)))
    reserved = []
    for service in workers(config).values():
        (device,) = service["deploy"]["resources"]["reservations"]["devices"]
        assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
        (device_id,) = device["device_ids"]
        assert service["environment"]["CUDA_VISIBLE_DEVICES"] == device_id
        reserved.append(device_id)
    assert sorted(reserved) == sorted(uuids(n))


@needs_compose
def test_committed_file_pins_the_example_gpus_by_uuid():
    config = parsed(COMMITTED)
    pins = {s["environment"]["CUDA_VISIBLE_DEVICES"] for s in workers(config).values()}
    assert pins == set(EXAMPLE_GPUS)
    assert set(config["services"]) == {
        "redis",
        "postgres",
        "migrate",
        "web",
        "releaser",
        "flower",
        "nginx",
        "worker-gpu0",
        "worker-gpu1",
        "docker-proxy",
    }


@needs_compose
@no_nvml
def test_gpus_by_index_without_nvml_see_their_gpu_as_0(tmp_path):
    path = generate(tmp_path, ["0", "1"])
    config = parsed(path)
    for name, index in (("worker-gpu0", "0"), ("worker-gpu1", "1")):
        service = config["services"][name]
        assert service["deploy"]["resources"]["reservations"]["devices"][0]["device_ids"] == [index]
        assert service["environment"]["CUDA_VISIBLE_DEVICES"] == "0"
    assert "# worker-gpu1: reserved by index 1 (no NVML to read its UUID)" in path.read_text()


@needs_compose
def test_a_missing_setting_stops_compose_with_its_name():
    out = compose_config(COMMITTED, {k: v for k, v in DOTENV.items() if k != "ALLOWED_HOSTS"})
    assert out.returncode != 0
    assert "set ALLOWED_HOSTS in .env" in out.stderr


def secrets_of(service: dict) -> set[str]:
    return {s["source"] for s in service.get("secrets", [])}


@needs_compose
def test_secrets_are_files_under_secrets_dir():
    config = parsed(COMMITTED)
    assert {name: s["file"] for name, s in config["secrets"].items()} == {
        name: f"/srv/gpuq-secrets/{name}" for name in [*APP_SECRETS, "flower_password"]
    }


@needs_compose
def test_redis_requires_a_password_from_its_secret_and_keeps_an_append_only_file():
    redis = parsed(COMMITTED)["services"]["redis"]
    assert secrets_of(redis) == {"redis_password"}
    start = " ".join(redis["entrypoint"])
    assert "requirepass" in start and "/run/secrets/redis_password" in start
    assert " ".join(redis["command"]) == "--appendonly yes --appendfsync everysec"
    assert "/run/secrets/redis_password" in redis["healthcheck"]["test"][1]
    assert redis["volumes"] == ["redis-data:/data:rw"]


@needs_compose
def test_every_app_process_reaches_redis_and_postgres_with_the_passwords_from_files():
    config = parsed(COMMITTED)
    for name in ["migrate", "web", "releaser", "flower", *workers(config)]:
        service = config["services"][name]
        env = service["environment"]
        assert env["REDIS_URL"] == "redis://redis:6379/0", name
        assert env["DATABASE_URL"] == "postgres://gpuq@postgres:5432/gpuq", name
        assert env["REDIS_PASSWORD_FILE"] == "/run/secrets/redis_password", name
        assert env["DATABASE_PASSWORD_FILE"] == "/run/secrets/postgres_password", name
        assert env["SECRET_KEY_FILE"] == "/run/secrets/secret_key", name
        assert APP_SECRETS <= secrets_of(service), name
    assert config["services"]["postgres"]["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"


@needs_compose
def test_no_password_is_in_an_environment_or_on_a_command_line():
    for name, service in parsed(COMMITTED)["services"].items():
        secretish = [k for k in service.get("environment", {}) if "PASSWORD" in k or "SECRET" in k]
        assert all(k.endswith("_FILE") for k in secretish), (name, secretish)
        assert "requirepass" not in service.get("command", []), name


@needs_compose
def test_flower_asks_for_credentials():
    flower = parsed(COMMITTED)["services"]["flower"]
    assert flower["environment"]["FLOWER_USER"] == "ops"
    assert flower["environment"]["FLOWER_PASSWORD_FILE"] == "/run/secrets/flower_password"
    assert "flower_password" in secrets_of(flower)
    assert "--conf=compose/flowerconfig.py" in flower["command"] and "--url_prefix=flower" in flower["command"]


@needs_compose
def test_no_service_is_privileged_or_on_the_host_network():
    for name, service in parsed(COMMITTED)["services"].items():
        assert not service.get("privileged"), name
        assert service.get("network_mode") != "host", name
        assert "no-new-privileges:true" in service["security_opt"], name
        assert service["cap_drop"] == ["ALL"], name


@needs_compose
def test_web_and_every_worker_share_the_results_volume():
    services = parsed(COMMITTED)["services"]
    for name in ["web", *workers({"services": services})]:
        assert "results:/app/var/results:rw" in services[name]["volumes"], name
        assert services[name]["environment"]["RESULTS_DIR"] == "/app/var/results", name


@needs_compose
def test_only_nginx_publishes_a_port():
    services = parsed(COMMITTED)["services"]
    assert [name for name, s in services.items() if s.get("ports")] == ["nginx"]


@needs_compose
def test_long_running_services_have_healthchecks_and_start_in_order():
    services = parsed(COMMITTED)["services"]
    for name, service in services.items():
        if name != "migrate":
            assert service["healthcheck"]["test"], name
            assert service["restart"] == "unless-stopped", name
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ["web", "releaser", "worker-gpu0"]:
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert services["nginx"]["depends_on"]["web"]["condition"] == "service_healthy"


@needs_compose
def test_worker_only_file_joins_the_main_hosts_redis_and_database(tmp_path):
    path = generate(tmp_path, uuids(2), "--worker-only")
    out = compose_config(path)
    assert out.returncode != 0 and "set REDIS_URL in .env" in out.stderr
    urls = {"REDIS_URL": "redis://main:6379/0", "DATABASE_URL": "postgres://gpuq@main:5432/gpuq"}
    config = parsed(path, DOTENV | urls)
    assert set(config["services"]) == {"worker-gpu0", "worker-gpu1", "docker-proxy"}
    for service in workers(config).values():
        assert {k: service["environment"][k] for k in urls} == urls
        assert set(service["depends_on"]) == {"docker-proxy"}  # the main host's services are not here
        assert secrets_of(service) == APP_SECRETS


def test_every_setting_reaches_the_app_containers():
    read = set(
        re.findall(r'env(?:str|bool|int|float|list)\(\s*"([A-Z_]+)"', (ROOT / "scheduler/settings.py").read_text())
    )
    env = composegen.app_env("h1", worker_only=False)
    fixed_in_image = {"GPUQ_VAR_DIR"}
    given = set(env) | {name.removesuffix("_FILE") for name in env}  # a secret comes as NAME_FILE
    assert read - given - fixed_in_image == set()
    example = (ROOT / ".env.example").read_text()
    assert [name for name in sorted(read) if not re.search(rf"^#? ?{name}=", example, re.M)] == []


def test_indexes_resolve_to_uuids_where_nvml_lists_the_gpus():
    h200 = [
        gpu.GpuIdentity(0, EXAMPLE_GPUS[0], "0000:00:06.0", "NVIDIA H200", 1),
        gpu.GpuIdentity(1, EXAMPLE_GPUS[1], "0000:00:07.0", "NVIDIA H200", 1),
    ]
    slots = composegen.slots_for(["1", "GPU-3f5b"], h200)
    assert [(s.label, s.device_id, s.visible) for s in slots] == [
        ("gpu1", EXAMPLE_GPUS[1], EXAMPLE_GPUS[1]),
        ("gpu0", EXAMPLE_GPUS[0], EXAMPLE_GPUS[0]),
    ]


def test_the_same_gpu_twice_is_refused(tmp_path):
    with pytest.raises(CommandError, match="twice"):
        generate(tmp_path, [EXAMPLE_GPUS[0], EXAMPLE_GPUS[0]])


@no_nvml
def test_without_nvml_or_gpus_it_says_to_pass_gpus():
    with pytest.raises(CommandError, match="no NVML on this host.*--gpus"):
        call_command("compose", "--output", "-")


@needs_compose
def test_workers_reach_the_engine_only_through_the_socket_proxy():
    services = parsed(COMMITTED)["services"]
    proxy = services["docker-proxy"]
    assert proxy["volumes"] == ["/var/run/docker.sock:/var/run/docker.sock:ro"]
    assert set(proxy["networks"]) == {"engine"} and parsed(COMMITTED)["networks"]["engine"]["internal"]
    assert proxy["command"] == ["python", "-m", "dockerproxy"] and proxy["read_only"]
    # It needs none of the app's settings, and holds none of its secrets.
    assert set(proxy["environment"]) == {"DOCKER_PROXY_ALLOW_ROOT", "LOG_LEVEL"} and not proxy.get("secrets")
    for name, service in services.items():
        assert name == "docker-proxy" or not any("docker.sock" in v for v in service.get("volumes", [])), name
    for name, worker in workers({"services": services}).items():
        assert worker["environment"]["DOCKER_HOST"] == "tcp://docker-proxy:2375", name
        assert "engine" in worker["networks"], name
    assert "engine" not in services["web"].get("networks", {}) and "engine" not in services["flower"].get(
        "networks", {}
    )


@needs_compose
def test_cpu_workers_reserve_no_device_and_each_has_its_own_host_name(tmp_path):
    folder = tmp_path / "compose"
    folder.mkdir()
    path = folder / "docker-compose.yml"
    call_command("compose", "--cpu", "3", "--output", str(path), "--host", "laptop")
    config = parsed(path)
    found = workers(config)
    assert set(found) == {"worker-cpu0", "worker-cpu1", "worker-cpu2"}
    for name, service in found.items():
        assert "deploy" not in service and "CUDA_VISIBLE_DEVICES" not in service["environment"], name
        assert service["command"] == ["python", "-m", "workers", "--cpu"], name
        assert service["environment"]["GPUQ_HOSTNAME"] == f"laptop-{name.removeprefix('worker-')}", name
    assert set(config["services"]) - set(found) == set(parsed(COMMITTED)["services"]) - {"worker-gpu0", "worker-gpu1"}


def test_cpu_and_gpus_together_are_refused():
    with pytest.raises(CommandError, match="no --gpus"):
        call_command("compose", "--cpu", "1", "--gpus", "0", "--output", "-")
