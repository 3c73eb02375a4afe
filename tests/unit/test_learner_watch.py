"""The watch loop and what wakes it, with the fake engine's events and a real folder."""

from __future__ import annotations

import io
import queue
import threading
import time
from pathlib import Path
from typing import Any

from fake_engine import FakeEngine

from labspec.model import Check, Container, Lab, Network, Volume
from provisioner.checks.results import CheckResult, CheckRun
from provisioner.learner.folder_watch import FolderWatch
from provisioner.learner.triggers import Busy, LabEvents, RecordingEngine, Trigger
from provisioner.learner.watch import WatchOptions, announcements, watch

LAB = Lab(api_version="labup/v1", id=5, name="net", title="T", description="",
          path=Path("/x/lab.yaml"), folder=Path("/x"),
          containers=(Container(name="web", image="busybox"),),
          networks=(Network(name="backend"),), volumes=(Volume(name="data"),),
          learner_containers=("mine",),
          checks=(Check(id="a", type="container", spec={}),))


def event(
    kind: str, action: str, name: str = "", actor: str = "id1", **attrs: str
) -> dict[str, Any]:
    return {"Type": kind, "Action": action, "time": 1, "timeNano": 10**9,
            "Actor": {"ID": actor, "Attributes": {"name": name, **attrs}}}


def test_events_of_the_lab_are_changes_and_the_rest_is_not() -> None:
    probes = {"id9": {"Config": {"Healthcheck": {"Test": ["CMD-SHELL", "true"]}}}}
    filt = LabEvents(LAB, "default", probes.get)
    change = filt.change
    assert change(event("container", "start", "lab5-web"), busy=False) == "lab5-web start"
    assert change(event("container", "create", "lab5-mine"), busy=False)  # a learner container
    assert change(event("container", "die", "x", **{"labup.lab": "lab5",
                                                      "labup.instance": "default"}), busy=False)
    assert change(event("container", "start", "lab6-web"), busy=False) is None
    assert change(event("container", "start", "lab5-alice-web"), busy=False) is None
    assert change(event("network", "connect", "lab5-backend", container="c1"), busy=False)
    assert change(event("network", "connect", "lab6-backend"), busy=False) is None
    assert change(event("volume", "mount", actor="lab5-data"), busy=False)
    assert change(event("volume", "mount", actor="lab5-data"), busy=True) is None  # a probe
    assert change(event("container", "attach", "lab5-web"), busy=False) is None
    assert change(event("container", "archive-path", "lab5-web"), busy=False) is None
    assert change(event("container", "extract-to-dir", "lab5-web"), busy=True)  # docker cp in
    assert change(event("container", "health_status: healthy", "lab5-web"), busy=True)


def test_a_learners_exec_is_a_change_and_a_healthcheck_or_our_own_is_not() -> None:
    probes = {"id9": {"Config": {"Healthcheck": {"Test": ["CMD-SHELL", "true"]}}}}
    fake = FakeEngine()
    recorder = RecordingEngine(fake)
    recorder.exec("lab5-web", ["sh", "-c", "cat /x"])  # one of labup's own checks
    filt = LabEvents(LAB, "default", probes.get, recorder.ran)

    def execs(command: str, exec_id: str, *, busy: bool = False) -> str | None:
        filt.change(event("container", f"exec_create: {command}", "lab5-web", "id9",
                          execID=exec_id), busy=busy)
        filt.change(event("container", f"exec_start: {command}", "lab5-web", "id9",
                          execID=exec_id), busy=busy)
        return filt.change(event("container", "exec_die", "lab5-web", "id9", execID=exec_id,
                                 exitCode="0"), busy=busy)

    assert execs("/bin/sh -c true", "e1") is None  # the container's healthcheck
    said = execs("sh -c echo hi > /tmp/x", "e2")
    assert said == "docker exec in lab5-web: sh -c echo hi > /tmp/x"
    assert execs("sh -c cat /x", "e3") is None  # one of labup's own checks
    # an exec that began before the stream opened (only its end is seen) is not a change
    assert filt.change(event("container", "exec_die", "lab5-web", "id9", execID="early"),
                       busy=False) is None
    # a learner's exec right after a check run (while busy) is a change all the same
    assert execs("touch /tmp/done", "e4", busy=True) == "docker exec in lab5-web: touch /tmp/done"


def test_a_volume_mount_by_a_probe_is_not_a_change_and_one_by_the_learner_is() -> None:
    known = {"p1": {"Config": {"Labels": {"labup.kind": "probe"}}},
             "l1": {"Config": {"Labels": {}}}}
    filt = LabEvents(LAB, "default", known.get)
    assert filt.change(event("volume", "mount", actor="lab5-data", container="p1"),
                       busy=False) is None
    assert filt.change(event("volume", "mount", actor="lab5-data", container="l1"), busy=True)
    # a probe already removed: while checks run it is taken for one of labup's
    assert filt.change(event("volume", "mount", actor="lab5-data", container="gone"),
                       busy=True) is None


def test_busy_covers_a_check_run_and_a_moment_after() -> None:
    busy = Busy()
    assert not busy.now()
    with busy:
        assert busy.now()
    assert busy.now()  # the grace period: its last events may still be on their way
    time.sleep(0.6)
    assert not busy.now()


