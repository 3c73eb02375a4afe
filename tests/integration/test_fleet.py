"""A lab on the whole classroom: real sshd + dockerd test hosts, driven in parallel."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from classroom import Classroom, down_on, fleet, status_on, up_on

from provisioner.engine import labels as L
from provisioner.targets.failed_hosts import load_failed, record_failed
from provisioner.targets.live_view import PlainView, print_summary
from provisioner.targets.runner import Done, FleetResult, TargetContext
from provisioner.targets.select import select_hosts

pytestmark = [pytest.mark.docker, pytest.mark.ssh, pytest.mark.fleet]

SPEC = """\
apiVersion: labup/v1
kind: Lab
name: {name}
title: "Fleet test for {{{{ host.vars.learner }}}}"
containers:
  web:
    image: labup-test/busybox:latest
    command: ["sh", "-c", "trap 'exit 0' TERM INT; httpd -f -p 80 -h /site & wait"]
    env:
      LEARNER: "{{{{ host.vars.learner }}}}"
      HOST: "{{{{ host.name }}}}"
    ports: ["{{{{ 18000 + host.vars.port_offset }}}}:80"]
    mounts:
      - {{type: bind, source: site, target: /site, read_only: true}}
  worker:
    image: labup-test/busybox:latest
    command: ["sh", "-c", "trap 'exit 0' TERM INT; sleep 3600 & wait"]
