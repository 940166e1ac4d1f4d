"""How a job's container is given its GPU: the request shape each engine honours (workers/container_gpu.py)."""

from __future__ import annotations

import pytest

from workers import container_gpu

PODMAN_54 = {"Components": [{"Name": "Podman Engine", "Version": "5.4.2"}], "Version": "5.4.2"}
PODMAN_43 = {"Components": [{"Name": "Podman Engine", "Version": "4.3.1"}], "Version": "4.3.1"}
DOCKER = {"Components": [{"Name": "Engine", "Version": "28.2.2"}], "Version": "28.2.2"}


@pytest.mark.parametrize(
    "version, info, mode",
    [
        (PODMAN_54, {"Runtimes": {"crun": {}}}, "cdi"),
        (DOCKER, {"Runtimes": {"runc": {}, "nvidia": {}}}, "nvidia"),
        (DOCKER, {"Runtimes": {"runc": {}}, "DiscoveredDevices": [{"Source": "cdi", "ID": "nvidia.com/gpu=0"}]}, "cdi"),
        (DOCKER, {"Runtimes": {"runc": {}}}, "nvidia"),  # the toolkit as a hook, or a plain error at start
    ],
)
def test_it_asks_the_engine_how_to_request_a_gpu(version, info, mode):
    assert container_gpu.engine_mode(version, info) == mode


def test_podman_before_5_4_is_refused_saying_which_version_would_do():
    with pytest.raises(container_gpu.UnsupportedEngine, match="Podman 4.3 ignores GPU device requests.*5.4"):
        container_gpu.engine_mode(PODMAN_43, {"Runtimes": {"runc": {}}})


def test_a_cdi_request_names_the_gpu_by_uuid():
    [request] = container_gpu.device_requests("GPU-1234", "cdi")
    assert (request["Driver"], request["DeviceIDs"]) == ("cdi", ["nvidia.com/gpu=GPU-1234"])


def test_a_mistyped_setting_says_what_it_may_be():
    with pytest.raises(ValueError, match="'cdl' is not one of auto, nvidia, cdi"):
        container_gpu.mode_for(None, "cdl")


def test_this_machines_engine_is_asked_for_real(container_engine):
    client = container_engine.client()
    podman = container_gpu.podman_version(client.version())
    if podman is None or podman >= container_gpu.PODMAN_CDI_SINCE:
        assert container_gpu.mode_for(client, "auto") in ("nvidia", "cdi")
    else:  # this machine's Podman 4.3 would start a job's container without its GPU: refused instead
        with pytest.raises(container_gpu.UnsupportedEngine):
            container_gpu.mode_for(client, "auto")
