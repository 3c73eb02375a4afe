"""`labup validate` and `labup schema`, run through the real entry point."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from provisioner.cli.main import main

DATA = Path(__file__).resolve().parent.parent / "data" / "specs"


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(args)
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


def test_validate_a_valid_file_names_it_relative_to_the_current_folder(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(DATA)
    rc, out, _ = run(["validate", str(DATA / "valid" / "full.yaml")], capsys)
    assert (rc, out) == (0, "valid/full.yaml: valid (4 containers, 4 checks)\n")


def test_validate_a_lab_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copy(DATA / "valid" / "minimal.yaml", tmp_path / "lab.yaml")
    rc, out, _ = run(["validate", str(tmp_path)], capsys)
    assert (rc, out) == (0, f"{tmp_path / 'lab.yaml'}: valid (1 container, 0 checks)\n")


def test_validate_prints_each_problem_and_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(DATA / "invalid")
    rc, out, err = run(["validate", "unknown_key.yaml"], capsys)
    assert rc == 2
    assert "unknown_key.yaml:7:3: $.containers.web: missing required key 'image'\n" in out
    assert "unknown_key.yaml:8:5: $.containers.web.imagee: unknown key 'imagee'\n" in out
    assert "  hint: did you mean 'image'?" in out
    assert err == "2 problems found\n"


def test_validate_json_lists_problems(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(DATA)
    rc, out, _ = run(["validate", "--json", "invalid/port_clash.yaml"], capsys)
    assert rc == 2
    [problem] = json.loads(out)
    assert problem["file"] == "invalid/port_clash.yaml"
    assert (problem["line"], problem["column"], problem["path"]) == (
        12,
        13,
        "$.containers.two.ports[0]",
    )
    assert problem["message"].startswith("host port 8080/tcp on 127.0.0.1 is already published")
    assert problem["hint"]


def test_validate_json_of_a_valid_spec_is_an_empty_list(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(["validate", "--json", str(DATA / "valid" / "minimal.yaml")], capsys)
    assert (rc, json.loads(out)) == (0, [])


def test_validate_accepts_set_and_allow_unsafe(capsys: pytest.CaptureFixture[str]) -> None:
    templated = DATA / "valid" / "templated.yaml"
    assert run(["validate", str(templated), "--set", "port=9000"], capsys)[0] == 0
    rc, _, err = run(["validate", str(templated), "--set", "port=high"], capsys)
    assert rc == 2 and "--set port=high: port is an integer param" in err
    rc, out, _ = run(["validate", "--json", str(templated), "--set", "nope=1"], capsys)
    assert rc == 2 and "has no param 'nope'" in json.loads(out)[0]["message"]
    rc, _, err = run(["validate", str(templated), "--set", "novalue"], capsys)
    assert rc == 2 and "--set 'novalue': expected NAME=VALUE" in err
    privileged = DATA / "invalid" / "privileged.yaml"
    assert run(["validate", str(privileged)], capsys)[0] == 2
    assert run(["validate", str(privileged), "--allow-unsafe"], capsys)[0] == 0


def test_validate_a_missing_path_is_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = run(["validate", "/nonexistent/lab.yaml"], capsys)
    assert rc == 2 and "no such file or folder, and not a lab number" in err


def test_validate_a_catalog_number(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "07-demo"
    folder.mkdir()
    shutil.copy(DATA / "valid" / "minimal.yaml", folder / "lab.yaml")
    monkeypatch.setenv("LABUP_LABS_DIR", str(tmp_path))
    rc, out, _ = run(["validate", "7"], capsys)
    assert (rc, out) == (0, f"{folder / 'lab.yaml'}: valid (1 container, 0 checks)\n")


@pytest.mark.parametrize("kind", ["lab", "inventory", "checks"])
def test_schema_prints_each_schema(kind: str, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(["schema", kind], capsys)
    assert rc == 0
    assert json.loads(out)["$id"] == f"{kind}.schema.json"


def test_schema_defaults_to_lab_and_refuses_unknown_kinds(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert json.loads(run(["schema"], capsys)[1])["title"] == "labup Lab (v1)"
    rc, _, err = run(["schema", "compose"], capsys)
    assert rc == 2 and "unknown schema 'compose'" in err
