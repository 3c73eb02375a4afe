"""The Dockerfile parser and each lint rule, on Dockerfiles written as data."""

from __future__ import annotations

import sys
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
        "    && apt-get install -y curl\n"
        "COPY . /app\n"
    )
    assert [(i.line, i.keyword) for i in df.instructions] == [(2, "FROM"), (4, "RUN"), (7, "COPY")]
    assert df.instructions[1].script == "apt-get update     && apt-get install -y curl"
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
    assert df.instructions[1].script == "dir     c:\\"
    assert df.instructions[2].heredocs == ("apt-get install -y x\n",)
    assert df.instructions[3].line == 8


def test_parser_reads_flags_and_json_form() -> None:
    df = parse_dockerfile(
        'FROM --platform=linux/amd64 alpine:3.20\nCOPY --from=build ["a b", "/c"]\n'
    )
    copy = df.instructions[1]
    assert copy.flags == ("--from=build",) and copy.options == {"from": "build"}
    assert copy.words == ("a b", "/c") and copy.json
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


# -- inputs that misled labup's own parser, now read as buildkit reads them ----------------------


def test_a_quoted_double_angle_is_not_a_heredoc(tmp_path: Path) -> None:
    text = 'FROM python:3.11-slim\nRUN echo "a << b" && apt-get install -y curl\nUSER app\n'
    assert lint(tmp_path, text, "user") == ("pass", "Dockerfile: line 3: USER app")
    status, message = lint(tmp_path, text, "apt-lists-cleaned")
    assert status == "fail" and "in the same RUN (line 2)" in message


def test_a_shift_in_shell_arithmetic_is_not_a_heredoc(tmp_path: Path) -> None:
    text = "FROM python:3.11-slim\nRUN echo $((1<<x))\nRUN apt-get install -y curl\nUSER app\n"
    assert lint(tmp_path, text, "user") == ("pass", "Dockerfile: line 4: USER app")
    assert "in the same RUN (line 3)" in lint(tmp_path, text, "apt-lists-cleaned")[1]


def test_an_indented_terminator_does_not_end_a_plain_heredoc(tmp_path: Path) -> None:
    text = (
        "FROM python:3.11-slim\nRUN <<EOF\necho hi\n  EOF\napt-get install -y curl\nEOF\n"
        "USER app\n"
    )
    df = parse_dockerfile(text)
    assert [(i.line, i.keyword) for i in df.instructions] == [(1, "FROM"), (2, "RUN"), (7, "USER")]
    assert df.instructions[1].heredocs == ("echo hi\n  EOF\napt-get install -y curl\n",)
    assert "in the same RUN (line 2)" in lint(tmp_path, text, "apt-lists-cleaned")[1]
    # `<<-` strips leading tabs (not spaces) before comparing, as the shell does
    chomped = parse_dockerfile("FROM a:1\nRUN <<-EOF\n\techo hi\n\tEOF\nUSER app\n")
    assert chomped.instructions[2].line == 5


@pytest.mark.parametrize("rule", ["pinned-base", "user", "apt-lists-cleaned"])
def test_an_unclosed_heredoc_fails_every_rule_with_its_line(tmp_path: Path, rule: str) -> None:
    text = "FROM python:3.11-slim\n# set up\n\nRUN <<EOF\napt-get install -y curl\nUSER app\n"
    assert lint(tmp_path, text, rule) == (
        "fail",
        "Dockerfile: docker build cannot read it: line 4: unterminated heredoc",
    )


def test_a_byte_order_mark_and_tabs_after_keywords_are_read(tmp_path: Path) -> None:
    text = "\ufeffFROM\tpython:3.11-slim\nRUN\tapt-get install -y curl\nUSER\tapp\n"
    assert lint(tmp_path, text, "pinned-base") == (
        "pass",
        "Dockerfile: every base image is pinned: python:3.11-slim",
    )
    assert lint(tmp_path, text, "user") == ("pass", "Dockerfile: line 3: USER app")
    assert "in the same RUN (line 2)" in lint(tmp_path, text, "apt-lists-cleaned")[1]


ONBUILD = """\
FROM python:3.11-slim
ONBUILD COPY . /app
ONBUILD RUN pip install -r /app/requirements.txt
ONBUILD RUN apt-get update && apt-get install -y curl
ONBUILD RUN --mount=type=cache,target=/var/lib/apt/lists apt-get install -y git
ONBUILD RUN <<EOF
apt-get install -y make
EOF
ONBUILD ENV API_TOKEN=abc
USER app
"""


def test_onbuild_instructions_are_linted(tmp_path: Path) -> None:
    df = parse_dockerfile(ONBUILD)
    triggers = df.stages[0].triggers
    assert [(i.line, i.shown) for i in triggers] == [
        (2, "ONBUILD COPY"),
        (3, "ONBUILD RUN"),
        (4, "ONBUILD RUN"),
        (5, "ONBUILD RUN"),
        (6, "ONBUILD RUN"),
        (9, "ONBUILD ENV"),
    ]
    # the binding drops a trigger's flags and heredocs; labup parses the trigger again
    assert triggers[3].mounts == [{"type": "cache", "target": "/var/lib/apt/lists"}]
    assert triggers[4].heredocs == ("apt-get install -y make\n",)
    assert df.stages[0].instructions[-1].keyword == "USER"
    apt = lint(tmp_path, ONBUILD, "apt-lists-cleaned")[1]
    assert "(line 4 (ONBUILD RUN), 6 (ONBUILD RUN))" in apt
    assert "line 9: ONBUILD ENV API_TOKEN" in lint(tmp_path, ONBUILD, "no-secrets-in-env")[1]
    deps = lint(tmp_path, ONBUILD, "deps-before-source")
    assert deps[0] == "fail"
    assert "line 2: ONBUILD COPY . /app comes before the dependency install on line 3" in deps[1]


