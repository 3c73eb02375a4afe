"""The Dockerfile parser and each lint rule, on Dockerfiles written as data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from labspec.model import BuildSpec, Check, Image, Lab
from provisioner.checks import run_checks
from provisioner.checks.dockerfile_parser import (
    parse_dockerfile,
    reference_is_pinned,
    unpinned_bases,
)


class NoEngine:
    """Dockerfile checks read files only; any engine call is a bug."""

    host_label = "local"

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"dockerfile checks must not call engine.{name}")


def lint(folder: Path, text: str, rule: str, *, ignore: str | None = None) -> tuple[str, str]:
    (folder / "Dockerfile").write_text(text)
    if ignore is not None:
        (folder / ".dockerignore").write_text(ignore)
    lab = Lab(
        api_version="labup/v1",
        id=None,
        name="df",
        title="df",
        description="",
        path=folder / "lab.yaml",
        folder=folder,
        checks=(Check("rule", "dockerfile", {"rule": rule}),),
    )
    result = run_checks(NoEngine(), lab).results[0]  # type: ignore[arg-type]
    return result.status, result.message


def test_parser_joins_continuations_drops_inner_comments_and_keeps_line_numbers() -> None:
    df = parse_dockerfile(
        "# syntax=docker/dockerfile:1\n"
        "FROM python:3.11-slim AS base\n"
        "\n"
        "RUN apt-get update \\\n"
        "    # inner comment\n"
        "\n"
        "    && apt-get install -y curl\n"
        "COPY . /app\n"
    )
    assert [(i.line, i.keyword) for i in df.instructions] == [(2, "FROM"), (4, "RUN"), (8, "COPY")]
    assert df.instructions[1].args == "apt-get update && apt-get install -y curl"
    assert df.stages[0].name == "base" and df.stages[0].base == "python:3.11-slim"


def test_parser_honours_the_escape_directive_and_heredocs() -> None:
    df = parse_dockerfile(
        "# escape=`\n"
        "FROM mcr.microsoft.com/windows/servercore:ltsc2022\n"
        "RUN dir `\n"
        "    c:\\\n"
        "RUN <<EOF\n"
        "apt-get install -y x\n"
        "EOF\n"
        "USER app\n"
    )
    assert [i.keyword for i in df.instructions] == ["FROM", "RUN", "RUN", "USER"]
    assert df.instructions[1].args == "dir c:\\"
    assert "apt-get install -y x" in df.instructions[2].args
    assert df.instructions[3].line == 8


def test_parser_reads_flags_and_json_form() -> None:
    df = parse_dockerfile(
        'FROM --platform=linux/amd64 alpine:3.20\nCOPY --from=build ["a b", "/c"]\n'
    )
    copy = df.instructions[1]
    assert copy.flags == {"from": "build"}
    assert copy.words == ["a b", "/c"]
    assert df.stages[0].base == "alpine:3.20"


@pytest.mark.parametrize(
    ("ref", "pinned"),
    [
        ("python:3.11-slim", True),
        ("python", False),
        ("python:latest", False),
        ("localhost:5000/app", False),
        ("localhost:5000/app:1.2", True),
        ("alpine@sha256:" + "0" * 64, True),
    ],
)
def test_reference_is_pinned(ref: str, pinned: bool) -> None:
    assert reference_is_pinned(ref) is pinned


def test_unpinned_bases_expands_args_and_skips_stages_and_scratch() -> None:
    df = parse_dockerfile(
        "ARG PY=3.11\nFROM python:${PY}-slim AS build\nFROM build\nFROM scratch\nFROM node\n"
    )
    assert unpinned_bases(df) == [(5, "node")]


GOOD = """\
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends curl \\
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements.txt pyproject.toml ./
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
ENV PORT=8000 DB_PASSWORD_FILE=/run/secrets/db
ARG TOKEN
USER 10001
"""

BAD = """\
FROM python
WORKDIR /app
COPY . .
RUN pip install -r requirements.txt
RUN apt-get update
RUN apt-get install -y curl
ENV DB_PASSWORD="hunter2 2" API_KEY=abc
ARG GITHUB_TOKEN=ghp_123
ENV SECRET_KEY s3cr3t
"""


@pytest.mark.parametrize(
    ("rule", "good", "bad"),
    [
        (
            "pinned-base",
            "every base image is pinned: python:3.11-slim",
            "base image not pinned to a tag (line 1: FROM python)",
        ),
        (
            "user",
            "line 10: USER 10001",
            "no USER in the final stage (FROM line 1): it runs as root",
        ),
        (
            "no-secrets-in-env",
            "no secret-looking ENV or ARG values",
            "line 7: ENV DB_PASSWORD, line 7: ENV API_KEY, line 8: ARG GITHUB_TOKEN, "
            "line 9: ENV SECRET_KEY",
        ),
        (
            "apt-lists-cleaned",
            "apt lists cleaned in the same RUN (1 install(s))",
            "apt install without `rm -rf /var/lib/apt/lists/*` in the same RUN (line 6)",
        ),
        (
            "deps-before-source",
            "dependency files (requirements.txt, pyproject.toml) before the install on line 6, "
            "source after (line 7)",
            "line 3: COPY . . comes before the dependency install on line 4",
        ),
    ],
)
def test_each_rule_passes_the_good_and_fails_the_bad(
    tmp_path: Path, rule: str, good: str, bad: str
) -> None:
    assert lint(tmp_path, GOOD, rule) == ("pass", f"Dockerfile: {good}")
    status, message = lint(tmp_path, BAD, rule)
    assert status == "fail"
    assert bad in message


def test_secret_values_never_appear_in_messages(tmp_path: Path) -> None:
    _, message = lint(tmp_path, BAD, "no-secrets-in-env")
    for value in ("hunter2", "abc", "ghp_123", "s3cr3t"):
        assert value not in message


def test_dockerignore_rule(tmp_path: Path) -> None:
    assert lint(tmp_path, GOOD, "dockerignore") == (
        "fail",
        "Dockerfile: no .dockerignore in the build context the lab folder",
    )
    assert lint(tmp_path, GOOD, "dockerignore", ignore="# only a comment\n")[1].endswith(
        ".dockerignore in the lab folder is empty"
    )
    assert lint(tmp_path, GOOD, "dockerignore", ignore=".git\n.venv\n") == (
        "pass",
        "Dockerfile: .dockerignore with 2 pattern(s)",
    )


def test_missing_dockerfile_and_paths_outside_the_lab_fail_clearly(tmp_path: Path) -> None:
    lab = Lab(
        api_version="labup/v1",
        id=None,
        name="df",
        title="df",
        description="",
        path=tmp_path / "lab.yaml",
        folder=tmp_path,
        images=(Image("app", "app:1", build=BuildSpec(context=tmp_path / "app")),),
        checks=(
            Check("missing", "dockerfile", {"rule": "user", "path": "nope/Dockerfile"}),
            Check("outside", "dockerfile", {"rule": "user", "path": "../../etc/Dockerfile"}),
            Check("by-image", "dockerfile", {"rule": "user", "image": "app"}),
        ),
    )
    got = {r.id: r.message for r in run_checks(NoEngine(), lab).results}  # type: ignore[arg-type]
    assert got["missing"] == "no Dockerfile at nope/Dockerfile"  # named as the lab names it
    assert got["outside"] == "../../etc/Dockerfile is outside the lab folder"
    assert got["by-image"] == "no Dockerfile at app/Dockerfile"
