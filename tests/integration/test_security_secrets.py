"""Secret values (params and env marked secret) never appear in what labup prints or writes,
even when a check's command echoes them: table, --json, JUnit, HTML, instructions, the errors
of a failed up. The real engine runs the lab; every byte of output is searched."""

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
PASSWORD = "Sup3r-S3cret!pw"
TOKEN = "tok-XYZ987abc"
IDLE = "trap 'exit 0' TERM INT; sleep 3600 & wait"

SPEC = """apiVersion: labup/v1
kind: Lab
name: {name}
title: secrets
params:
  db_password: {{type: string, secret: true, default: "{password}"}}
instructions: README.md
containers:
  db:
    image: labup-test/busybox:latest
    command: [sh, -c, "{idle}"]
    env:
      DB_PASSWORD: "{{{{ db_password }}}}"
      API_TOKEN: {{value: "{token}", secret: true}}
      PLAIN: visible
checks:
  - id: echo-env
    description: "the password {{{{ db_password }}}} is set"
    hint: "log in with {{{{ db_password }}}}"
    exec:
      container: db
      command: [sh, -c, 'echo "pw=$DB_PASSWORD token=$API_TOKEN plain=$PLAIN"']
      stdout: nothing like that
  - id: regex-env
    hint: ["first look at $API_TOKEN", "the password is {{{{ db_password }}}}"]
    exec: {{container: db, command: [sh, -c, 'echo $API_TOKEN'], stdout_regex: "^zzz$"}}
  - id: cut-env
    description: the secret sits where a long message is cut short
    exec:
      container: db
      command: [sh, -c, 'printf "%095d" 0; echo "$DB_PASSWORD"']
      stdout: short
  - id: exit-env
    exec: {{container: db, command: [sh, -c, 'echo "$DB_PASSWORD" >&2; exit 3']}}
"""


def _labup(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LABUP_NO_CACHE": "1"}
    return subprocess.run([LABUP, *args], capture_output=True, text=True, timeout=180, cwd=cwd,
                          env=env)


def _assert_hidden(text: str, where: str) -> None:
    for secret in (PASSWORD, TOKEN, PASSWORD[:-1], TOKEN[:-1], "Sup3r", "tok-XYZ"):
        assert secret not in text, f"{secret!r} leaked in {where}:\n{text}"


def test_secrets_never_reach_output_or_reports(
    docker_client: Any, test_image: str, tmp_path: Path, unique: str
) -> None:
    name = f"sec-secret-{unique}"
    lab = tmp_path / "lab"
    lab.mkdir()
    (lab / "lab.yaml").write_text(SPEC.format(name=name, password=PASSWORD, token=TOKEN,
                                              idle=IDLE))
    (lab / "README.md").write_text("Connect with password {{ db_password }}.\n")
    try:
        outputs: dict[str, str] = {}
        up = _labup("up", str(lab), cwd=tmp_path)
        assert up.returncode == 0, up.stderr
        outputs["up"] = up.stdout + up.stderr
        junit, html = tmp_path / "junit.xml", tmp_path / "report.html"
        table = _labup("check", str(lab), cwd=tmp_path)
        assert table.returncode == 1
        outputs["check"] = table.stdout + table.stderr
        doc = _labup("check", str(lab), "--json", "--junit", str(junit), "--report", str(html),
                     cwd=tmp_path)
        outputs["check --json"] = doc.stdout + doc.stderr
        outputs["junit"] = junit.read_text()
        outputs["html"] = html.read_text()
        outputs["show"] = _labup("show", str(lab), cwd=tmp_path).stdout
        outputs["plan"] = _labup("plan", str(lab), "--set", "db_password=changed-pw-1",
                                 cwd=tmp_path).stdout
        outputs["status"] = _labup("status", name, "--json", cwd=tmp_path).stdout
        for level in (1, 2, 3):  # every hint level, and the hint verb itself
            shown = _labup("hint", str(lab), "regex-env", cwd=tmp_path)
            outputs[f"hint {level}"] = shown.stdout + shown.stderr
        outputs["check after hints"] = _labup("check", str(lab), "--json", cwd=tmp_path).stdout
        for where, text in outputs.items():
            _assert_hidden(text, where)
        assert "***" in outputs["check --json"] and "***" in outputs["junit"]
        assert "***" in outputs["html"] and "Connect with password ***." in outputs["show"]
        assert "plain=visible" in outputs["check --json"]  # only secrets are hidden
        assert "changed-pw-1" not in outputs["plan"]
        assert "the password is ***" in outputs["hint 2"], outputs["hint 2"]
    finally:
        purge(docker_client, name)


def test_a_failed_up_does_not_print_a_secret_from_the_logs(
    docker_client: Any, test_image: str, tmp_path: Path, unique: str
) -> None:
    name = f"sec-secret-up-{unique}"
    (tmp_path / "lab.yaml").write_text(
        f"apiVersion: labup/v1\nkind: Lab\nname: {name}\ntitle: t\n"
        f"params:\n  pw: {{type: string, secret: true, default: '{PASSWORD}'}}\n"
        "containers:\n  db:\n    image: labup-test/busybox:latest\n"
        "    env: {DB_PASSWORD: '{{ pw }}'}\n"
        "    command: [sh, -c, 'echo \"starting with $DB_PASSWORD\"; "
        "trap \"exit 0\" TERM INT; sleep 3600 & wait']\n"
        "    healthcheck: {test: [CMD-SHELL, 'echo \"bad $DB_PASSWORD\"; exit 1'], "
        "interval: 1s, retries: 1}\n"
    )
    try:
        up = _labup("up", str(tmp_path), "--json", cwd=tmp_path)
        assert up.returncode == 1
        assert "is unhealthy" in up.stdout + up.stderr
        assert "starting with ***" in up.stdout + up.stderr  # the log line, redacted
        _assert_hidden(up.stdout + up.stderr, "a failed up")
    finally:
        purge(docker_client, name)
