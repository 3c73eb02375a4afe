"""Offline bundles on the real SSH classroom (scripts/testhosts.sh): three hosts lacking the
lab's image get it over their one SSH connection and bring the lab up; a second run sends
nothing; a truncated bundle is refused before any host is contacted."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest
from classroom import Classroom, connect_host

import labspec
from labspec.model import Lab
from provisioner.offline.bundle_write import write_bundle

pytestmark = [pytest.mark.docker, pytest.mark.ssh, pytest.mark.fleet]

LAB = """\
apiVersion: labup/v1
kind: Lab
name: bfleet-{token}
title: Bundle fleet test
description: One container from an image that only the bundle brings.
containers:
  app:
    image: {ref}
    command: ["sh", "-c", "trap 'exit 0' TERM INT; sleep 3600 & wait"]
"""


@dataclass(frozen=True)
class FleetCourse:
    ref: str
    image_id: str
    token: str
    lab: Lab
    bundle: Path
    spec: Path


def _three(classroom: Classroom) -> tuple[Any, ...]:
    """The class of the issue: three hosts (the classroom may hold more for other tests)."""
    hosts = classroom.good[:3]
    assert len(hosts) == 3, "the classroom fixture starts at least three hosts"
    return hosts


def _labup(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from provisioner.cli.main import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def _image_id(client: Any, ref: str) -> str | None:
    try:
        return str(client.images.get(ref).id)
    except docker.errors.ImageNotFound:
        return None


@pytest.fixture
def fleet_course(
    docker_client: Any, test_image: str, classroom: Classroom, unique: str, tmp_path: Path
) -> Iterator[FleetCourse]:
    ref = f"labup-bundle-fleet/app:{unique}"
    dockerfile = f"FROM {test_image}\nRUN echo {unique} > /token\n".encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
    buf.seek(0)
    image, _ = docker_client.images.build(fileobj=buf, custom_context=True, tag=ref, rm=True)
    try:
        folder = tmp_path / "fleet-lab"
        folder.mkdir()
        (folder / "lab.yaml").write_text(LAB.format(token=unique, ref=ref))
        lab = labspec.load_lab(folder / "lab.yaml")
        bundle = tmp_path / "course.tar"
        write_bundle(docker_client, [lab], bundle)
        spec = folder / "lab.yaml"
        for h in _three(classroom):  # the hosts start without the image
            assert _image_id(classroom.client(h.name), ref) is None
        yield FleetCourse(ref, str(image.id), unique, lab, bundle, spec)
    finally:
        for h in _three(classroom):
            with contextlib.suppress(docker.errors.ImageNotFound):
                classroom.client(h.name).images.remove(ref, force=True)
        with contextlib.suppress(docker.errors.ImageNotFound):
            docker_client.images.remove(ref, force=True)


def test_bundle_reaches_three_hosts_brings_the_lab_up_and_a_second_run_sends_nothing(
    classroom: Classroom, fleet_course: FleetCourse
) -> None:
    from provisioner import lifecycle
    from provisioner.lifecycle.progress import QuietReporter

    hosts = [h.name for h in _three(classroom)]
    first = _labup(
        "bundle", "load", str(fleet_course.bundle), "-i", str(classroom.inventory_path),
        "--limit", ",".join(hosts), "--json",
    )
    assert first.returncode == 0, first.stdout + first.stderr
    doc = json.loads(first.stdout)
    assert [entry["host"] for entry in doc["hosts"]] == hosts
    for entry in doc["hosts"]:
        assert entry["status"] == "ok", entry
        assert entry["result"]["loaded"] == [fleet_course.ref]
        assert entry["result"]["bytes_sent"] > 0
    assert "loading [" in first.stderr  # the per-host progress line

    for h in _three(classroom):
        client = classroom.client(h.name)
        assert _image_id(client, fleet_course.ref) == fleet_course.image_id
        engine: Any = connect_host(h)
        try:
            lifecycle.up(engine, fleet_course.lab, reporter=QuietReporter(), checks=False)
            name = f"{fleet_course.lab.key}-app"
            assert engine.exec(name, ["cat", "/token"]).stdout.strip() == fleet_course.token
        finally:
            lifecycle.down(engine, fleet_course.lab.key, reporter=QuietReporter())
            engine.close()

    second = _labup(
        "bundle", "load", str(fleet_course.bundle), "-i", str(classroom.inventory_path),
        "--limit", ",".join(hosts), "--json",
    )
    assert second.returncode == 0, second.stdout + second.stderr
    for entry in json.loads(second.stdout)["hosts"]:
        assert entry["result"]["bytes_sent"] == 0, entry
        assert entry["result"]["present"] == [fleet_course.ref]


def test_a_truncated_bundle_is_refused_before_any_host_is_contacted(
    classroom: Classroom, fleet_course: FleetCourse, tmp_path: Path
) -> None:
    cut = tmp_path / "cut.tar"
    data = fleet_course.bundle.read_bytes()
    cut.write_bytes(data[: len(data) * 2 // 3])
    names = ",".join(h.name for h in _three(classroom))
    done = _labup("bundle", "load", str(cut), "-i", str(classroom.inventory_path), "--limit", names)
    assert done.returncode == 2
    assert "truncated" in done.stderr
    assert "h1" not in done.stdout + done.stderr  # no host line: nothing was contacted
    for h in _three(classroom):
        assert _image_id(classroom.client(h.name), fleet_course.ref) is None


def test_fleet_up_with_a_bundle_brings_the_lab_up_on_hosts_that_lacked_its_image(
    classroom: Classroom, fleet_course: FleetCourse, capsys: pytest.CaptureFixture[str]
) -> None:
    from provisioner import lifecycle
    from provisioner.cli.main import main
    from provisioner.lifecycle.progress import QuietReporter

    hosts = [h.name for h in _three(classroom)]
    try:
        with pytest.raises(SystemExit) as code:
            main(["up", str(fleet_course.spec), "-i", str(classroom.inventory_path),
                  "--limit", ",".join(hosts), "--timeout", "60", "--bundle",
                  str(fleet_course.bundle)])
        out = capsys.readouterr().out
        assert code.value.code == 0, out
        assert "all hosts ok" in out
        assert "bundle: loaded" in out or "loading [" in out  # the per-host step lines
        for h in _three(classroom):
            client = classroom.client(h.name)
            assert _image_id(client, fleet_course.ref) == fleet_course.image_id
            app = client.containers.get(f"{fleet_course.lab.key}-app")
            assert app.status == "running"
    finally:
        for h in _three(classroom):
            engine: Any = connect_host(h)
            try:
                lifecycle.down(engine, fleet_course.lab.key, reporter=QuietReporter())
            finally:
                engine.close()
