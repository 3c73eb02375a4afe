"""Shell completion for real: the script typer prints, sourced in bash, answering as a shell
would ask it (COMP_WORDS / COMP_CWORD), and the zsh protocol (_TYPER_COMPLETE_ARGS)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from labspec.build import load_lab
from labspec.catalog import SPEC_FILENAME, catalog_folders

BIN = Path(sys.executable).parent
BASH = shutil.which("bash")
# bash comes with every Debian system; without it (another OS) these tests say so, except in
# CI (LABUP_REQUIRE_ENGINE=1), where a missing bash fails them
pytestmark = pytest.mark.skipif(
    BASH is None and os.environ.get("LABUP_REQUIRE_ENGINE") != "1",
    reason="bash is not installed (shell completion is tested in bash)",
)

# One completion request: the words typed so far, the last one being completed.
ASK = """
source "$1"; shift
COMP_WORDS=("$@"); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); COMPREPLY=()
_labup_completion labup
printf '%s\\n' "${COMPREPLY[@]}"
"""


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("_LABUP")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What `labup --show-completion` prints when bash runs it (typer detects the shell)."""
    proc = subprocess.run(
        [str(BASH), "-c", "labup --show-completion"],
        capture_output=True, text=True, env=_env(), timeout=60, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "_LABUP_COMPLETE=complete_bash" in proc.stdout
    path = tmp_path_factory.mktemp("completion") / "labup.bash"
    path.write_text(proc.stdout)
    return path


def complete(script: Path, *words: str, **env: str) -> list[str]:
    proc = subprocess.run(
        [str(BASH), "-c", ASK, "ask", str(script), "labup", *words],
        capture_output=True, text=True, env=_env(**env), timeout=60, check=False,
    )
    assert proc.returncode == 0 and not proc.stderr, proc.stderr
    return [line for line in proc.stdout.splitlines() if line]


def catalog_numbers() -> list[str]:
    return [str(int(f.name.split("-", 1)[0])) for f in catalog_folders()]


def test_commands_complete_at_the_top(script: Path) -> None:
    got = complete(script, "")
    assert {"up", "check", "lint", "down", "test"} <= set(got)
    assert complete(script, "li") == ["list", "lint"]


@pytest.mark.parametrize("command", ["up", "check", "lint", "show", "down", "test", "validate"])
def test_lab_arguments_complete_the_catalogs_numbers(script: Path, command: str) -> None:
    assert complete(script, command, "") == catalog_numbers()
    assert complete(script, command, "./") == []  # a path: the shell completes files itself


def test_lab_numbers_come_from_the_catalog_in_use(script: Path, tmp_path: Path) -> None:
    for name in ("01-first", "12-twelfth", "07-seventh"):
        (tmp_path / name).mkdir()
        (tmp_path / name / SPEC_FILENAME).write_text("kind: Lab\n")  # not read: only listed
    (tmp_path / "05-no-spec").mkdir()
    assert complete(script, "up", "", LABUP_LABS_DIR=str(tmp_path)) == ["1", "7", "12"]
    assert complete(script, "up", "1", LABUP_LABS_DIR=str(tmp_path)) == ["1", "12"]


def test_only_completes_the_check_ids_of_the_named_lab(script: Path) -> None:
    folder = next(f for f in catalog_folders() if f.name.startswith("03-"))
    ids = [c.id for c in load_lab(folder / SPEC_FILENAME).checks]
    assert complete(script, "check", "3", "--only", "") == ids
    assert complete(script, "check", "3", "--only", "dockerfile-") == [
        i for i in ids if i.startswith("dockerfile-")
    ]
    # an id already given is not offered again; another lab offers its own
    assert complete(script, "check", "3", "--only", ids[0], "--only", "")[0] == ids[1]
    assert "dockerfile-user" in complete(script, "check", "4", "--only", "")
    assert complete(script, "check", "99", "--only", "") == []  # no such lab: nothing


def test_the_number_shorthand_completes_like_up(script: Path) -> None:
    assert complete(script, "5", "--inst") == ["--instance"]
    assert complete(script, "up", "5", "--inst") == ["--instance"]


def test_zsh_protocol_gives_ids_with_their_descriptions() -> None:
    proc = subprocess.run(
        [str(BIN / "labup")],
        capture_output=True, text=True, timeout=60, check=False,
        env=_env(
            _LABUP_COMPLETE="complete_zsh", _TYPER_COMPLETE_ARGS="labup check 3 --only dockeri"
        ),
    )
    assert proc.returncode == 0, proc.stderr
    assert "dockerignore" in proc.stdout and "app/.dockerignore exists" in proc.stdout


def test_install_completion_writes_a_working_script(tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(BASH), "-c", "labup --install-completion"],
        capture_output=True, text=True, env=_env(HOME=str(tmp_path)), timeout=60, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "bash completion installed in" in proc.stdout
    installed = tmp_path / ".bash_completions" / "labup.sh"
    assert f"source '{installed}'" in (tmp_path / ".bashrc").read_text()
    assert complete(installed, "check", "") == catalog_numbers()
