"""The learner's state folder (atomic, locked, never lost on a crash) and grading with it:
hint levels advancing, hint costs, solved marks, progress rows."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from labspec.model import Check, Lab
from provisioner.checks.results import CheckResult, CheckRun
from provisioner.learner import progress
from provisioner.learner.grading import apply, hint_cost, next_hint
from provisioner.learner.state import LabRecord, LocalStore, state_dir


def test_the_state_folder_follows_labup_state_dir_then_xdg(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LABUP_STATE_DIR", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert state_dir() == tmp_path / "xdg" / "labup"
    monkeypatch.setenv("LABUP_STATE_DIR", str(tmp_path / "mine"))
    assert state_dir() == tmp_path / "mine"
    monkeypatch.delenv("LABUP_STATE_DIR")
    monkeypatch.delenv("XDG_STATE_HOME")
    assert state_dir() == Path.home() / ".local" / "state" / "labup"


def test_a_record_round_trips_and_updates_in_place(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    assert store.read("lab5", "default").checks == {}

    def change(record: LabRecord) -> None:
        record.check("api").hints = 2
        record.check("web").solved = True
        record.title = "Networking"

    store.update("lab5", "default", change)
    again = store.read("lab5", "default")
    assert again.checks["api"].hints == 2 and again.solved == ["web"]
    assert again.hints_used == 2 and again.title == "Networking"
    assert (tmp_path / "labs" / "lab5.default.json").is_file()
    assert [r.lab for r in store.records()] == ["lab5"]
    assert store.remove("lab5") == ["default"] and store.records() == []


def test_a_damaged_record_is_a_clear_error_not_a_traceback(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    (tmp_path / "labs").mkdir()
    (tmp_path / "labs" / "lab5.default.json").write_text("{half a reco")
    with pytest.raises(Exception, match="is damaged") as err:
        store.read("lab5", "default")
    assert "labup progress --reset" in str(getattr(err.value, "hint", ""))


WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from provisioner.learner.state import LocalStore

    store = LocalStore(Path(sys.argv[1]))
    n = 0
    while True:
        n += 1
        def change(record, n=n):
            record.score = float(n)
            record.variant = {"padding": "x" * 200_000, "n": n}  # a slow, large write
            for i in range(200):
                record.check(f"c{i}").hints = n
        store.update("lab5", "default", change)
        print(n, flush=True)
    """
)


def test_progress_survives_kill_9_mid_write(tmp_path: Path) -> None:
    """A writer rewriting a large record as fast as it can is killed -9 at twenty random
    moments; every time the record on disk parses and is one whole version, no older than
    the last one the writer had reported written."""
    store = LocalStore(tmp_path)
    for attempt in range(20):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        first = proc.stdout.readline()  # at least one whole write happened
        assert first.strip().isdigit()
        time.sleep(0.01 + (attempt % 7) * 0.013)  # somewhere in the middle of a later write
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        reported = [int(line) for line in proc.stdout.read().split() if line.isdigit()]
        proc.stdout.close()
        last = max([int(first), *reported])
        record = store.read("lab5", "default")  # never half a file
        n = int(record.score)
        assert n >= last and n <= last + 1, (n, last)
        assert record.variant["n"] == n and len(record.variant["padding"]) == 200_000
        assert all(c.hints == n for c in record.checks.values()) and len(record.checks) == 200
    # the temporary files of the killed writers are cleaned up by the next write
    store.update("lab5", "default", lambda r: None)
    assert [p.name for p in (tmp_path / "labs").iterdir() if p.name.endswith(".tmp")] == []


