"""Lab identity on the real engine: a spec outside the catalog that says ``id: 1`` or
``name: lab1`` cannot replace, plan over or remove catalog lab 1's resources (nor the other
way round); the key alone still removes whatever carries it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from labfactory import purge

pytestmark = pytest.mark.docker

LABUP = str(Path(sys.executable).with_name("labup"))
BODY = """apiVersion: labup/v1
kind: Lab
{head}
title: {title}
containers:
  web:
    image: labup-test/busybox:latest
    command: [sh, -c, "trap 'exit 0' TERM INT; sleep 3600 & wait"]
"""


def _write(folder: Path, head: str, title: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "lab.yaml").write_text(BODY.format(head=head, title=title))
    return folder


def _labup(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LABUP_LABS_DIR": str(tmp_path / "catalog"), "LABUP_NO_CACHE": "1"}
    return subprocess.run([LABUP, *args], capture_output=True, text=True, timeout=120, env=env,
                          cwd=tmp_path)


def _labels(client: Any, name: str) -> dict[str, str]:
    return dict(client.api.inspect_container(name)["Config"]["Labels"])


@pytest.mark.parametrize("head", ["id: 1\nname: impostor", "name: lab1"])
def test_a_spec_outside_the_catalog_cannot_take_over_catalog_lab_1(
    docker_client: Any, test_image: str, tmp_path: Path, unique: str, head: str
) -> None:
    _write(tmp_path / "catalog" / "01-first", "id: 1\nname: first", "catalog lab 1")
    hostile = _write(tmp_path / "elsewhere", head, "not lab 1")
    instance = f"sec{unique}"
    web = f"lab1-{instance}-web"
    try:
        assert _labup(tmp_path, "up", "1", "--instance", instance).returncode == 0
        before = docker_client.api.inspect_container(web)["Id"]
        assert _labels(docker_client, web)["labup.origin"] == "catalog"
        for verb in ("up", "plan", "reset", "down"):
            result = _labup(tmp_path, verb, str(hostile), "--instance", instance)
            assert result.returncode == 2, (verb, result.stdout, result.stderr)
            assert f"lab1 [{instance}] on this engine is the catalog's lab" in result.stderr
            assert "refusing to touch its resources" in result.stderr
            assert docker_client.api.inspect_container(web)["Id"] == before  # untouched
        # the catalog lab is protected the other way round as well
        assert _labup(tmp_path, "down", "1", "--instance", instance).returncode == 0
        assert _labup(tmp_path, "up", str(hostile), "--instance", instance).returncode == 0
        assert _labels(docker_client, web)["labup.origin"] == f"spec:{hostile / 'lab.yaml'}"
        refused = _labup(tmp_path, "up", "1", "--instance", instance)
        assert refused.returncode == 2
        assert f"is the spec {hostile / 'lab.yaml'}" in refused.stderr
        # the key alone is the explicit way out: it removes whatever carries the key
        gone = _labup(tmp_path, "down", "lab1", "--instance", instance)
        assert gone.returncode == 0, gone.stderr
        assert docker_client.containers.list(all=True, filters={"name": web}) == []
    finally:
        _purge_instance(docker_client, instance)


def _purge_instance(client: Any, instance: str) -> None:
    flt = {"label": ["labup.managed=true", "labup.lab=lab1", f"labup.instance={instance}"]}
    for c in client.api.containers(all=True, filters=flt):
        client.api.remove_container(c["Id"], force=True, v=True)
    for n in client.api.networks(filters=flt):
        client.api.remove_network(n["Id"])


def test_two_specs_outside_the_catalog_with_one_name_are_two_labs(
    docker_client: Any, test_image: str, tmp_path: Path, unique: str
) -> None:
    name = f"sec-twin-{unique}"
    one = _write(tmp_path / "one", f"name: {name}", "one")
    two = _write(tmp_path / "two", f"name: {name}", "two")
    try:
        assert _labup(tmp_path, "up", str(one)).returncode == 0
        refused = _labup(tmp_path, "down", str(two))
        assert refused.returncode == 2 and f"is the spec {one / 'lab.yaml'}" in refused.stderr
        assert docker_client.containers.list(filters={"name": f"{name}-web"})
        assert _labup(tmp_path, "down", str(one)).returncode == 0
    finally:
        purge(docker_client, name)
