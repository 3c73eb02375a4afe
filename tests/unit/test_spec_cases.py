"""Spec cases as data: every file in tests/data/specs/valid loads; every file in invalid/
fails with the problem its header names.

Header lines at the top of an invalid spec:

    # expect: LINE:COL $.json.path substring of the message   (one or more)
    # expect-error: ErrorClass substring                        (an unlocated error)
    # set: name=value                                           (a --set value)
    # allow-unsafe                                              (pass allow_unsafe=True)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import labspec
from labspec.errors import LabupError, SpecError

SPECS = Path(__file__).resolve().parent.parent / "data" / "specs"
VALID = sorted((SPECS / "valid").glob("*.yaml"))
INVALID = sorted((SPECS / "invalid").glob("*.yaml"))
_EXPECT = re.compile(r"^# expect: (\d+):(\d+) (\S+) (.+)$")


@dataclass
class Case:
    expects: list[tuple[int, int, str, str]] = field(default_factory=list)
    error: tuple[str, str] | None = None
    sets: dict[str, str] = field(default_factory=dict)
    allow_unsafe: bool = False


def read_case(path: Path) -> Case:
    case = Case()
    for raw in path.read_bytes().split(b"\n"):
        line = raw.decode("latin-1").rstrip()
        if not line.startswith("# "):
            break
        if match := _EXPECT.match(line):
            case.expects.append((int(match[1]), int(match[2]), match[3], match[4]))
        elif line.startswith("# expect-error: "):
            name, _, text = line.removeprefix("# expect-error: ").partition(" ")
            case.error = (name, text)
        elif line.startswith("# set: "):
            name, _, value = line.removeprefix("# set: ").partition("=")
            case.sets[name] = value
        elif line == "# allow-unsafe":
            case.allow_unsafe = True
    return case


def test_the_case_folders_are_not_empty() -> None:
    assert len(VALID) >= 4
    assert len(INVALID) >= 40


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_valid_spec_loads(path: Path) -> None:
    lab = labspec.load_lab(path)
    assert lab.containers, "a valid spec has containers"
    assert lab.path == path.resolve()
    assert labspec.validate_path(path) == []


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_invalid_spec_reports_the_expected_problem(path: Path) -> None:
    case = read_case(path)
    assert case.expects or case.error, f"{path.name} has no `# expect:` header"
    with pytest.raises(LabupError) as info:
        labspec.load_lab(path, params=case.sets, allow_unsafe=case.allow_unsafe)
    error = info.value
    if case.error is not None:
        name, text = case.error
        assert type(error).__name__ == name, str(error)
        assert text in str(error)
        return
    assert isinstance(error, SpecError), f"{type(error).__name__}: {error}"
    shown = "\n".join(str(p) for p in error.problems)
    for line, column, json_path, text in case.expects:
        matches = [
            p
            for p in error.problems
            if (p.line, p.column, p.path) == (line, column, json_path) and text in p.message
        ]
        assert matches, f"expected {line}:{column} {json_path} {text!r}; got:\n{shown}"
    for problem in error.problems:
        assert problem.file == str(path)
        assert str(problem).startswith(f"{path}:{problem.line}:{problem.column}: $")


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_validate_path_returns_the_problems_instead_of_raising(path: Path) -> None:
    case = read_case(path)
    problems = labspec.validate_path(path, params=case.sets, allow_unsafe=case.allow_unsafe)
    assert problems, f"{path.name} should not be valid"
    if case.error is not None:
        assert len(problems) == 1
        assert case.error[1] in problems[0].message
        assert problems[0].file == str(path)
    else:
        line, column, json_path, text = case.expects[0]
        assert any(
            (p.line, p.column, p.path) == (line, column, json_path) and text in p.message
            for p in problems
        )


def test_a_missing_file_is_one_located_problem(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(SpecError) as info:
        labspec.load_lab(missing)
    assert str(info.value).startswith(f"{missing}: $: no such file")


def test_a_folder_instead_of_a_file_is_a_problem(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        labspec.load_lab(tmp_path)
    assert "is a folder, not a YAML file" in str(info.value)


def test_unsafe_specs_load_with_allow_unsafe() -> None:
    for name in ("privileged.yaml", "host_network.yaml", "bind_absolute.yaml", "bind_escape.yaml"):
        lab = labspec.load_lab(SPECS / "invalid" / name, allow_unsafe=True)
        assert lab.containers[0].name == "web"


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    spec = tmp_path / "lab.yaml"
    spec.write_text(
        "apiVersion: labup/v1\n"
        "kind: Lab\n"
        "name: many\n"
        "title: Many problems\n"
        "containers:\n"
        "  web:\n"
        "    image: busybox\n"
        "    read_only: maybe\n"
        "    portz: [80]\n"
        "  db:\n"
        "    command: [sh]\n"
    )
    with pytest.raises(SpecError) as info:
        labspec.load_lab(spec)
    lines = [(p.line, p.path) for p in info.value.problems]
    assert lines == [
        (8, "$.containers.web.read_only"),
        (9, "$.containers.web.portz"),
        (10, "$.containers.db"),
    ]
    assert str(info.value).endswith("3 problems found")