def test_two_processes_updating_at_once_lose_nothing(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import sys
        from pathlib import Path
        from provisioner.learner.state import LocalStore
        store = LocalStore(Path(sys.argv[1]))
        for _ in range(40):
            def change(r):
                r.check(sys.argv[2]).hints += 1
            store.update("lab5", "default", change)
        """
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path), who])
             for who in ("a", "b", "c")]
    assert [p.wait() for p in procs] == [0, 0, 0]
    record = LocalStore(tmp_path).read("lab5", "default")
    assert {k: c.hints for k, c in record.checks.items()} == {"a": 40, "b": 40, "c": 40}


# -- grading ----------------------------------------------------------------------------


def lab_with(*checks: Check) -> Lab:
    return Lab(api_version="labup/v1", id=5, name="t", title="T", description="",
               path=Path("/x/lab.yaml"), folder=Path("/x"), checks=checks)


LEVELS = Check(id="api", type="container", spec={}, hint="nudge",
               hints=("nudge", "closer", "full command"), points=3.0,
               hint_cost=(0.0, 1.0, 1.5))
ONE = Check(id="web", type="container", spec={}, hint="just this", hints=("just this",))
BLOCKED = Check(id="shop", type="container", spec={}, hint="shop hint", hints=("shop hint",),
                needs=("api",))


def run_of(**statuses: str) -> CheckRun:
    run = CheckRun(lab="lab5", title="T", host="local", instance="default", started="now")
    points = {"api": 3.0}
    for cid, status in statuses.items():
        p = points.get(cid, 1.0)
        run.results.append(CheckResult(cid, "container", "task", status, "msg", hint="first",
                                       points=p, earned=p if status == "pass" else 0.0))
    return run


def test_each_check_of_the_learner_shows_the_next_hint_level_up_to_the_last() -> None:
    lab = lab_with(LEVELS, ONE, BLOCKED)
    record = LabRecord("lab5", "default")
    seen = []
    for _ in range(4):
        run = apply(run_of(api="fail", web="fail", shop="blocked"), lab, record, advance=True)
        api, web, shop = run.results
        seen.append((api.hint, api.hints_used, api.hints_total))
        assert (web.hint, web.hints_used) == ("just this", 1)
        assert shop.hint == "" and shop.hints_used == 0  # blocked: what it needs comes first
    assert seen == [("nudge", 1, 3), ("closer", 2, 3), ("full command", 3, 3),
                    ("full command", 3, 3)]
    # an instructor's look (advance=False) moves nothing
    apply(run_of(api="fail", web="fail", shop="blocked"), lab, record, advance=False)
    assert record.checks["api"].hints == 3 and record.hints_used == 4


def test_hints_cost_what_points_say_when_the_check_passes() -> None:
    assert [hint_cost(LEVELS, n) for n in range(5)] == [0.0, 0.0, 1.0, 2.5, 4.0]
    assert hint_cost(ONE, 3) == 0.0  # no cost given: hints are free
    flat = Check(id="f", type="x", spec={}, hint="h", hints=("a", "b"), hint_cost=(0.5,))
    assert hint_cost(flat, 2) == 1.0
    lab = lab_with(LEVELS, ONE)
    record = LabRecord("lab5", "default")
    for _ in range(3):
        apply(run_of(api="fail", web="pass"), lab, record, advance=True)
    run = apply(run_of(api="pass", web="pass"), lab, record, advance=True)
    api = run.results[0]
    assert (api.earned, api.points, api.hints_used) == (0.5, 3.0, 3)  # 3 - (0 + 1 + 1.5)
    assert run.score == 1.5 and record.score == 1.5 and record.passed == 2
    assert record.checks["api"].first_passed


def test_next_hint_moves_one_level_and_not_for_a_passing_check() -> None:
    record = LabRecord("lab5", "default")
    shown = [next_hint(record, LEVELS, passes=False) for _ in range(4)]
    assert [(h.level, h.text) for h in shown] == [
        (1, "nudge"), (2, "closer"), (3, "full command"), (3, "full command")]
    assert [h.cost for h in shown] == [0.0, 1.0, 2.5, 2.5]
    passing = next_hint(LabRecord("lab5", "default"), LEVELS, passes=True)
    assert passing.passes and passing.level == 1


def test_a_solved_mark_shows_while_the_check_passes_and_goes_when_it_fails() -> None:
    lab = lab_with(ONE)
    record = LabRecord("lab5", "default")
    record.check("web").solved = True
    assert apply(run_of(web="pass"), lab, record, advance=True).results[0].solved
    assert apply(run_of(web="pass"), lab, record, advance=True).solved == ["web"]
    assert not apply(run_of(web="fail"), lab, record, advance=True).results[0].solved
    assert not record.checks["web"].solved
    assert not apply(run_of(web="pass"), lab, record, advance=True).results[0].solved


def test_progress_rows_list_every_catalog_lab_and_other_instances(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    lab = lab_with(LEVELS, ONE)
    store.update("lab5", "default",
                 lambda r: apply(run_of(api="fail", web="pass"), lab, r, advance=True))
    store.update("lab5", "alice",
                 lambda r: apply(run_of(api="pass", web="pass"), lab, r, advance=True))
    other = Lab(api_version="labup/v1", id=1, name="first", title="First", description="",
                path=Path("/y/lab.yaml"), folder=Path("/y"), checks=(ONE,))
    rows = progress.rows([other, lab], store)
    assert [(r["lab"], r["instance"], r["started"]) for r in rows] == [
        ("lab1", "default", False), ("lab5", "default", True), ("lab5", "alice", True)]
    five = rows[1]
    assert (five["passed"], five["objectives"], five["hints_used"]) == (1, 2, 1)
    doc = progress.document(rows, store)
    assert doc["version"] == 1 and doc["started"] == 2 and doc["complete"] == 1
    assert json.loads(json.dumps(doc)) == doc
    assert progress.text_rows(rows)[0][4] == "not started"
