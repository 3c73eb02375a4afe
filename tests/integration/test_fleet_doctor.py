"""`labup doctor` on the classroom and on the local engine: a table, and nothing changed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from classroom import Classroom

from provisioner.cli.main import main

pytestmark = [pytest.mark.docker, pytest.mark.ssh, pytest.mark.fleet]

SPEC = """\
apiVersion: labup/v1
kind: Lab
name: doctor-{unique}
title: Doctor
containers:
  web:
    image: labup-test/busybox:latest
    ports: ["{port}:80"]
  tool:
    image: labup-missing/nothing:1
    gpus: {{count: 1, optional: true}}
"""


def _run(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as info:
        main(argv)
    code = info.value.code
    return code if isinstance(code, int) else 0


def _snapshot(client: Any, unique: str) -> tuple[list[str], list[str], list[str], list[str]]:
    """What doctor could have made for this lab (others may use the test hosts meanwhile)."""
    return (
        sorted(c.name for c in client.containers.list(all=True) if unique in c.name),
        sorted(n.name for n in client.networks.list() if unique in n.name),
        sorted(v.name for v in client.volumes.list() if unique in v.name),
        sorted(t for i in client.images.list() for t in i.tags if "labup-missing" in t),
    )


def test_doctor_on_the_class_reports_each_host_and_changes_nothing(
    classroom: Classroom, tmp_path: Path, unique: str, capsys: pytest.CaptureFixture[str]
) -> None:
    port = 18555
    spec = tmp_path / "lab.yaml"
    spec.write_text(SPEC.format(unique=unique, port=port))
    h1 = classroom.client("h1")
    squatter = h1.containers.run(
        "labup-test/busybox:latest", ["sh", "-c", "trap 'exit 0' TERM INT; sleep 3600 & wait"],
        detach=True, name=f"labup-squat-{unique}", ports={"80/tcp": ("127.0.0.1", port)},
    )
    try:
        before = {h.name: _snapshot(classroom.client(h.name), unique) for h in classroom.good}
        code = _run(["doctor", str(spec), "-i", str(classroom.inventory_path),
                     "--limit", "h1,h2,hdown"])
        out = capsys.readouterr().out
        assert code == 1
        lines = out.splitlines()

        def row(host: str, item: str) -> str:
            found = [ln for ln in lines if ln.split()[:1] == [host] and f" {item} " in ln]
            assert len(found) == 1, (host, item, out)
            return found[0]

        assert " ok " in row("h1", "engine") and "Docker 20.10" in row("h1", "engine")
        assert " ok " in row("h2", "disk") and "free at" in row("h2", "disk")
        assert "present" in row("h1", "image labup-test/busybox:latest")
        assert " fail " in row("h2", "image labup-missing/nothing:1")
        assert "not pullable" in row("h2", "image labup-missing/nothing:1")
        taken = row("h1", f"port 127.0.0.1:{port}/tcp")
        assert " fail " in taken and f"published by container labup-squat-{unique}" in taken
        assert " ok " in row("h2", f"port 127.0.0.1:{port}/tcp")
        assert "Fake Tesla T4" in row("h2", "gpu")
        assert " fail " in row("hdown", "engine")
        assert "cannot reach the SSH server" in row("hdown", "engine")
        assert "not ready: h1, h2, hdown" in out
        after = {h.name: _snapshot(classroom.client(h.name), unique) for h in classroom.good}
        assert after == before
        assert before["h1"][0] == [f"labup-squat-{unique}"]  # only the squatter, untouched
        squatter.reload()
        assert squatter.status == "running"
    finally:
        squatter.remove(force=True)


def test_doctor_json_without_a_lab(
    classroom: Classroom, capsys: pytest.CaptureFixture[str]
) -> None:
    names = ",".join(h.name for h in classroom.good)
    code = _run(["doctor", "-i", str(classroom.inventory_path), "--limit", names, "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    assert [h["host"] for h in doc["hosts"]] == [h.name for h in classroom.good]
    for entry in doc["hosts"]:
        items = {f["item"]: f for f in entry["result"]["findings"]}
        assert items["engine"]["level"] == "ok"
        assert set(items) == {"engine", "features", "limit", "disk", "gpu", "runtime",
                              "tools", "probes"}


def test_doctor_on_the_local_engine(
    docker_client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _run(["doctor"])
    out = capsys.readouterr().out
    assert code == 0
    assert "local  engine" in out and "unix:///var/run/docker.sock" in out
    assert out.rstrip().endswith("all ready")
