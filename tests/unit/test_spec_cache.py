"""A document that passed the schema is remembered, so an unchanged lab skips jsonschema."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import labspec

VALID = Path(__file__).resolve().parent.parent / "data" / "specs" / "valid"
PROBE = "import sys, labspec\nlabspec.load_lab(sys.argv[1])\nprint('jsonschema' in sys.modules)\n"


def load_in_fresh_process(spec: Path, cache: Path, **env: str) -> bool:
    """Load ``spec`` in a new interpreter; True when it had to import jsonschema."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(spec)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "LABUP_CACHE_DIR": str(cache), **env},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip() == "True"


def test_an_unchanged_valid_lab_skips_jsonschema_the_second_time(tmp_path: Path) -> None:
    spec = tmp_path / "lab.yaml"
    shutil.copy(VALID / "minimal.yaml", spec)
    cache = tmp_path / "cache"
    assert load_in_fresh_process(spec, cache) is True
    assert len(list((cache / "valid").iterdir())) == 2  # the params head and the document
    assert load_in_fresh_process(spec, cache) is False
    spec.write_text(spec.read_text().replace("busybox:1.36", "busybox:1.37"))
    assert load_in_fresh_process(spec, cache) is True


def test_invalid_documents_are_never_remembered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABUP_CACHE_DIR", str(tmp_path / "cache"))
    spec = VALID.parent / "invalid" / "wrong_type.yaml"
    for _ in range(2):
        problems = labspec.validate_path(spec)
        assert [p.path for p in problems] == ["$.containers.web.read_only"]
    remembered = list((tmp_path / "cache" / "valid").iterdir())
    assert len(remembered) == 1  # only the params head, which is valid


def test_labup_no_cache_turns_it_off(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    spec = VALID / "minimal.yaml"
    assert load_in_fresh_process(spec, cache, LABUP_NO_CACHE="1") is True
    assert load_in_fresh_process(spec, cache, LABUP_NO_CACHE="1") is True
    assert not cache.exists()


def test_an_unwritable_cache_only_costs_time(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert load_in_fresh_process(VALID / "minimal.yaml", blocker) is True
