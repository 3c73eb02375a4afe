"""Offline images on the real engine: built from Debian packages, labelled, cached, skipped
when present. Every image here gets a unique test name and is removed afterwards."""

from __future__ import annotations

import contextlib
import dataclasses
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provisioner.offline import base_images as oi

pytestmark = pytest.mark.docker

LABUP = str(Path(sys.executable).parent / "labup")


@pytest.fixture
def made(docker_client: Any) -> Iterator[list[str]]:
    """Image names a test creates; removed afterwards (only those)."""
    names: list[str] = []
    yield names
    for name in names:
        with contextlib.suppress(Exception):  # already gone is fine
            docker_client.images.remove(name, force=True)


def run(docker_client: Any, image: str, argv: list[str]) -> str:
    out = docker_client.containers.run(image, argv, remove=True, stdout=True, stderr=True)
    return out.decode() if isinstance(out, bytes) else str(out)


def test_busybox_is_built_from_the_host_binary_and_labelled(
    docker_client: Any, unique: str, made: list[str]
) -> None:
    recipe = dataclasses.replace(oi.RECIPES["busybox:1.36"], ref=f"labup-test/bb-{unique}:1.36")
    made.append(recipe.ref)
    steps: list[str] = []
    detail = oi.build_offline(docker_client, recipe, progress=lambda ref, msg: steps.append(msg))
    assert "busybox" in detail and steps and steps[0].startswith("importing busybox")
    attrs = docker_client.api.inspect_image(recipe.ref)
    assert attrs["Config"]["Cmd"] == ["sh"]
    assert attrs["Config"]["Labels"][oi.OFFLINE_LABEL] == "true"
    assert attrs["Config"]["Labels"][oi.RECIPE_LABEL].startswith("busybox:host:")
    assert attrs["Size"] < 5_000_000
    probe = "id -un; wget --help 2>&1 | head -1; ls -ld /tmp"
    out = run(docker_client, recipe.ref, ["sh", "-c", probe])
    lines = out.splitlines()
    assert lines[0] == "root" and "BusyBox" in lines[1] and lines[2].startswith("drwxrwxrwt")


def test_python_is_built_from_debootstrap_and_behaves_like_the_official_image(
    docker_client: Any, unique: str, made: list[str]
) -> None:
    recipe = dataclasses.replace(
        oi.RECIPES["python:3.11-slim"], ref=f"labup-test/py-{unique}:3.11-slim"
    )
    made.append(recipe.ref)
    oi.cached_rootfs(recipe)  # the slow part, once per machine (setup.sh usually did it)
    start = time.monotonic()
    detail = oi.build_offline(docker_client, recipe)
    took = time.monotonic() - start
    assert "imported from" in detail and took < 60, f"a cached build took {took:.1f}s"
    attrs = docker_client.api.inspect_image(recipe.ref)
    config = attrs["Config"]
    assert config["Cmd"] == ["python3"]
    assert "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" in config["Env"]
    assert "LANG=C.UTF-8" in config["Env"]
    assert config["Labels"][oi.OFFLINE_LABEL] == "true"
    script = (
        "import sys, shutil, subprocess;"
        "print(sys.version_info[:2] == (3, 11), shutil.which('python'), shutil.which('pip'));"
        "r = subprocess.run(['pip', 'install', '-r', '/dev/null'], capture_output=True);"
        "print(r.returncode)"
    )
    out = run(docker_client, recipe.ref, ["python", "-c", script]).split()
    assert out[:3] == ["True", "/usr/local/bin/python", "/usr/bin/pip"], out
    assert out[3] == "0", "pip must install (no PEP 668 refusal), as in the official image"
    assert run(docker_client, recipe.ref, ["sh", "-c", "command -v useradd"]).strip()


def test_prepare_skips_present_images_and_tags_aliases(
    docker_client: Any, unique: str, made: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    base = f"labup-test/bb-{unique}:1"
    alias = f"labup-test/bb-{unique}:latest"
    made.extend([base, alias])
    recipe = dataclasses.replace(oi.RECIPES["busybox:1.36"], ref=base, aliases=(alias,))
    monkeypatch.setitem(oi.RECIPES, base, recipe)
    first = oi.prepare_images(docker_client, [alias], offline=True)
    assert [(r.ref, r.action) for r in first] == [(alias, "built")]
    assert "tagged from" in first[0].detail
    ids = {docker_client.api.inspect_image(name)["Id"] for name in (base, alias)}
    assert len(ids) == 1
    again = oi.prepare_images(docker_client, [base, alias], offline=True)
    assert [(r.action, r.offline, r.detail) for r in again] == [
        ("present", True, "built offline by labup"),
        ("present", True, "built offline by labup"),
    ]


def test_an_image_without_a_recipe_fails_alone_with_a_clear_message(
    docker_client: Any, unique: str, made: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ok_ref = f"labup-test/bb-{unique}:ok"
    made.append(ok_ref)
    monkeypatch.setitem(
        oi.RECIPES, ok_ref, dataclasses.replace(oi.RECIPES["busybox:1.36"], ref=ok_ref)
    )
    results = oi.prepare_images(
        docker_client, [f"labup-test/none-{unique}:1", ok_ref], offline=True
    )
    assert results[0].action == "failed"
    assert "no offline recipe for this image" in results[0].detail
    assert "busybox:1.36" in results[0].detail  # the hint lists the known recipes
    assert results[1].action == "built"


def test_pull_without_a_registry_says_to_build_offline(docker_client: Any, unique: str) -> None:
    results = oi.prepare_images(
        docker_client, [f"localhost:1/labup-test/absent-{unique}:1"], offline=False
    )
    assert results[0].action == "failed"
    assert "pull failed" in results[0].detail and "--offline" in results[0].detail


def test_labup_images_prepare_and_list_on_the_catalog(docker_client: Any) -> None:
    prepared = subprocess.run(
        [LABUP, "images", "prepare", "1", "--offline"], capture_output=True, text=True, timeout=600
    )
    assert prepared.returncode == 0, prepared.stderr
    assert "busybox:1.36" in prepared.stdout and "images for lab1" in prepared.stderr
    again = subprocess.run(
        [LABUP, "images", "prepare", "1", "--offline", "--json"],
        capture_output=True, text=True, timeout=120,
    )
    assert again.returncode == 0
    assert '"action": "present"' in again.stdout
    listed = subprocess.run([LABUP, "images", "list"], capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if line.startswith("busybox:1.36"))
    assert "present" in row and "lab1" in row
