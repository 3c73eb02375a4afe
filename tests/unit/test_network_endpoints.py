"""API 1.41 takes one network at create and connects the rest before start; API >= 1.44 takes
every endpoint at create. The docker SDK's real APIClient builds the requests; only the two
calls that would reach an engine are recorded instead."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import docker
import pytest

from labspec.model import Container, NetworkAttachment
from provisioner.docker_engine import DockerEngine


def recording_engine(version: str) -> tuple[DockerEngine, list[tuple[str, Any]]]:
    api = docker.APIClient(base_url="unix:///nonexistent/docker.sock", version=version)
    calls: list[tuple[str, Any]] = []

    def create_container(image: str, **kwargs: Any) -> dict[str, str]:
        calls.append(("create", kwargs))
        return {"Id": "c0ffee"}

    def connect(container: str, net: str, **kwargs: Any) -> None:
        calls.append(("connect", (container, net, kwargs)))

    api.create_container = create_container  # type: ignore[method-assign]
    api.connect_container_to_network = connect  # type: ignore[method-assign]
    return DockerEngine(SimpleNamespace(api=api), url="fake://", host_label="fake"), calls


CONTAINER = Container(
    "web", "busybox", networks=(NetworkAttachment("front", aliases=("site",)),
                                NetworkAttachment("back", ipv4_address="10.1.0.5")),
)
NETWORKS = [("lab1-front", ("web", "site"), None), ("lab1-back", ("web",), "10.1.0.5")]


@pytest.mark.parametrize("version", ["1.41", "1.43"])
def test_old_api_attaches_first_network_at_create_and_connects_the_rest(version: str) -> None:
    engine, calls = recording_engine(version)
    engine.create_container("lab1-web", CONTAINER, networks=NETWORKS, volume_names={},
                            labels={"labup.managed": "true"}, use_gpu=False)
    (kind, create), (kind2, (cid, net, extra)) = calls
    assert kind == "create" and kind2 == "connect"
    endpoints = create["networking_config"]["EndpointsConfig"]
    assert list(endpoints) == ["lab1-front"] and endpoints["lab1-front"]["Aliases"] == ["web",
                                                                                        "site"]
    assert create["host_config"]["NetworkMode"] == "lab1-front"
    assert (cid, net, extra["aliases"], extra["ipv4_address"]) == ("c0ffee", "lab1-back",
                                                                   ["web"], "10.1.0.5")


def test_new_api_takes_every_endpoint_at_create() -> None:
    engine, calls = recording_engine("1.44")
    engine.create_container("lab1-web", CONTAINER, networks=NETWORKS, volume_names={},
                            labels={}, use_gpu=False)
    ((kind, create),) = calls
    endpoints = create["networking_config"]["EndpointsConfig"]
    assert kind == "create" and set(endpoints) == {"lab1-front", "lab1-back"}
    assert endpoints["lab1-back"]["IPAMConfig"] == {"IPv4Address": "10.1.0.5"}


def test_gpu_request_becomes_a_device_request() -> None:
    from labspec.model import GpuRequest

    engine, calls = recording_engine("1.41")
    gpu = Container("trainer", "cuda", gpus=GpuRequest(count="all", capabilities=("gpu",
                                                                                   "utility")))
    engine.create_container("lab1-trainer", gpu, networks=[], volume_names={}, labels={},
                            use_gpu=True)
    (request,) = calls[0][1]["host_config"]["DeviceRequests"]
    assert request["Count"] == -1 and request["Capabilities"] == [["gpu", "utility"]]
