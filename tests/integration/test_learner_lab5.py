"""Lab 5 of the course as a learner lives it: `labup solve --to` for each of its solution steps,
and `labup check --watch` in a real terminal (tmux) following the solution run in another pane
until every check passes, without a restart."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from labspec.catalog import SPEC_FILENAME, catalog_folders

pytestmark = [pytest.mark.docker, pytest.mark.slow]

LABUP = str(Path(sys.executable).parent / "labup")
FOLDER = next(f for f in catalog_folders() if f.name.startswith("05-"))


@pytest.fixture(scope="module")
def lab5_images(docker_client: Any) -> None:
    from labspec import load_lab
    from provisioner.offline.base_images import prepare_images
    from provisioner.offline.recipes import refs_for_labs

    results = prepare_images(docker_client, refs_for_labs([load_lab(FOLDER / SPEC_FILENAME)]),
                             offline=True)
    assert not [r.detail for r in results if r.action == "failed"]


@pytest.fixture
def lab5(
    tmp_path: Path, unique: str, lab5_images: None
) -> Iterator[tuple[list[str], dict[str, str]]]:
    """Lab 5 on an instance of its own, on a port of its own (other runs may hold 8050)."""
    port = 20000 + int(unique[:4], 16) % 20000
    where = ["--instance", f"l{unique}", "--set", f"web_port={port}", "--learner", "alice"]
    env = {**os.environ, "LABUP_STATE_DIR": str(tmp_path / "state"), "COLUMNS": "250"}
    try:
        yield where, env
    finally:
        subprocess.run([LABUP, "down", "5", "--instance", f"l{unique}", "-q"], env=env,
                       capture_output=True, check=False)


def labup(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([LABUP, *args], capture_output=True, text=True, env=env, timeout=300,
                          stdin=subprocess.DEVNULL, check=False)


def statuses(env: dict[str, str], where: list[str]) -> dict[str, tuple[str, bool]]:
    proc = labup(env, "check", "5", *where, "--stage", "task", "--json")
    doc = json.loads(proc.stdout)
    return {r["id"]: (r["status"], r["solved"]) for r in doc["results"]}


def test_solve_to_each_step_of_lab5(lab5: tuple[list[str], dict[str, str]]) -> None:
    from labspec import load_lab

    where, env = lab5
    steps = load_lab(FOLDER / SPEC_FILENAME).solution.keyed  # type: ignore[union-attr]
    assert len(steps) == 3
    for k, step in enumerate(steps, 1):
        reset = labup(env, "reset", "5", *where, "-q")
        assert reset.returncode == 0, reset.stderr
        proc = labup(env, "solve", "5", *where, "--to", step.checks[0], "--json")
        assert proc.returncode == 0, proc.stderr
        doc = json.loads(proc.stdout)
        assert [s["step"] for s in doc["steps"]] == list(range(1, k + 1))
        done = {c for s in steps[:k] for c in s.checks}
        seen = statuses(env, where)
        for check, (status, solved) in seen.items():
            if check in done:
                assert (status, solved) == ("pass", True), (k, check)
            else:
                assert status != "pass" and not solved, (k, check)
    # after the last step: everything passes, as solved by labup
    assert all(v == ("pass", True) for v in statuses(env, where).values())


needs_tmux = pytest.mark.skipif(
    shutil.which("tmux") is None and os.environ.get("LABUP_REQUIRE_ENGINE") != "1",
    reason="tmux is not installed (scripts/engine.sh installs it)",
)


@needs_tmux
def test_watch_in_a_real_terminal_follows_the_solution_to_the_end(
    lab5: tuple[list[str], dict[str, str]], tmp_path: Path, unique: str
) -> None:
    """tmux: `labup check 5 --watch --until-pass` in the left pane, the solution's three
    steps run by hand in the right one; the left screen shows each check passing, then all."""
    where, env = lab5
    assert labup(env, "up", "5", *where, "-q").returncode == 0
    from labspec import load_lab

    alias = load_lab(FOLDER / SPEC_FILENAME, learner="alice").values["db_alias"]
    session = f"labup-watch-{unique}"
    code = tmp_path / "exit-code"
    quoted = " ".join(where)
    watch = (f"env LABUP_STATE_DIR={env['LABUP_STATE_DIR']} "
             f"{LABUP} check 5 {quoted} --stage task --watch --until-pass; "
             f"echo $? > {code}; sleep 600")
    tmux_env = ["-e", f"LABUP_STATE_DIR={env['LABUP_STATE_DIR']}"]
    plain = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "200", "-y", "80",
                    *tmux_env, "sleep 600"], check=True, env=plain)
    # a detached session started from a process without a terminal is 80 columns wide
    # whatever -x says: size it, then start the watch in it
    subprocess.run(["tmux", "resize-window", "-t", session, "-x", "200", "-y", "80"], check=True)
    subprocess.run(["tmux", "respawn-pane", "-k", "-t", session, watch], check=True)
    try:
        screen = wait_for(session, "Ctrl-C to stop")
        assert "FAIL" in screen and "hint 1/3" in screen
        inst = where[1]
        steps = " && ".join(f"sh solution/{s}; sleep 2" for s in (
            "1-db-alias.sh", "2-web-joins-frontend.sh", "3-web-leaves-backend.sh"))
        learner = (f"cd {FOLDER} && LABUP_LAB=lab5 LABUP_INSTANCE={inst} "
                   f"LABUP_PARAM_DB_ALIAS={alias} sh -c '{steps}'")
        subprocess.run(["tmux", "split-window", "-v", "-t", session, learner], check=True)
        screen = wait_for(session + ".0", "all checks pass", timeout=90)
        for check in ("api-reaches-db", "web-reaches-api", "web-cannot-reach-db",
                      "web-cannot-resolve-database", "shop-end-to-end"):
            assert f"✔ {check} passes now" in screen
        assert "✔ every check passes" in screen and "FAIL" not in screen.split("✔ every")[1]
        deadline = time.monotonic() + 20
        while not code.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert code.read_text().strip() == "0"
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False)


def wait_for(target: str, text: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = subprocess.run(["tmux", "capture-pane", "-p", "-J", "-S", "-200", "-t", target],
                                capture_output=True, text=True, check=False).stdout
        if text in screen:
            return screen
        time.sleep(0.3)
    raise AssertionError(f"{text!r} never appeared on the screen:\n{screen}")
