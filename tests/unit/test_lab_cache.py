"""A built lab is remembered between commands, and forgotten as soon as anything it relies on
changes: its spec, its params and host, the files and folders it points at, labspec itself."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import labspec
from labspec.errors import SpecError

BASIC = Path(__file__).resolve().parent.parent / "data" / "labs" / "basic"
PROBE = (
    "import sys, labspec\n"
    "lab = labspec.load_lab(sys.argv[1], params=dict(a.split('=', 1) for a in sys.argv[2:]))\n"
    "print('yaml' in sys.modules, lab.values['web_port'])\n"
)


def fresh_load(spec: Path, cache: Path, *sets: str) -> tuple[bool, str]:
    """Load in a new interpreter: (whether it had to read YAML, the web_port it got)."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(spec), *sets], capture_output=True, text=True,
        check=False, env={**os.environ, "LABUP_CACHE_DIR": str(cache)},
    )
    assert done.returncode == 0, done.stderr
    parsed, port = done.stdout.split()
    return parsed == "True", port


@pytest.fixture
def lab(tmp_path: Path) -> Path:
    folder = tmp_path / "basic"
    shutil.copytree(BASIC, folder)
    return folder / "lab.yaml"


def test_an_unchanged_lab_is_not_parsed_again(lab: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    assert fresh_load(lab, cache) == (True, "18431")
    assert fresh_load(lab, cache) == (False, "18431")
    assert fresh_load(lab, cache, "web_port=19000") == (True, "19000")  # other params
    assert fresh_load(lab, cache, "web_port=19000") == (False, "19000")
    lab.write_text(lab.read_text().replace("default: 18431", "default: 18432"))
    assert fresh_load(lab, cache) == (True, "18432")


def test_a_missing_bind_source_is_seen_even_after_the_lab_was_remembered(
    lab: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABUP_CACHE_DIR", str(tmp_path / "cache"))
    labspec.load_lab(lab)
    shutil.rmtree(lab.parent / "site")
    with pytest.raises(SpecError, match="bind source site does not exist"):
        labspec.load_lab(lab)


def test_a_copy_of_the_lab_elsewhere_is_its_own_lab(
    lab: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABUP_CACHE_DIR", str(tmp_path / "cache"))
    first = labspec.load_lab(lab)
    copy = tmp_path / "copy"
    shutil.copytree(lab.parent, copy)
    second = labspec.load_lab(copy / "lab.yaml")
    assert (first.folder, second.folder) == (lab.parent, copy)
    assert second.containers[0].mounts[0].source == str(copy / "site")


def test_a_damaged_entry_is_a_miss(
    lab: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABUP_CACHE_DIR", str(tmp_path / "cache"))
    first = labspec.load_lab(lab)
    (entry,) = (tmp_path / "cache" / "labs").iterdir()
    entry.write_bytes(b"not a pickle")
    assert labspec.load_lab(lab) == first


def test_a_cache_folder_others_can_write_is_never_read(
    lab: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "cache" / "labs"
    folder.mkdir(parents=True)
    folder.chmod(0o777)
    monkeypatch.setenv("LABUP_CACHE_DIR", str(tmp_path / "cache"))
    labspec.load_lab(lab)
    assert list(folder.iterdir()) == []  # nothing written, so nothing can be planted and read


def test_labup_no_cache_turns_it_off(
    lab: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABUP_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("LABUP_NO_CACHE", "1")
    labspec.load_lab(lab)
    assert not (tmp_path / "cache").exists()
