"""`labup test N` for every lab of the catalog, on the real engine, plus the self-test's own
verdicts on labs that are wrong on purpose."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

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


def labup(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LABUP, *args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


@pytest.mark.parametrize("number", NUMBERS, ids=[f"lab{n}" for n in NUMBERS])
def test_labup_test_passes_for_every_lab(catalog_images: None, number: int) -> None:
    proc = labup("test", str(number), "--json")
    assert proc.stdout, proc.stderr
    result = json.loads(proc.stdout)
    assert result["problems"] == [] and result["ok"], json.dumps(result["problems"], indent=2)
    assert proc.returncode == 0
    assert [s["name"] for s in result["steps"]] == [name for name, _ in TEST_STEPS]
    before = result["checks"]["task checks fail"]["results"]
    after = result["checks"]["all checks"]["results"]
    assert before and all(r["status"] != "pass" for r in before)
    assert all(r["status"] in ("pass", "skipped") for r in after)


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
