"""`labup test N` for every lab of the catalog, on the real engine and on an SSH test host (the
reference solution then runs on that host), with the same verdicts and causes both ways, plus
the self-test's own verdicts on labs that are wrong on purpose."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from classroom import Classroom

from labspec.catalog import SPEC_FILENAME, catalog_folders
from provisioner.catalog.selftest import TEST_STEPS

pytestmark = [pytest.mark.docker, pytest.mark.slow]

LABUP = str(Path(sys.executable).parent / "labup")
NUMBERS = [int(f.name.split("-", 1)[0]) for f in catalog_folders()]


@pytest.fixture(scope="session")
def catalog_images(docker_client: Any) -> None:
    """The base images of every lab, built offline when missing (CI's setup.sh did it)."""
    from labspec import load_lab
    from provisioner.offline.base_images import prepare_images
    from provisioner.offline.recipes import refs_for_labs

    labs = [load_lab(f / SPEC_FILENAME) for f in catalog_folders()]
    results = prepare_images(docker_client, refs_for_labs(labs), offline=True)
    failed = [r.detail for r in results if r.action == "failed"]
    assert not failed, failed


def labup(
    *args: str, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LABUP, *args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="session")
def ssh_host(
    classroom: Classroom, catalog_images: None, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, dict[str, str]]:
    """h1 of the classroom with every image the catalog needs (loaded from a bundle, the
    offline route a classroom takes); its --host URL and the SSH environment."""
    host = classroom.host("h1")
    env = {"LABUP_SSH_KEY": str(classroom.key), "LABUP_KNOWN_HOSTS": str(classroom.known_hosts)}
    url = f"ssh://root@127.0.0.1:{host.port}"
    client = classroom.client("h1")
    wanted = ("busybox:1.36", "python:3.11-slim", "python:latest")
    if not all(client.images.list(name=ref) for ref in wanted):
        bundle = tmp_path_factory.mktemp("bundle") / "course.tar"
        made = labup("bundle", *map(str, NUMBERS), "-o", str(bundle), timeout=600)
        assert made.returncode == 0, made.stderr
        loaded = labup("bundle", "load", str(bundle), "--host", url, env=env, timeout=600)
        assert loaded.returncode == 0, loaded.stderr
    return url, env


def self_test(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    proc = labup("test", *args, "--json", env=env)
    assert proc.stdout, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout)
    assert result["problems"] == [] and result["ok"], json.dumps(result["problems"], indent=2)
    assert proc.returncode == 0
    assert [s["name"] for s in result["steps"]] == [name for name, _ in TEST_STEPS]
    before = result["checks"]["task checks fail"]["results"]
    after = result["checks"]["all checks"]["results"]
    assert before and all(r["status"] != "pass" for r in before)
    assert all(r["status"] in ("pass", "skipped") for r in after)
    return result


_VARYING = [
    (re.compile(r" \(after \d+ attempts over [\d.]+s\)"), ""),  # retries depend on timing
    (re.compile(r"\b(?!127\.0\.0\.1\b)\d+\.\d+\.\d+\.\d+\b"), "IP"),  # engines' subnets
    (re.compile(r"sha256:[0-9a-f]{12,64}"), "ID"),
    (re.compile(r"\b[0-9a-f]{12}\b"), "ID"),  # container ids (a service names its container)
    (re.compile(r"\b[\d.]+ ?(?:ms|s)\b"), "TIME"),
]


def verdicts(result: dict[str, Any], step: str) -> dict[str, tuple[str, str]]:
    """check id -> (status, message) of one step, with what varies between engines blanked."""
    out = {}
    for r in result["checks"][step]["results"]:
        message = r["message"]
        for pattern, replacement in _VARYING:
            message = pattern.sub(replacement, message)
        out[r["id"]] = (r["status"], message)
    return out


@pytest.mark.parametrize("number", NUMBERS, ids=[f"lab{n}" for n in NUMBERS])
def test_labup_test_passes_for_every_lab_here_and_over_ssh_with_the_same_verdicts(
    ssh_host: tuple[str, dict[str, str]], number: int
) -> None:
    here = self_test(str(number))
    url, env = ssh_host
    there = self_test(str(number), "--host", url, env=env)
    for step in ("env checks", "task checks fail", "all checks"):
        assert verdicts(there, step) == verdicts(here, step), step


def test_params_and_instance_reach_the_solution(catalog_images: None, unique: str) -> None:
    """Lab 1 on another instance and port: the solution names and publishes accordingly."""
    proc = labup("test", "1", "--instance", f"t{unique}", "--set", "web_port=18011")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"lab1-t{unique}-web" in proc.stderr  # the solution's container, by instance
    assert "http://127.0.0.1:18011/" in proc.stderr
    assert "self-test PASSED" in proc.stdout


def _write_lab(folder: Path, key: str, task_check: str, solution: str) -> Path:
    folder.mkdir()
    (folder / "solution").mkdir()
    (folder / "solution" / "solve.sh").write_text(solution)
    (folder / "README.md").write_text("# a test lab\n")
    spec = folder / SPEC_FILENAME
    spec.write_text(
        textwrap.dedent(
            f"""\
            apiVersion: labup/v1
            kind: Lab
            name: {key}
            title: A lab that is wrong on purpose
            containers:
              box:
                image: labup-test/busybox:latest
                command: [sh, -c, "trap 'exit 0' TERM; sleep 3600 & wait"]
            checks:
              - id: box-runs
                stage: env
                container: {{container: box}}
              - id: the-task
            """
        )
        + textwrap.indent(task_check, "    ")
        + "instructions: README.md\nsolution: solution/solve.sh\n"
    )
    return spec


def test_a_task_check_that_passes_before_the_solution_is_reported(
    test_image: str, tmp_path: Path, unique: str
) -> None:
    key = f"t{unique}"
    spec = _write_lab(
        tmp_path / key,
        key,
        "exec: {container: box, command: [\"true\"], exit_code: 0}\n",
        "#!/bin/sh\ntrue\n",
    )
    proc = labup("test", str(spec))
    assert proc.returncode == 1
    assert "task check the-task passes before the solution ran, so it tests nothing" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert "leftovers         ok" in proc.stdout  # down ran all the same


def test_a_failing_solution_is_reported_with_its_output_and_cleaned_up(
    test_image: str, tmp_path: Path, unique: str, docker_client: Any
) -> None:
    key = f"t{unique}"
    spec = _write_lab(
        tmp_path / key,
        key,
        "file: {container: box, path: /tmp/done}\n",
        "#!/bin/sh\necho 'solving, badly'\nexit 3\n",
    )
    proc = labup("test", str(spec), "--json")
    result = json.loads(proc.stdout)
    assert proc.returncode == 1 and not result["ok"]
    assert any("exited 3" in p and "solving, badly" in p for p in result["problems"])
    names = [s["name"] for s in result["steps"]]
    assert names == ["clean", "up", "env checks", "task checks fail", "solution", "down",
                     "leftovers"]
    assert docker_client.containers.list(all=True, filters={"label": f"labup.lab={key}"}) == []


def test_the_lab_folder_is_left_untouched(catalog_images: None) -> None:
    """Solutions write files (lab 3 writes app/Dockerfile): only in the test's copy."""
    folder = next(f for f in catalog_folders() if f.name.startswith("03-"))
    before = sorted(p.relative_to(folder) for p in folder.rglob("*"))
    proc = labup("test", "3")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.relative_to(folder) for p in folder.rglob("*")) == before
    assert not (folder / "app" / "Dockerfile").exists()
