"""Bind containment against the real engine and a real sshd: a bind source swapped for a
symlink after the lab was checked is never mounted, and labup never writes through a link in
the lab's copy on a remote host."""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from classroom import Classroom
from labfactory import leftovers, purge

import labspec
from labspec.errors import EngineError
from provisioner import lifecycle
from provisioner.engine.connect import connect
from provisioner.lifecycle.progress import QuietReporter
from provisioner.lifecycle.verbs import UpFailed
from provisioner.targets.file_sync import remote_lab, sync_lab

pytestmark = pytest.mark.docker

SPEC = """apiVersion: labup/v1
kind: Lab
name: {name}
title: binds
containers:
  web:
    image: labup-test/busybox:latest
    command: [sh, -c, "trap 'exit 0' TERM INT; sleep 3600 & wait"]
    mounts:
      - {{type: bind, source: site, target: /www, read_only: true}}
      - {{type: bind, source: data, target: /data}}
"""


def _lab_folder(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    (folder / "site" / "css").mkdir(parents=True)
    (folder / "site" / "index.html").write_text("<h1>hi</h1>\n")
    (folder / "site" / "css" / "a.css").write_text("h1 {}\n")
    (folder / "data").mkdir()
    (folder / "data" / "seed.txt").write_text("seed\n")
    (folder / "lab.yaml").write_text(SPEC.format(name=name))
    return folder


def _swap_for_link(path: Path | str, target: str) -> None:
    """What a writer outside the lab does between the check and the mount."""
    os.rename(path, f"{path}.real")
    os.symlink(target, path)


@pytest.fixture
def local_engine(docker_client: Any, test_image: str) -> Iterator[Any]:
    engine = connect()
    try:
        yield engine
    finally:
        engine.close()


def test_a_bind_source_swapped_after_the_check_is_never_mounted(
    docker_client: Any, local_engine: Any, tmp_path: Path, unique: str
) -> None:
    name = f"sec-bind-{unique}"
    folder = _lab_folder(tmp_path, name)
    lab = labspec.load_lab(folder / "lab.yaml")  # checked here: site is inside the folder
    _swap_for_link(folder / "site", "/")
    try:
        with pytest.raises(UpFailed, match=r"bind source .*/site now resolves to /: it changed"):
            lifecycle.up(local_engine, lab, reporter=QuietReporter(), checks=False)
        assert leftovers(docker_client, name) == []  # no container ever saw the host's /
        os.unlink(folder / "site")
        os.rename(f"{folder / 'site'}.real", folder / "site")
        done = lifecycle.up(local_engine, lab, reporter=QuietReporter(), checks=False)
        assert done.ok
        got = local_engine.exec(f"{name}-web", ["cat", "/www/index.html"])
        assert got.stdout == "<h1>hi</h1>\n"
    finally:
        purge(docker_client, name)


def test_a_build_context_swapped_after_the_check_is_not_built(
    docker_client: Any, local_engine: Any, tmp_path: Path, unique: str
) -> None:
    name = f"sec-ctx-{unique}"
    folder = tmp_path / name
    (folder / "app").mkdir(parents=True)
    (folder / "app" / "Dockerfile").write_text("FROM labup-test/busybox:latest\n")
    (folder / "lab.yaml").write_text(
        f"apiVersion: labup/v1\nkind: Lab\nname: {name}\ntitle: t\n"
        f"images:\n  app: {{ref: 'labup-sec/{name}:1', build: {{context: app}}}}\n"
        "containers:\n  web: {image: app, command: [sleep, '1']}\n"
    )
    lab = labspec.load_lab(folder / "lab.yaml")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "Dockerfile").write_text("FROM labup-test/busybox:latest\nCOPY . /stolen\n")
    _swap_for_link(folder / "app", str(outside))
    try:
        with pytest.raises(UpFailed, match=r"build context .*/app now resolves to"):
            lifecycle.up(local_engine, lab, reporter=QuietReporter(), checks=False)
        assert docker_client.images.list(name=f"labup-sec/{name}") == []
    finally:
        purge(docker_client, name)


