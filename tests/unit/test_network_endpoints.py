"""API 1.41 takes one network at create and connects the rest before start; API >= 1.44 takes
every endpoint at create. A recording transport stands in for the engine."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from labspec.model import (
    Container,
    GpuRequest,
    Healthcheck,
    Mount,
    NetworkAttachment,
    Port,
    Resources,
)
from provisioner.engine.docker_engine import DockerEngine


class RecordingTransport:
    def __init__(self, api_version: str) -> None:
        self.api_version = api_version
        self.requests: list[tuple[str, str, Any]] = []

    def request(self, method: str, path: str, *, params: Mapping[str, str] | None = None,
                body: Any = None, timeout: float | None = None) -> Any:
        if path == "/version":
            return {"ApiVersion": self.api_version}
        self.requests.append((method, path, body))
        return {"Id": "c0ffee"} if path == "/containers/create" else None

    def close(self) -> None:
        pass


def engine(version: str) -> tuple[DockerEngine, RecordingTransport]:
    transport = RecordingTransport(version)
    return DockerEngine(url="fake://", host_label="fake", transport=transport), transport


CONTAINER = Container(
    "web", "busybox", networks=(NetworkAttachment("front", aliases=("site",)),
                                NetworkAttachment("back", ipv4_address="10.1.0.5")),
)
NETWORKS = [("lab1-front", ("web", "site"), None), ("lab1-back", ("web",), "10.1.0.5")]


@pytest.mark.parametrize("version", ["1.41", "1.43"])
def test_old_api_attaches_first_network_at_create_and_connects_the_rest(version: str) -> None:
    eng, rec = engine(version)
    eng.create_container("lab1-web", CONTAINER, networks=NETWORKS, volume_names={},
                         labels={"labup.managed": "true"}, use_gpu=False)
    (m1, p1, create), (m2, p2, connect) = rec.requests
    assert (m1, p1, m2, p2) == ("POST", "/containers/create", "POST", "/networks/lab1-back/connect")
    assert create["NetworkingConfig"]["EndpointsConfig"] == {"lab1-front": {"Aliases": ["web",
                                                                                        "site"]}}
    assert create["HostConfig"]["NetworkMode"] == "lab1-front"
    assert connect == {"Container": "c0ffee", "EndpointConfig": {
        "Aliases": ["web"], "IPAMConfig": {"IPv4Address": "10.1.0.5"}}}


def test_new_api_takes_every_endpoint_at_create() -> None:
    eng, rec = engine("1.44")
    eng.create_container("lab1-web", CONTAINER, networks=NETWORKS, volume_names={},
                         labels={}, use_gpu=False)
    ((method, path, create),) = rec.requests
    endpoints = create["NetworkingConfig"]["EndpointsConfig"]
    assert (method, path) == ("POST", "/containers/create")
    assert set(endpoints) == {"lab1-front", "lab1-back"}
    assert endpoints["lab1-back"]["IPAMConfig"] == {"IPv4Address": "10.1.0.5"}


def test_gpu_request_becomes_a_device_request_unless_started_without() -> None:
    eng, rec = engine("1.41")
    gpu = Container("trainer", "cuda", gpus=GpuRequest(count="all",
                                                       capabilities=("gpu", "utility")))
    eng.create_container("lab1-trainer", gpu, networks=[], volume_names={}, labels={},
                         use_gpu=True)
    eng.create_container("lab1-trainer", gpu, networks=[], volume_names={}, labels={},
                         use_gpu=False)
    (request,) = rec.requests[0][2]["HostConfig"]["DeviceRequests"]
    assert request["Count"] == -1 and request["Capabilities"] == [["gpu", "utility"]]
    assert "DeviceRequests" not in rec.requests[1][2]["HostConfig"]


def test_every_container_field_reaches_the_create_body() -> None:
    eng, rec = engine("1.41")
    full = Container(
        "db", "postgres:16", command=("postgres", "-c", "x=1"), entrypoint=("docker-entry",),
        env={"A": "1"}, working_dir="/w", hostname="h", user="999", read_only=True,
        privileged=True, network_mode="none", resources=Resources(cpus=1.5, memory=2**20,
                                                                  pids=10),
        init=True, cap_add=("NET_ADMIN",), cap_drop=("ALL",), restart="on-failure:3",
        ports=(Port(5432, 15432), Port(53, None, protocol="udp")),
        mounts=(Mount("volume", "/var/lib/pg", "data"), Mount("tmpfs", "/run", size=1024),
                Mount("bind", "/cfg", "/labs/x/cfg", read_only=True)),
        healthcheck=Healthcheck(("CMD", "pg_isready"), interval=1.5, timeout=2, retries=4,
                                start_period=3),
        stop_timeout=7, labels={"team": "a"},
    )
    eng.create_container("lab1-db", full, networks=[], volume_names={"data": "lab1-data"},
                         labels={"team": "a"}, use_gpu=False)
    body = rec.requests[0][2]
    host = body["HostConfig"]
    assert body["Cmd"] == ["postgres", "-c", "x=1"] and body["Entrypoint"] == ["docker-entry"]
    assert body["Env"] == ["A=1"] and body["WorkingDir"] == "/w" and body["Hostname"] == "h"
    assert body["User"] == "999" and body["StopTimeout"] == 7 and body["Labels"] == {"team": "a"}
    assert body["ExposedPorts"] == {"5432/tcp": {}, "53/udp": {}}
    assert host["PortBindings"] == {"5432/tcp": [{"HostIp": "127.0.0.1", "HostPort": "15432"}],
                                    "53/udp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}
    assert body["Healthcheck"] == {"Test": ["CMD", "pg_isready"], "Interval": 1_500_000_000,
                                   "Timeout": 2_000_000_000, "Retries": 4,
                                   "StartPeriod": 3_000_000_000}
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert host["ReadonlyRootfs"] and host["Init"] and host["CapDrop"] == ["ALL"]
    assert host["Privileged"] and host["NetworkMode"] == "none"
    assert (host["NanoCpus"], host["Memory"], host["PidsLimit"]) == (1_500_000_000, 2**20, 10)
    assert "NetworkingConfig" not in body
    assert host["Mounts"] == [
        {"Target": "/var/lib/pg", "Type": "volume", "ReadOnly": False, "Source": "lab1-data"},
        {"Target": "/run", "Type": "tmpfs", "ReadOnly": False, "TmpfsOptions": {"SizeBytes": 1024}},
        {"Target": "/cfg", "Type": "bind", "ReadOnly": True, "Source": "/labs/x/cfg"},
    ]
