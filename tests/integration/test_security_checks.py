"""Grades a learner cannot game, on the real engine (in-process probes and sidecars both):
the engine's port proxy does not pass for a service, deleting or stopping a target does not
"isolate" it, and a container replaced by one labup did not make is not graded as the lab's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from classroom import Classroom
from labfactory import make_lab, on, purge, service

from labspec.model import Check, Lab, Network, NetworkAttachment, Port
from provisioner import lifecycle
from provisioner.checks import run_checks
from provisioner.engine.connect import connect
from provisioner.engine.probe import close_sidecars
from provisioner.lifecycle.progress import QuietReporter

pytestmark = pytest.mark.docker

IDLE = ("sh", "-c", "trap 'exit 0' TERM INT; sleep 3600 & wait")
DB = ("sh", "-c", "trap 'exit 0' TERM INT; mkdir -p /w; httpd -f -p 5000 -h /w & wait")

CHECKS = (
    Check("web-port", "tcp", {"to": "web", "port": 8080}),
    Check("web-closed", "tcp", {"to": "web", "port": 8080, "open": False}),
    Check("db-isolated", "reachable",
          {"from": "client", "to": "db", "port": 5000, "reachable": False}),
    Check("db-alias-isolated", "reachable",
          {"from": "client", "alias": "database", "port": 5000, "reachable": False}),
    Check("db-no-ping", "reachable", {"from": "client", "to": "db", "reachable": False}),
    Check("web-up", "container", {"container": "web"}),
    Check("web-exec", "exec", {"container": "web", "command": ["true"]}),
)


@pytest.fixture(params=["auto", "sidecar"])
def graded(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, docker_client: Any,
           test_image: str, tmp_path: Path, unique: str) -> Iterator[tuple[Any, Lab]]:
    monkeypatch.setenv("LABUP_PROBES", str(request.param))
    key = f"sec-chk-{unique}"
    lab = make_lab(key, tmp_path, [
        service("web", command=IDLE, networks=on("front"), ports=(Port(8080),)),
        service("client", command=IDLE, networks=on("front")),
        service("db", command=DB, networks=(NetworkAttachment("back", ("database",)),)),
    ], networks=[Network("front"), Network("back")], checks=CHECKS)
    engine = connect()
    try:
        assert lifecycle.up(engine, lab, reporter=QuietReporter(), checks=False).ok
        yield engine, lab
    finally:
        close_sidecars(engine.sdk_client())
        purge(docker_client, key)
        engine.close()


def _grade(engine: Any, lab: Lab) -> dict[str, tuple[str, str]]:
    return {r.id: (r.status, r.message) for r in run_checks(engine, lab).results}


def test_the_port_proxy_alone_is_not_an_open_service(graded: tuple[Any, Lab]) -> None:
    engine, lab = graded
    got = _grade(engine, lab)
    assert got["web-port"][0] == "fail", got["web-port"]
    assert "the engine's port proxy accepted on" in got["web-port"][1]
    assert "nothing answers on 8080 in" in got["web-port"][1]
    assert got["web-closed"][0] == "pass"
    started = engine.exec(f"{lab.key}-web", ["sh", "-c", "mkdir -p /w; httpd -p 8080 -h /w"])
    assert started.rc == 0, started.stderr
    got = _grade(engine, lab)
    assert got["web-port"][0] == "pass", got["web-port"]
    assert got["web-closed"][0] == "fail"


def test_isolation_is_proven_only_of_a_target_that_runs(
    graded: tuple[Any, Lab], docker_client: Any
) -> None:
    engine, lab = graded
    negatives = ("db-isolated", "db-alias-isolated", "db-no-ping")
    got = _grade(engine, lab)
    assert {k: got[k][0] for k in negatives} == dict.fromkeys(negatives, "pass"), got
    db = docker_client.containers.get(f"{lab.key}-db")
    db.stop(timeout=1)
    got = _grade(engine, lab)
    for k in negatives:
        assert got[k][0] == "blocked", got[k]
        assert "is not running" in got[k][1] and "proves nothing" in got[k][1]
    db.remove(force=True)
    got = _grade(engine, lab)
    for k in negatives:
        assert got[k][0] == "blocked" and "does not exist" in got[k][1], got[k]


def test_a_container_replaced_by_one_labup_did_not_make_is_not_graded(
    graded: tuple[Any, Lab], docker_client: Any, test_image: str
) -> None:
    engine, lab = graded
    name = f"{lab.key}-web"
    docker_client.containers.get(name).remove(force=True)
    impostor = docker_client.containers.run(test_image, list(IDLE), name=name, detach=True)
    try:
        got = _grade(engine, lab)
        for k in ("web-up", "web-exec", "web-port"):
            assert got[k][0] == "blocked", got[k]
            assert f"{name} is not the lab's own container" in got[k][1]
            assert "replaced by one labup did not create" in got[k][1]
        (status,) = lifecycle.status(engine, lab.key)
        assert name not in {c.name for c in status.containers}
    finally:
        impostor.remove(force=True)


@pytest.mark.ssh
def test_over_ssh_the_port_proxy_and_a_replaced_container_do_not_pass(
    classroom: Classroom, tmp_path: Path, unique: str
) -> None:
    h1 = classroom.host("h1")
    engine = connect(h1.url, host_label="h1", key=classroom.key,
                     known_hosts=classroom.known_hosts)
    key = f"sec-chkssh-{unique}"
    lab = make_lab(key, tmp_path, [
        service("web", command=IDLE, networks=on("front"), ports=(Port(8080),)),
        service("client", command=IDLE, networks=on("front")),
        service("db", command=DB, networks=on("back")),
    ], networks=[Network("front"), Network("back")], checks=CHECKS)
    client = classroom.client("h1")
    try:
        assert lifecycle.up(engine, lab, reporter=QuietReporter(), checks=False).ok
        got = _grade(engine, lab)
        assert got["web-port"][0] == "fail" and "port proxy accepted" in got["web-port"][1]
        assert got["db-isolated"][0] == "pass", got["db-isolated"]
        client.containers.get(f"{key}-db").stop(timeout=1)
        assert _grade(engine, lab)["db-isolated"][0] == "blocked"
        client.containers.get(f"{key}-web").remove(force=True)
        impostor = client.containers.run("labup-test/busybox:latest", list(IDLE),
                                         name=f"{key}-web", detach=True)
        try:
            assert _grade(engine, lab)["web-up"][0] == "blocked"
        finally:
            impostor.remove(force=True)
    finally:
        close_sidecars(engine.sdk_client())
        purge(client, key)
        engine.close()
