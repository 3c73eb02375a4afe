"""Network checks on an engine over SSH, probed by labup's agent on that host (no probe
container), with the verdicts and causes the sidecars give; the agent ends with the engine."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from classroom import Classroom, connect_host
from labfactory import lab_labels

from labspec.model import Check, Container, Lab
from provisioner.checks import run_checks
from provisioner.engine.labels import MANAGED
from provisioner.engine.probe import close_sidecars

pytestmark = [pytest.mark.docker, pytest.mark.ssh]

IDLE = "trap 'exit 0' TERM INT; sleep 3600 & wait"
SERVE = ("trap 'exit 0' TERM INT; mkdir -p /w; echo agent > /w/index.html; "
         "httpd -f -p 80 -h /w & wait")

CHECKS = (
    Check("http-host", "http", {"to": "web", "port": 80, "path": "/index.html", "body": "agent"}),
    Check("http-host-404", "http", {"to": "web", "port": 80, "path": "/nope", "status": 404}),
    Check("tcp-host", "tcp", {"to": "web", "port": 80}),
    Check("tcp-unpublished", "tcp", {"to": "client", "port": 80, "open": False}),
    Check("reach-80", "reachable", {"from": "client", "to": "web", "port": 80}),
    Check("reach-81", "reachable", {"from": "client", "to": "web", "port": 81,
                                    "reachable": False}),
    Check("no-such-name", "reachable", {"from": "client", "alias": "database", "port": 5432}),
    Check("ping", "reachable", {"from": "client", "to": "web"}),
    Check("http-from-client", "http", {"from": "client", "to": "web", "port": 80,
                                       "path": "/index.html", "body_regex": "agent"}),
    Check("http-from-client-81", "http", {"from": "client", "to": "web", "port": 81}),
)
AGENT_MARK = "The far side of labup's network probes"


@pytest.fixture
def remote_lab(classroom: Classroom) -> Iterator[tuple[Any, Lab]]:
    host = classroom.good[0]
    engine: Any = connect_host(host)
    client = classroom.client(host.name)  # its own connection: the test closes the engine
    key = f"agt{uuid.uuid4().hex[:8]}"
    labels = {MANAGED: "true", "labup.test": key}
    net = client.networks.create(f"{key}-net", labels=labels)
    made: list[Any] = []
    try:
        for name, command, extra in (
            ("web", SERVE, {"ports": {"80/tcp": ("127.0.0.1", None)}}),
            ("client", IDLE, {}),
        ):
            made.append(client.containers.run(
                "labup-test/busybox:latest", ["sh", "-c", command], name=f"{key}-{name}",
                labels={**labels, **lab_labels(key, name)}, network=net.name, detach=True,
                **extra))
        lab = Lab(api_version="labup/v1", id=None, name=key, title="agent", description="",
                  path=Path("/nonexistent/lab.yaml"), folder=Path("/nonexistent"),
                  containers=(Container("web", image="labup-test/busybox:latest"),
                              Container("client", image="labup-test/busybox:latest")),
                  checks=CHECKS)
        yield engine, lab
    finally:
        close_sidecars(client)
        for cont in made:
            cont.remove(force=True)
        net.remove()
        engine.close()


def _agents() -> set[int]:
    """Probe agents running on this machine (the test hosts share its process table)."""
    found: set[int] = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if AGENT_MARK.encode() in f.read():
                        found.add(int(entry))
            except OSError:
                continue
    return found


def _probe_containers_made(client: Any, since: float) -> list[str]:
    events = client.events(since=int(since), until=int(time.time()) + 1, decode=True,
                           filters={"type": "container", "event": "create"})
    return [e["Actor"]["Attributes"].get("name", "") for e in events
            if e["Actor"]["Attributes"].get("labup.kind") == "probe"]


def test_network_checks_over_ssh_probe_from_the_host_with_no_probe_container(
    remote_lab: tuple[Any, Lab], monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine, lab = remote_lab
    monkeypatch.delenv("LABUP_PROBES", raising=False)
    before = _agents()
    t0 = time.time() - 1
    run = run_checks(engine, lab)
    got = {r.id: (r.status, r.message) for r in run.results}
    assert engine.probe_agent() is not None
    assert _probe_containers_made(engine.sdk_client(), t0) == []  # not one probe container
    assert {k: s for k, (s, _) in got.items()} == {
        **{c.id: "pass" for c in CHECKS},
        "http-from-client-81": "fail", "no-such-name": "fail"}, got
    assert got["no-such-name"][1].endswith(": bad address 'database' (the container cannot "
                                           "resolve it)")
    assert "GET http://127.0.0.1:" in got["http-host"][1]  # the remote host's loopback
    assert "can't connect to" in got["http-from-client-81"][1]
    mine = _agents() - before
    assert len(mine) == 1
    engine.close()  # the agent ends with its channel: nothing is left on the host
    deadline = time.monotonic() + 10
    while mine & _agents() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not mine & _agents()


def test_sidecars_over_ssh_give_the_agents_verdicts_and_causes(
    remote_lab: tuple[Any, Lab], monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine, lab = remote_lab
    monkeypatch.delenv("LABUP_PROBES", raising=False)
    by_agent = {r.id: (r.status, r.message) for r in run_checks(engine, lab).results}
    monkeypatch.setenv("LABUP_PROBES", "sidecar")
    engine._agent.close()
    engine._agent = None  # a fresh start of the choice, as a new labup process makes it
    assert engine.probe_agent() is None
    t0 = time.time() - 1
    by_sidecar = {r.id: (r.status, r.message) for r in run_checks(engine, lab).results}
    assert _probe_containers_made(engine.sdk_client(), t0) != []
    assert by_sidecar == by_agent


def _wait_gone(pids: set[int]) -> None:
    deadline = time.monotonic() + 10
    while pids & _agents() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not pids & _agents()


def test_an_agent_started_as_the_engine_connects_is_the_one_the_checks_use(
    remote_lab: tuple[Any, Lab], classroom: Classroom, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from classroom import targets_of

    _, lab = remote_lab
    monkeypatch.delenv("LABUP_PROBES", raising=False)
    before = _agents()
    engine: Any = targets_of([classroom.good[0]])[0].connect(probes=True)
    try:
        run = run_checks(engine, lab)
        assert {r.id for r in run.results if r.status == "pass"} == {
            c.id for c in CHECKS} - {"http-from-client-81", "no-such-name"}
        mine = _agents() - before
        assert len(mine) == 1  # started once, at connect; the checks did not start another
    finally:
        engine.close()
    _wait_gone(mine)


def test_an_agent_started_early_and_never_used_ends_with_the_engine(
    classroom: Classroom, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from classroom import targets_of

    monkeypatch.delenv("LABUP_PROBES", raising=False)
    before = _agents()
    engine: Any = targets_of([classroom.good[0]])[0].connect(probes=True)
    engine._agent_starting.result(timeout=15)  # up there, and never asked anything
    mine = _agents() - before
    assert len(mine) == 1
    engine.close()
    _wait_gone(mine)
