"""DockerEngine on the real engine: the checks' narrow door, listing both ways, stuck networks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from labspec.errors import EngineError
from provisioner.engine.connect import connect
from provisioner.engine.docker_engine import DockerEngine
from provisioner.engine.protocol import Engine

pytestmark = pytest.mark.docker

TRAP = ["sh", "-c", "trap 'exit 0' TERM INT; sleep 3600 & wait"]


@pytest.fixture
def box(docker_client: Any, test_image: str, unique: str) -> Iterator[str]:
    name = f"labup-engine-test-{unique}"
    docker_client.api.create_container(test_image, TRAP, name=name,
                                       labels={"labup.test": unique})
    docker_client.api.start(name)
    yield name
    docker_client.api.remove_container(name, force=True)


def test_engine_fits_the_protocol_and_injects_an_existing_client(docker_client: Any) -> None:
    by_url = connect(None)
    injected = DockerEngine(docker_client, url="unix:///var/run/docker.sock", host_label="h1")
    assert isinstance(by_url, Engine) and isinstance(injected, Engine)
    assert injected.raw is None and by_url.raw is not None  # the SDK path and the fast path
    assert injected.host_label == "h1" and by_url.host_label == "local"
    assert by_url.info()["ServerVersion"] == injected.info()["ServerVersion"]


def test_exec_returns_rc_stdout_stderr_and_times_out(box: str) -> None:
    engine = connect(None)
    got = engine.exec(box, ["sh", "-c", "echo out; echo err >&2; exit 3"], env={"X": "1"})
    assert (got.rc, got.stdout, got.stderr) == (3, "out\n", "err\n")
    assert engine.exec(box, ["sh", "-c", 'echo "$X"'], env={"X": "yes"}).stdout == "yes\n"
    assert engine.exec(box, ["pwd"], workdir="/tmp").stdout == "/tmp\n"
    assert engine.exec(box, ["id", "-u"], user="nobody").stdout == "65534\n"
    slow = engine.exec(box, ["sleep", "5"], timeout=0.5)
    assert slow.rc == 124 and "timed out" in slow.stderr
    with pytest.raises(EngineError, match="no-such-container"):
        engine.exec("no-such-container-xyz", ["true"])


def test_inspections_return_none_when_missing_on_both_paths(
    box: str, docker_client: Any, unique: str
) -> None:
    injected = DockerEngine(docker_client, url="unix:///var/run/docker.sock")
    for engine in (connect(None), injected):
        assert engine.inspect_container(box)["Name"] == f"/{box}"  # type: ignore[index]
        assert engine.inspect_container(f"missing-{unique}") is None
        assert engine.inspect_image(f"missing/{unique}:1") is None
        assert engine.inspect_network(f"missing-{unique}") is None
        assert engine.inspect_volume(f"missing-{unique}") is None
        (found,) = engine.list_resources("container", {"labup.test": unique})
        assert (found.name, found.state) == (box, "running")


def test_network_with_an_active_endpoint_is_disconnected_and_removed(
    box: str, docker_client: Any, unique: str
) -> None:
    engine = connect(None)
    net = docker_client.api.create_network(f"labup-engine-test-{unique}")["Id"]
    try:
        docker_client.api.connect_container_to_network(box, net)
        assert engine.remove_network(net) is None
        assert engine.inspect_network(net) is None
        assert engine.inspect_container(box)["State"]["Running"]  # type: ignore[index]
    finally:
        if engine.inspect_network(net) is not None:
            docker_client.api.remove_network(net)
