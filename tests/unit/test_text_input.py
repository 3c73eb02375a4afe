"""Input that is not UTF-8 text is bad input (exit 2, one line naming it), never a traceback:
command-line arguments (a ``--set`` value, a path, an option) and the files labup reads as
text (spec, inventory, instructions)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from labspec.errors import UserInputError
from provisioner.catalog.lab_source import parse_sets

LABUP = str(Path(sys.executable).with_name("labup")).encode()
SPEC = b"""apiVersion: labup/v1
kind: Lab
name: text
title: t
params:
  msg: {type: string, default: hi}
instructions: README.md
containers:
  web:
    image: busybox
    command: [echo, "{{ msg }}"]
"""


@pytest.fixture
def lab(tmp_path: Path) -> Path:
    (tmp_path / "lab.yaml").write_bytes(SPEC)
    (tmp_path / "README.md").write_bytes(b"say {{ msg }}\n")
    return tmp_path


def _labup(*args: bytes) -> subprocess.CompletedProcess[str]:
    return subprocess.run([LABUP, *args], capture_output=True, text=True, timeout=60,
                          errors="replace")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([b"validate", b"LAB", b"--set", b"msg=s\xffcret"], "--set msg: not UTF-8 text"),
        ([b"plan", b"LAB", b"--set=msg=s\xffcret"], "--set msg: not UTF-8 text"),
        ([b"plan", b"LAB/\xff.yaml"], ": not UTF-8 text"),
        ([b"plan", b"LAB", b"--instance", b"\xfe"], "--instance '\ufffd': not UTF-8 text"),
        ([b"status", b"lab\xff"], ": not UTF-8 text"),
    ],
)
def test_arguments_that_are_not_utf8_are_bad_input(
    lab: Path, args: list[bytes], message: str
) -> None:
    argv = [a.replace(b"LAB", str(lab).encode()) for a in args]
    result = _labup(*argv)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert "cret" not in result.stderr  # a --set value may be a secret: never echoed


def test_parse_sets_refuses_lone_surrogates_naming_the_param() -> None:
    with pytest.raises(UserInputError, match="--set msg: the value is not UTF-8 text"):
        parse_sets(["msg=\udcff"])


@pytest.mark.parametrize("command", [b"show", b"validate"])
def test_instructions_that_are_not_utf8_are_a_located_problem(lab: Path, command: bytes) -> None:
    (lab / "README.md").write_bytes(b"line one\nbad \xff byte\n")
    result = _labup(command, str(lab).encode())
    assert result.returncode == 2, result.stderr
    assert "README.md:2:5: $: byte 0xff is not UTF-8 text" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