@pytest.mark.ssh
def test_over_ssh_a_swapped_copy_is_never_mounted_and_never_written_through(
    classroom: Classroom, docker_client: Any, tmp_path: Path, unique: str
) -> None:
    h1 = classroom.host("h1")
    engine = connect(h1.url, host_label="h1", key=classroom.key,
                     known_hosts=classroom.known_hosts)
    name = f"sec-ssh-{unique}"
    folder = _lab_folder(tmp_path, name)
    lab = labspec.load_lab(folder / "lab.yaml")
    base = str(classroom.state / "h1" / f"sec-{unique}")  # the hosts share this file system
    outside = tmp_path / "outside"
    outside.mkdir()
    shell = engine.ssh_session()
    assert shell is not None
    sftp = shell.sftp()
    try:
        first = sync_lab(sftp, lab, instance="default", base=base)
        remote = first.remote_folder
        assert sorted(first.uploaded) == ["data/seed.txt", "lab.yaml", "site/css/a.css",
                                          "site/index.html"]

        # the lab's container owns data/ (bound read-write): it plants a link there
        os.symlink(str(outside), posixpath.join(remote, "data", "sub"))
        (folder / "data" / "sub").mkdir()
        (folder / "data" / "sub" / "new.txt").write_text("would land outside\n")
        (folder / "data" / "seed.txt").write_text("changed\n")
        again = sync_lab(sftp, lab, instance="default", base=base)
        assert sorted(again.kept) == ["data/seed.txt", "data/sub/new.txt"]
        assert list(outside.iterdir()) == []  # nothing written through the link

        # a writer outside the lab swaps a read-only folder's subfolder: refused, not followed
        (folder / "site" / "css" / "a.css").write_text("h1 { color: red }\n")
        _swap_for_link(posixpath.join(remote, "site", "css"), str(outside))
        with pytest.raises(EngineError, match=r"site/css is not a folder \(a symlink\?\)"):
            sync_lab(sftp, lab, instance="default", base=base)
        assert list(outside.iterdir()) == []
        os.unlink(posixpath.join(remote, "site", "css"))
        os.rename(posixpath.join(remote, "site", "css") + ".real",
                  posixpath.join(remote, "site", "css"))

        # and the copy swapped between the sync and the create is never mounted
        there = remote_lab(lab, sync_lab(sftp, lab, instance="default", base=base).remote_folder)
        _swap_for_link(posixpath.join(remote, "site"), "/")
        with pytest.raises(UpFailed, match=r"bind source .*/site now resolves to /: it changed"):
            lifecycle.up(engine, there, reporter=QuietReporter(), checks=False)
        assert leftovers(classroom.client("h1"), name) == []
    finally:
        purge(classroom.client("h1"), name)
        shell.run(["rm", "-rf", base])
        engine.close()


def test_a_dangerous_capability_is_refused_before_the_engine_unless_allowed(
    docker_client: Any, test_image: str, tmp_path: Path, unique: str
) -> None:
    import subprocess
    import sys

    labup = str(Path(sys.executable).with_name("labup"))
    name = f"sec-cap-{unique}"
    (tmp_path / "lab.yaml").write_text(
        f"apiVersion: labup/v1\nkind: Lab\nname: {name}\ntitle: t\ncontainers:\n"
        "  web:\n    image: labup-test/busybox:latest\n    cap_add: [SYS_ADMIN]\n"
        "    command: [sh, -c, \"trap 'exit 0' TERM INT; sleep 3600 & wait\"]\n"
    )
    try:
        refused = subprocess.run([labup, "up", str(tmp_path)], capture_output=True, text=True,
                                 timeout=120)
        assert refused.returncode == 2
        assert "capability SYS_ADMIN gives the container the host" in refused.stdout + \
            refused.stderr
        assert leftovers(docker_client, name) == []
        allowed = subprocess.run([labup, "up", str(tmp_path), "--allow-unsafe"],
                                 capture_output=True, text=True, timeout=120)
        assert allowed.returncode == 0, allowed.stderr
        caps = docker_client.api.inspect_container(f"{name}-web")["HostConfig"]["CapAdd"]
        assert caps == ["SYS_ADMIN"]
    finally:
        purge(docker_client, name)