"""


def write_lab(folder: Path, name: str) -> Path:
    (folder / "site").mkdir(parents=True)
    (folder / "site" / "index.html").write_text(f"<h1>{name}</h1>\n")
    (folder / "site" / "notes.txt").write_text("notes\n")
    spec = folder / "lab.yaml"
    spec.write_text(SPEC.format(name=name))
    return spec


def _purge(classroom: Classroom, key: str) -> None:
    for h in classroom.good:
        client = classroom.client(h.name)
        for c in client.containers.list(all=True, filters={"label": f"{L.LAB}={key}"}):
            c.remove(force=True)
        for n in client.networks.list(filters={"label": f"{L.LAB}={key}"}):
            n.remove()


def test_up_status_down_on_the_class_while_broken_hosts_fail_alone(
    classroom: Classroom, tmp_path: Path, unique: str
) -> None:
    name = f"fleet-{unique}"
    spec = write_lab(tmp_path / "lab", name)
    everyone = (*classroom.good, *classroom.broken)
    out = io.StringIO()
    try:
        result = fleet(everyone, up_on(spec, checks=False), parallel=6,
                           view=PlainView(out))
        by = {o.host: o for o in result.outcomes}
        for h in classroom.good:
            assert by[h.name].status == "ok", by[h.name].message
            assert f"{name} up" in by[h.name].message
        assert by["hdown"].status == "unreachable"
        assert "cannot reach the SSH server" in by["hdown"].message
        assert by["hbadkey"].status == "unreachable"
        assert "REMOTE HOST KEY HAS CHANGED" in by["hbadkey"].message
        assert by["hnodocker"].status == "unreachable"
        assert "no Docker engine answers there" in by["hnodocker"].message
        assert set(result.failed) == {"hdown", "hbadkey", "hnodocker"}
        assert result.exit_code == 1

        # each host got its own rendering of the spec and its own copy of the bind files
        for h in classroom.good:
            client = classroom.client(h.name)
            web = client.containers.get(f"{name}-web")
            env = dict(e.split("=", 1) for e in web.attrs["Config"]["Env"])
            assert env["LEARNER"] == h.vars["learner"]
            assert env["HOST"] == h.name
            ports = web.attrs["HostConfig"]["PortBindings"]["80/tcp"]
            assert ports[0]["HostPort"] == str(18000 + int(h.vars["port_offset"]))
            served = web.exec_run(["wget", "-q", "-O-", "http://127.0.0.1/index.html"])
            assert served.output.decode() == f"<h1>{name}</h1>\n"
            source = web.attrs["Mounts"][0]["Source"]
            assert source.startswith(str(h.vars["labup_dir"]))

        # the plain live view printed lines per host, the summary one line per host
        lines = out.getvalue()
        assert "[h1] connecting" in lines and "[hdown] UNREACHABLE" in lines
        summary = io.StringIO()
        print_summary(result, command=f"up {name}", stream=summary)
        text = summary.getvalue()
        for h in everyone:
            assert sum(1 for line in text.splitlines() if line.startswith(h.name + " ")) == 1
        assert "failed: hdown, hbadkey, hnodocker" in text

        status = fleet(classroom.good, status_on(name), parallel=3)
        for o in status.outcomes:
            assert o.status == "ok"
            assert f"{name}[default] running (2/2 running)" in o.message

        again = fleet(classroom.good, up_on(spec, checks=False), parallel=3)
        assert all("up to date" in o.message for o in again.outcomes), again.as_dict()

        gone = fleet(classroom.good, down_on(name), parallel=3)
        assert gone.failed == ()
        for h in classroom.good:
            left = classroom.client(h.name).containers.list(
                all=True, filters={"label": f"{L.LAB}={name}"}
            )
            assert left == []
    finally:
        _purge(classroom, name)


def test_only_failed_reruns_just_the_hosts_that_failed(
    classroom: Classroom, tmp_path: Path
) -> None:
    inventory = classroom.inventory("h1", "hdown", "h2", path=tmp_path / "class.yml")
    seen: list[str] = []

    def ping(ctx: TargetContext) -> Done[str]:
        seen.append(ctx.target.name)
        ctx.engine.info()
        return Done("pong", "pong")

    first = fleet(inventory.hosts, ping, parallel=3)
    assert first.failed == ("hdown",)
    record = record_failed(inventory.path, "ping", first.failed, [o.host for o in first.outcomes])
    assert record is not None and record.name == ".class.yml.labup-failed.json"
    assert json.loads(record.read_text())["failed"] == ["hdown"]
    command, failed = load_failed(inventory.path)
    assert (command, failed) == ("ping", ("hdown",))
    rerun = select_hosts(inventory, only=failed)
    assert [h.name for h in rerun] == ["hdown"]
    seen.clear()
    second = fleet(rerun, ping)
    assert seen == [] and second.failed == ("hdown",)


def test_hosts_run_in_parallel_up_to_the_bound(classroom: Classroom) -> None:
    import threading

    together = threading.Barrier(3, timeout=20)  # breaks unless all three run at once

    def meet(ctx: TargetContext) -> Done[str]:
        ctx.step("waiting for the others")
        together.wait()
        return Done(str(ctx.engine.info()["Name"]), "")

    assert fleet(classroom.good, meet, parallel=3).failed == ()

    lock = threading.Lock()
    running = [0]
    most = [0]

    def count(ctx: TargetContext) -> Done[str]:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            ctx.engine.info()
            ctx.engine.inspect_image("labup-test/busybox:latest")
        finally:
            with lock:
                running[0] -= 1
        return Done("ok", "ok")

    hosts = (*classroom.good, *classroom.good)  # six runs over three hosts
    assert fleet(hosts, count, parallel=2).failed == ()
    assert most[0] <= 2


def test_summary_when_all_succeed(classroom: Classroom) -> None:
    result = fleet(classroom.good, lambda ctx: Done("fine", "fine"), parallel=2)
    assert isinstance(result, FleetResult)
    out = io.StringIO()
    print_summary(result, command="ping", stream=out)
    assert out.getvalue().rstrip().endswith("all hosts ok")


def test_a_host_whose_up_fails_is_rolled_back_while_the_others_come_up(
    classroom: Classroom, tmp_path: Path, unique: str
) -> None:
    name = f"clash-{unique}"
    spec = write_lab(tmp_path / "lab", name)
    h2 = classroom.host("h2")
    port = 18000 + int(h2.vars["port_offset"])
    squatter = classroom.client("h2").containers.run(
        "labup-test/busybox:latest", ["sh", "-c", "trap 'exit 0' TERM INT; sleep 3600 & wait"],
        detach=True, name=f"labup-squat-{unique}", ports={"80/tcp": ("127.0.0.1", port)},
    )
    try:
        result = fleet(classroom.good, up_on(spec, checks=False), parallel=3)
        assert result.failed == ("h2",)
        failed = result.outcome("h2")
        assert failed.status == "failed"
        assert str(port) in failed.message
        for h in classroom.good:
            left = classroom.client(h.name).containers.list(
                all=True, filters={"label": f"{L.LAB}={name}"})
            if h.name == "h2":
                assert left == []  # what this run created there was removed
            else:
                assert {c.name for c in left} == {f"{name}-web", f"{name}-worker"}
    finally:
        squatter.remove(force=True)
        _purge(classroom, name)
