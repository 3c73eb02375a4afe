"""up / plan / down / reset / status on the real engine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from labfactory import leftovers, make_lab, on, purge, service, with_container

from labspec.model import (
    Dependency,
    Healthcheck,
    Mount,
    Network,
    NetworkAttachment,
    Port,
    Resources,
    Volume,
)
from provisioner import lifecycle
from provisioner.engine import labels as L
from provisioner.engine.connect import connect
from provisioner.engine.docker_engine import DockerEngine
from provisioner.lifecycle.progress import QuietReporter

pytestmark = pytest.mark.docker


@pytest.fixture
def engine(docker_client: Any, test_image: str) -> Iterator[DockerEngine]:
    eng = connect(None)
    yield eng
    eng.close()


@pytest.fixture
def key(docker_client: Any, unique: str) -> Iterator[str]:
    name = f"t{unique}"
    yield name
    purge(docker_client, name)


def test_up_realizes_every_field_and_second_up_does_nothing(
    engine: DockerEngine, docker_client: Any, key: str, tmp_path: Path
) -> None:
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "index.html").write_text("hello from the lab folder\n")
    web = service(
        "web",
        command=("httpd", "-f", "-p", "8080", "-h", "/www"),
        env={"GREETING": "hi", "MODE": "test"},
        working_dir="/tmp",
        hostname="webhost",
        ports=(Port(8080),),
        networks=(NetworkAttachment("front", aliases=("site",)),
                  NetworkAttachment("back", ipv4_address="10.231.7.10")),
        mounts=(
            Mount("bind", "/www", str(tmp_path / "site"), read_only=True),
            Mount("volume", "/data", "data"),
            Mount("tmpfs", "/scratch", size=4 * 1024 * 1024),
        ),
        resources=Resources(cpus=0.5, memory=64 * 1024 * 1024, pids=64),
        user="0:0",
        read_only=True,
        init=True,
        cap_drop=("NET_RAW",),
        cap_add=("CHOWN",),
        restart="on-failure:2",
        labels={"course": "docker"},
        entrypoint=None,
        stop_timeout=3,
    )
    client = service("client", networks=on("front"), entrypoint=("sh", "-c"),
                     command=("trap 'exit 0' TERM INT; sleep 3600 & wait",))
    lab = make_lab(
        key, tmp_path, [web, client],
        networks=[Network("front"), Network("back", internal=True, subnet="10.231.7.0/24",
                                            gateway="10.231.7.1")],
        volumes=[Volume("data", labels={"purpose": "test"})],
    )
    result = lifecycle.up(engine, lab, reporter=QuietReporter(), checks=False)
    assert result.ok and not result.noop
    assert {(e["kind"], e["name"], e["action"]) for e in result.events} >= {
        ("container", f"{key}-web", "started"), ("network", f"{key}-back", "created"),
        ("volume", f"{key}-data", "created"),
    }
    info = docker_client.api.inspect_container(f"{key}-web")
    cfg, host = info["Config"], info["HostConfig"]
    assert "GREETING=hi" in cfg["Env"] and cfg["WorkingDir"] == "/tmp"
    assert cfg["Hostname"] == "webhost" and cfg["User"] == "0:0"
    assert cfg["Labels"]["course"] == "docker" and cfg["Labels"][L.MANAGED] == "true"
    assert cfg["Labels"][L.LAB] == key and cfg["Labels"][L.INSTANCE] == "default"
    assert cfg["Labels"][L.RESOURCE] == "web" and cfg["Labels"][L.KIND] == "container"
    assert cfg["Labels"][L.RUN_ID] == result.run_id and cfg["Labels"][L.CONFIG_HASH]
    assert cfg["StopTimeout"] == 3
    assert host["ReadonlyRootfs"] and host["Init"] and host["NanoCpus"] == 500_000_000
    assert host["Memory"] == 64 * 1024 * 1024 and host["PidsLimit"] == 64
    assert host["CapDrop"] == ["NET_RAW"] and host["CapAdd"] == ["CHOWN"]
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
    assert host["PortBindings"]["8080/tcp"][0]["HostIp"] == "127.0.0.1"
    mounts = {m["Destination"]: m for m in info["Mounts"]}
    assert mounts["/www"]["Type"] == "bind" and not mounts["/www"]["RW"]
    assert mounts["/data"]["Name"] == f"{key}-data"
    tmpfs = next(m for m in host["Mounts"] if m["Type"] == "tmpfs")
    assert tmpfs["TmpfsOptions"]["SizeBytes"] == 4 * 1024 * 1024
    nets = info["NetworkSettings"]["Networks"]
    assert set(nets) == {f"{key}-front", f"{key}-back"}
    assert {"web", "site"} <= set(nets[f"{key}-front"]["Aliases"])
    assert nets[f"{key}-back"]["IPAMConfig"]["IPv4Address"] == "10.231.7.10"
    back = docker_client.api.inspect_network(f"{key}-back")
    assert back["Internal"] and back["IPAM"]["Config"][0]["Subnet"] == "10.231.7.0/24"
    assert back["IPAM"]["Config"][0]["Gateway"] == "10.231.7.1"
    assert docker_client.api.inspect_volume(f"{key}-data")["Labels"]["purpose"] == "test"
    # the bind is served, the tmpfs is writable on a read-only root, the alias resolves
    got = engine.exec(f"{key}-client", ["wget", "-qO-", "http://site:8080/index.html"])
    assert got.rc == 0 and "hello from the lab folder" in got.stdout
    assert engine.exec(f"{key}-web", ["touch", "/scratch/x"]).rc == 0
    assert engine.exec(f"{key}-web", ["touch", "/x"]).rc != 0
    # nothing changed: the second up does nothing and says so
    reporter = QuietReporter()
    again = lifecycle.up(engine, lab, reporter=reporter, checks=False)
    assert again.noop and not reporter.events
    assert any("up to date" in text for _, text in reporter.messages)


def test_network_mode_none_reaches_the_engine(
    engine: DockerEngine, docker_client: Any, key: str, tmp_path: Path
) -> None:
    # (privileged containers cannot start in this sandbox: "unable to apply caps"; the
    # request body is checked in tests/unit/test_network_endpoints.py)
    lab = make_lab(key, tmp_path, [service("isolated", network_mode="none")])
    lifecycle.up(engine, lab, reporter=QuietReporter(), checks=False)
    host = docker_client.api.inspect_container(f"{key}-isolated")["HostConfig"]
    assert host["NetworkMode"] == "none"
    assert engine.exec(f"{key}-isolated", ["ls", "/sys/class/net"]).stdout.split() == ["lo"]


def test_plan_names_changed_fields_and_up_replaces_only_those(
    engine: DockerEngine, docker_client: Any, key: str, tmp_path: Path
) -> None:
    lab = make_lab(key, tmp_path, [service("a", env={"X": "1"}), service("b"), service("old")])
    lifecycle.up(engine, lab, reporter=QuietReporter(), checks=False)
    b_id = docker_client.api.inspect_container(f"{key}-b")["Id"]
    changed = with_container(lab, "a", env={"X": "2"}, user="nobody")
    changed = make_lab(key, tmp_path, [c for c in changed.containers if c.name != "old"])
    p = lifecycle.plan(engine, changed)
    steps = {(s.kind, s.key): s for s in p.steps}
    assert steps[("container", "a")].action == "replace"
    assert steps[("container", "a")].changed == ("env.X", "user")
    assert steps[("container", "b")].action == "keep"
    assert steps[("container", "old")].action == "remove"
    assert "env.X, user changed" in steps[("container", "a")].text()
    lifecycle.up(engine, changed, reporter=QuietReporter(), checks=False)
    assert docker_client.api.inspect_container(f"{key}-b")["Id"] == b_id
    assert "X=2" in docker_client.api.inspect_container(f"{key}-a")["Config"]["Env"]
    assert f"{key}-old" not in leftovers(docker_client, key)
    assert lifecycle.plan(engine, changed).is_noop


def test_depends_on_waits_for_healthy_and_completed(
    engine: DockerEngine, docker_client: Any, key: str, tmp_path: Path
) -> None:
    db = service(
        "db",
        command=("sh", "-c",
                 "trap 'exit 0' TERM INT; sleep 1; touch /tmp/ready; sleep 3600 & wait"),
        healthcheck=Healthcheck(("CMD", "test", "-f", "/tmp/ready"), interval=0.3, timeout=2,
                                retries=20),
    )
    init = service("init", command=("sh", "-c", "sleep 0.5; echo done"))
    app = service("app", depends_on=(Dependency("db", "healthy"), Dependency("init", "completed")))
    lab = make_lab(key, tmp_path, [app, db, init])
    result = lifecycle.up(engine, lab, reporter=QuietReporter(), checks=False)
    order = [(e["name"], e["action"]) for e in result.events if e["kind"] == "container"]
    assert order.index((f"{key}-db", "healthy")) < order.index((f"{key}-app", "started"))
    assert order.index((f"{key}-init", "completed")) < order.index((f"{key}-app", "started"))
    started = {
        n: docker_client.api.inspect_container(f"{key}-{n}")["State"]["StartedAt"]
        for n in ("db", "app")
    }
    assert started["db"] < started["app"]
    # the completed job is kept on the next up, not re-run
    assert lifecycle.plan(engine, lab).is_noop


def test_status_lists_instances_with_state_and_health(
    engine: DockerEngine, docker_client: Any, key: str, tmp_path: Path
) -> None:
    lab = make_lab(key, tmp_path, [
        service("web", healthcheck=Healthcheck(("CMD", "true"), interval=0.3, retries=3)),
        service("worker"),
    ])
    lifecycle.up(engine, lab, reporter=QuietReporter(), checks=False)
    lifecycle.up(engine, lab, instance="alice", reporter=QuietReporter(), checks=False)
    docker_client.api.stop(f"{key}-alice-worker", timeout=5)
    found = {s.instance: s for s in lifecycle.status(engine, key)}
    assert set(found) == {"default", "alice"}
    assert found["default"].state == "running"
    web = next(c for c in found["default"].containers if c.key == "web")
    assert web.health == "healthy" and web.state == "running"
    assert found["alice"].state == "degraded"
    assert {c.name for c in found["alice"].containers} == {
        f"{key}-alice-web", f"{key}-alice-worker"
    }
    everything = {(s.lab, s.instance) for s in lifecycle.status(engine)}
    assert {(key, "default"), (key, "alice")} <= everything
    # a stopped container is replaced by the next up
    p = lifecycle.plan(engine, lab, instance="alice")
    assert [s.key for s in p.changes] == ["worker"] and "Exited" in p.changes[0].reason


def test_down_removes_only_labelled_resources(
    engine: DockerEngine, docker_client: Any, key: str, tmp_path: Path, test_image: str
) -> None:
    lab = make_lab(key, tmp_path, [service("web", networks=on("net"), mounts=(
        Mount("volume", "/data", "data"),))], networks=[Network("net")], volumes=[Volume("data")])
    lifecycle.up(engine, lab, reporter=QuietReporter(), checks=False)
    # an unlabelled container and a similarly named network beside the lab
    stranger = docker_client.api.create_container(test_image, name=f"{key}-stranger",
                                                  command=["true"])
    lookalike = docker_client.api.create_network(f"{key}-net2")
    try:
        result = lifecycle.down(engine, key, reporter=QuietReporter())
        assert result.ok
        assert sorted(n for _, n in result.removed) == sorted([f"{key}-web", f"{key}-net"])
        assert leftovers(docker_client, key) == [f"{key}-data"]  # volume kept without --volumes
        assert docker_client.api.inspect_container(stranger["Id"])["Name"] == f"/{key}-stranger"
        assert docker_client.api.inspect_network(lookalike["Id"])["Name"] == f"{key}-net2"
        assert lifecycle.down(engine, key, volumes=True, reporter=QuietReporter()).removed == [
            ("volume", f"{key}-data")
        ]
        assert leftovers(docker_client, key) == []
    finally:
        docker_client.api.remove_container(stranger["Id"], force=True)
        docker_client.api.remove_network(lookalike["Id"])


def test_reset_returns_to_a_fresh_state_with_empty_volumes(
    engine: DockerEngine, docker_client: Any, key: str, tmp_path: Path
) -> None:
    lab = make_lab(key, tmp_path, [service("box", mounts=(Mount("volume", "/data", "data"),))],
                   volumes=[Volume("data")])
    lifecycle.up(engine, lab, reporter=QuietReporter(), checks=False)
    assert engine.exec(f"{key}-box", ["sh", "-c", "echo learner-work > /data/file"]).rc == 0
    docker_client.api.kill(f"{key}-box")
    removed, result = lifecycle.reset(engine, lab, reporter=QuietReporter(), checks=False)
    assert ("volume", f"{key}-data") in removed.removed and result.ok
    assert engine.exec(f"{key}-box", ["ls", "/data"]).stdout == ""
    assert docker_client.api.inspect_container(f"{key}-box")["State"]["Running"]


def test_instances_do_not_collide(
    engine: DockerEngine, docker_client: Any, key: str, tmp_path: Path
) -> None:
    lab = make_lab(key, tmp_path, [service("web", networks=on("net"))], networks=[Network("net")])
    lifecycle.up(engine, lab, reporter=QuietReporter(), checks=False)
    lifecycle.up(engine, lab, instance="bob", reporter=QuietReporter(), checks=False)
    assert sorted(leftovers(docker_client, key)) == sorted(
        [f"{key}-web", f"{key}-bob-web", f"{key}-net", f"{key}-bob-net"]
    )
    lifecycle.down(engine, key, "bob", reporter=QuietReporter())
    assert sorted(leftovers(docker_client, key)) == sorted([f"{key}-web", f"{key}-net"])