def test_the_folder_watch_sees_a_write_and_ignores_editor_litter(tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    out: queue.Queue[Trigger] = queue.Queue()
    watcher = FolderWatch(tmp_path, out).start()
    try:
        assert watcher.mode == "inotify"
        (tmp_path / ".index.html.swp").write_text("x")
        (tmp_path / "__pycache__").mkdir()
        (tmp_path / "__pycache__" / "m.pyc").write_text("x")
        time.sleep(0.3)
        assert out.empty()
        (tmp_path / "site" / "index.html").write_text("<h1>edited</h1>")
        trigger = out.get(timeout=3)
        assert trigger.source == "folder" and "site/index.html" in trigger.what
        (tmp_path / "new").mkdir()  # a new folder is watched too
        time.sleep(0.2)
        while not out.empty():
            out.get()
        (tmp_path / "new" / "f.txt").write_text("x")
        assert "new/f.txt" in out.get(timeout=3).what
    finally:
        watcher.stop()
    assert not watcher.thread.is_alive()


def test_the_folder_watch_falls_back_to_scanning(tmp_path: Path) -> None:
    out: queue.Queue[Trigger] = queue.Queue()
    watcher = FolderWatch(tmp_path, out)
    watcher._inotify = lambda: -1  # type: ignore[method-assign]  # as on a system without it
    watcher.start()
    try:
        assert watcher.mode == "poll"
        (tmp_path / "README.md").write_text("x")
        assert "README.md" in out.get(timeout=5).what
    finally:
        watcher.stop()


def result(cid: str, status: str) -> CheckResult:
    return CheckResult(cid, "container", "task", status, f"{cid} {status}", points=1.0,
                       earned=1.0 if status == "pass" else 0.0)


def run_with(**statuses: str) -> CheckRun:
    return CheckRun("lab5", "T", "local", "default", "now",
                    results=[result(k, v) for k, v in statuses.items()])


def test_announcements_name_what_newly_passes_and_what_broke() -> None:
    before = run_with(a="fail", b="pass", c="blocked")
    after = run_with(a="pass", b="fail", c="pass")
    said = announcements(before, after)
    assert [(c, s) for c, s, _ in said] == [("a", "pass"), ("b", "fail"), ("c", "pass")]
    assert announcements(None, after) == []
    done = announcements(run_with(a="fail"), run_with(a="pass"))
    assert done[-1][2].startswith("✔ every check passes")


def test_the_watch_rechecks_on_an_engine_event_and_ends_when_all_pass(tmp_path: Path) -> None:
    fake = FakeEngine()
    lab = Lab(**{**LAB.__dict__, "folder": tmp_path})
    outcomes = iter(["fail", "pass"])
    calls: list[bool] = []

    def run_checks(engine: Any, quick: Lab, advance: bool) -> CheckRun:
        assert isinstance(engine, RecordingEngine)
        calls.append(advance)
        return run_with(a=next(outcomes))

    out = io.StringIO()
    done: list[Any] = []
    thread = threading.Thread(target=lambda: done.append(
        watch(fake, lab, "default", run_checks, WatchOptions(until_pass=True, interval=60),
              out=out)))
    thread.start()
    deadline = time.monotonic() + 5
    while not fake.streams and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.7)  # past the first run's grace period
    fake.emit(event("network", "connect", "lab5-backend", container="c1"))
    thread.join(timeout=10)
    assert not thread.is_alive()
    watched = done[0]
    assert watched.run.ok and watched.runs == 2 and watched.reason == "all checks pass"
    assert calls == [True, False]  # hints advance on the first run only
    text = out.getvalue()
    assert "after network connect lab5-backend" in text and "✔ a passes now" in text
    assert all(s.closed for s in fake.streams)  # the events stream is closed at the end
    assert fake.streams[0].filters == {"type": ["container", "network", "volume"]}


def test_the_watch_rechecks_on_its_timer_when_nothing_happens(tmp_path: Path) -> None:
    fake = FakeEngine()
    lab = Lab(**{**LAB.__dict__, "folder": tmp_path})
    outcomes = iter(["fail", "fail", "pass"])
    out = io.StringIO()
    start = time.monotonic()
    watched = watch(fake, lab, "default", lambda e, q, a: run_with(a=next(outcomes)),
                    WatchOptions(until_pass=True, interval=1.0), out=out)
    assert watched.runs == 3 and 1.8 < time.monotonic() - start < 6
    assert out.getvalue().count("after every 1s") == 2


def test_json_lines_give_one_document_per_run(tmp_path: Path) -> None:
    import json

    fake = FakeEngine()
    lab = Lab(**{**LAB.__dict__, "folder": tmp_path})
    outcomes = iter(["fail", "pass"])
    out = io.StringIO()
    watch(fake, lab, "default", lambda e, q, a: run_with(a=next(outcomes)),
          WatchOptions(until_pass=True, interval=1.0, json_lines=True), out=out)
    docs = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [d["ok"] for d in docs] == [False, True]
    assert docs[0]["trigger"] == "started" and docs[1]["newly_passing"] == ["a"]