@pytest.mark.parametrize(
    ("run", "status"),
    [
        ("apt-get update && apt-get install -y curl && apt-get dist-clean", "pass"),
        ("apt update && apt install -y curl && rm -rf /var/lib/apt/lists", "pass"),
        (
            "--mount=type=cache,target=/var/lib/apt/lists,sharing=locked apt-get update "
            "&& apt-get install -y curl",
            "pass",
        ),
        ("--mount=type=cache,dst=/var/lib/apt/ apt-get update && apt-get install -y curl", "pass"),
        ("--mount=type=tmpfs,target=/var/lib/apt/lists apt-get install -y curl", "pass"),
        ("--mount=type=bind,target=/var/lib/apt/lists apt-get install -y curl", "fail"),
        ("--mount=type=cache,target=/var/cache/apt apt-get install -y curl", "fail"),
        ("apt-get install -y curl && apt-get clean", "fail"),  # clean keeps the lists
    ],
)
def test_what_counts_as_cleaning_the_apt_lists(tmp_path: Path, run: str, status: str) -> None:
    text = f"FROM debian:12\nRUN {run}\nUSER app\n"
    assert lint(tmp_path, text, "apt-lists-cleaned")[0] == status


def test_an_unknown_instruction_is_what_docker_build_refuses(tmp_path: Path) -> None:
    text = "FROM python:3.11-slim\nRUN cat<<EOF > /etc/motd\nhello\nEOF\nUSER app\n"
    status, message = lint(tmp_path, text, "user")
    assert status == "fail"
    assert message.startswith(
        "Dockerfile: docker build cannot read it: line 3: unknown instruction hello"
    )
    assert "a heredoc needs `cmd <<EOF`" in message
    assert lint(tmp_path, "FROM a:1\nONBUILD FROM b:1\n", "user")[1].endswith(
        "line 2: ONBUILD FROM is not allowed"
    )


def test_empty_files_and_nul_bytes_are_not_dockerfiles(tmp_path: Path) -> None:
    assert lint(tmp_path, "# only a comment\n", "user")[1] == (
        "Dockerfile: docker build cannot read it: file with no instructions"
    )
    assert lint(tmp_path, "FROM a:1\nRUN x\x00\n", "user")[1] == (
        "Dockerfile: docker build cannot read it: line 2: a NUL byte: this is not a text file"
    )


def test_secrets_with_empty_values_and_variable_from_lines(tmp_path: Path) -> None:
    text = "ARG BASE=python\nFROM ${BASE}\nENV TOKEN=\"\" PASSWORD_FILE=/run/secrets/pw\n"
    text += "ARG SECRET=''\n"
    assert lint(tmp_path, text, "no-secrets-in-env")[0] == "pass"
    # the variable FROM expands to an untagged image
    assert "line 2: FROM ${BASE}" in lint(tmp_path, text, "pinned-base")[1]


# -- where buildkit's parser has no wheel --------------------------------------------------------


def test_without_the_parser_the_rules_are_skipped_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "dockerfile", None)  # what `import` does when it is absent
    status, message = lint(tmp_path, GOOD, "pinned-base", ignore=".git\n")
    assert status == "skipped"
    assert message.startswith(
        "Dockerfile: not checked: buildkit's Dockerfile parser (the Python package `dockerfile`)"
        " is not installed here"
    )
    assert "`pip install dockerfile` builds it from source with Go" in message
    assert lint(tmp_path, GOOD, "dockerignore", ignore=".git\n")[0] == "pass"  # needs no parser


def test_an_image_check_without_the_parser_skips_only_when_the_rest_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.unit.fake_engine import FakeEngine

    (tmp_path / "Dockerfile").write_text(GOOD)
    engine = FakeEngine()
    engine.images["app:1"] = {"Size": 10, "Config": {"User": "1000"}, "RootFS": {"Layers": []}}
    spec = {"image": "app:1", "base_pinned": True, "dockerfile": "Dockerfile"}
    lab = Lab(
        api_version="labup/v1",
        id=None,
        name="df",
        title="df",
        description="",
        path=tmp_path / "lab.yaml",
        folder=tmp_path,
        checks=(
            Check("ok", "image", {**spec, "non_root": True}),
            Check("big", "image", {**spec, "max_size": "1B"}),
        ),
    )
    monkeypatch.setitem(sys.modules, "dockerfile", None)
    results = run_checks(engine, lab).results
    got = {r.id: (r.status, r.message) for r in results}
    assert got["ok"][0] == "skipped" and "base_pinned not checked" in got["ok"][1]
    assert got["big"][0] == "fail"
