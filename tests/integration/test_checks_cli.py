"""`labup check` end to end: a YAML lab brought up with `labup up`, graded before and after
the learner's work, with --json, --junit, --report, --stage and --only; exit codes 0/1/2."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.docker

LABUP = str(Path(sys.executable).with_name("labup"))
SERVE = (
    "trap 'exit 0' TERM INT; mkdir -p /w; echo hello > /w/index.html; "
    "httpd -f -p {{ port }} -h /w & wait"
)

SPEC = """\
apiVersion: labup/v1
kind: Lab
name: {name}
title: checks CLI test
params:
  port: {{type: integer, default: 8081}}
networks:
  front: {{}}
  back: {{}}
containers:
  web:
    image: {image}
    command: [sh, -c, "{serve}"]
    ports: ["{{{{ port }}}}"]
    networks: [front]
  client:
    image: {image}
    command: [sh, -c, "trap 'exit 0' TERM INT; sleep 3600 & wait"]
    networks: [front]
  db:
    image: {image}
    command: [sh, -c, "trap 'exit 0' TERM INT; httpd -f -p 80 -h / & wait"]
    networks: [back]
checks:
  - id: web-up
    stage: env
    container: {{container: web}}
  - id: web-http
    stage: env
    wait: 5s
    http: {{to: web, port: "{{{{ port }}}}", path: /index.html, body_regex: hello}}
  - id: db-isolated
    stage: env
    description: the front network cannot reach the database
    reachable: {{from: client, to: db, port: 80, reachable: false}}
  - id: done-file
    description: the learner created /w/done.txt
    hint: "docker exec into web and create /w/done.txt <b>now</b>"
    points: 3
    file: {{container: web, path: /w/done.txt, content_regex: "^done"}}
  - id: served
    needs: [done-file]
    http: {{from: client, to: web, port: "{{{{ port }}}}", path: /done.txt, body: done}}
"""


def labup(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([LABUP, *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def running_lab(
    test_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, str]]:
    """One lab for the module; the test that does the learner's work runs last."""
    name = f"ckcli-{uuid.uuid4().hex[:8]}"
    spec = tmp_path_factory.mktemp("cli") / "lab.yaml"
    spec.write_text(SPEC.format(name=name, image=test_image, serve=SERVE))
    try:
        up = labup("up", str(spec), "--quiet")
        assert up.returncode == 0, up.stderr
        yield spec, name
    finally:
        down = labup("down", str(spec))
        assert down.returncode == 0, down.stderr


def test_check_of_a_lab_that_is_not_up_says_so_without_waiting(
    test_image: str, tmp_path: Path
) -> None:
    name = f"ckcli-{uuid.uuid4().hex[:8]}"
    spec = tmp_path / "lab.yaml"
    spec.write_text(SPEC.format(name=name, image=test_image, serve=SERVE))
    result = labup("check", str(spec), "--stage", "env", "--json")
    assert result.returncode == 1
    assert f"{name} is not up on local (none of its containers exists)" in result.stderr
    doc = json.loads(result.stdout)
    # the negative check cannot prove isolation of a database that is not there: blocked
    assert {r["id"]: r["status"] for r in doc["results"]} == {
        "web-up": "fail", "web-http": "fail", "db-isolated": "blocked"}
    assert [r["attempts"] for r in doc["results"]] == [1, 1, 1]  # `wait: 5s` not waited out


def test_check_stage_and_only_select_checks(running_lab: tuple[Path, str]) -> None:
    spec, _ = running_lab
    env = labup("check", str(spec), "--stage", "env", "--json")
    assert env.returncode == 0, env.stdout
    assert [r["id"] for r in json.loads(env.stdout)["results"]] == [
        "web-up", "web-http", "db-isolated"
    ]
    only = labup("check", str(spec), "--only", "served", "--json")
    assert only.returncode == 1
    results = {r["id"]: r["status"] for r in json.loads(only.stdout)["results"]}
    assert results == {"done-file": "fail", "served": "blocked"}  # its need came along


def test_check_bad_input_exits_2(running_lab: tuple[Path, str], tmp_path: Path) -> None:
    spec, _ = running_lab
    unknown = labup("check", str(spec), "--only", "nope")
    assert unknown.returncode == 2
    assert "no check 'nope'" in unknown.stderr and "Traceback" not in unknown.stderr
    stage = labup("check", str(spec), "--stage", "later")
    assert stage.returncode == 2 and "expected env, task or all" in stage.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text(spec.read_text().replace("container: {container: web}", "contaner: {}"))
    invalid = labup("check", str(bad))
    assert invalid.returncode == 2
    assert "unknown key 'contaner'" in invalid.stderr
    assert "did you mean 'container'" in invalid.stderr


def test_check_grades_before_and_after_the_learners_work(
    running_lab: tuple[Path, str], docker_client: Any, tmp_path: Path
) -> None:
    spec, name = running_lab
    junit, html = tmp_path / "junit.xml", tmp_path / "report.html"

    before = labup("check", str(spec), "--junit", str(junit), "--report", str(html))
    assert before.returncode == 1, before.stderr
    assert "FAIL" in before.stdout and "BLOCKED" in before.stdout
    assert "hint: docker exec into web" in before.stdout
    assert "score 3/7" in before.stdout

    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == "5" and suite.get("failures") == "1"
    failure = suite.find("testcase[@name='done-file']/failure")
    assert failure is not None and "does not exist" in (failure.get("message") or "")
    assert suite.find("testcase[@name='served']/skipped") is not None

    page = html.read_text()
    assert "&lt;b&gt;now&lt;/b&gt;" in page and "<b>now</b>" not in page  # autoescaped
    assert "<script" not in page and "http-equiv" not in page and 'src="' not in page

    docker_client.containers.get(f"{name}-web").exec_run(["sh", "-c", "echo done > /w/done.txt"])
    after = labup("check", str(spec), "--json")
    assert after.returncode == 0, after.stdout + after.stderr
    doc = json.loads(after.stdout)
    assert doc["version"] == 1 and doc["ok"] is True
    assert (doc["score"], doc["total"]) == (7, 7)
    assert [r["status"] for r in doc["results"]] == ["pass"] * 5
