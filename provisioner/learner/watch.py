"""``labup check --watch``: the results stay on screen and follow what the learner does.

The loop runs the checks once (a learner's own check: failing checks move on to their next hint
level), then blocks until something changes (:mod:`provisioner.learner.triggers`: the engine's
events for the lab, a file of the lab folder) or the slow periodic re-check is due, waits a
moment for the burst to end, and checks again (hint levels stay where they are). The table is
redrawn in place (rich ``Live``, refreshed only when there is something new: no timer thread);
each check that newly passes is announced above it. ``--until-pass`` ends the watch when every
check passes; Ctrl-C ends it at any time with the last run's verdict.

A failing check's ``wait`` is not waited out on every change (a change re-checks anyway): each
run gives a check at most ``SETTLE`` seconds, and when one that has a longer ``wait`` fails,
one more run follows when that time is up.
"""

from __future__ import annotations

import dataclasses
import json
import queue
import sys
import time
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any, NamedTuple

from labspec.model import Lab
from provisioner.checks.results import CheckRun
from provisioner.engine.protocol import CheckEngine
from provisioner.learner.folder_watch import FolderWatch
from provisioner.learner.triggers import Busy, EngineWatch, LabEvents, RecordingEngine, Trigger

if TYPE_CHECKING:
    from provisioner.engine.protocol import Engine

SETTLE = 2.0  # the longest a check retries within one watch run
DEBOUNCE = 0.4  # changes arriving this close together make one re-check
DEFAULT_INTERVAL = 30.0


class WatchOptions(NamedTuple):
    until_pass: bool = False
    interval: float = DEFAULT_INTERVAL  # the slow periodic re-check, seconds
    json_lines: bool = False  # one JSON document per run on stdout instead of the table


class Watched(NamedTuple):
    run: CheckRun
    runs: int  # how many times the checks ran
    reason: str  # "all checks pass" / "interrupted"


# (engine to check with, lab, advance hints) -> graded run
RunChecks = Callable[[CheckEngine, Lab, bool], CheckRun]


def quick(lab: Lab) -> Lab:
    """The lab with each check's ``wait`` cut to ``SETTLE`` for one watch run."""
    checks = tuple(dataclasses.replace(c, wait=min(c.wait, SETTLE)) for c in lab.checks)
    return dataclasses.replace(lab, checks=checks)


def watch(
    engine: Engine,
    lab: Lab,
    instance: str,
    run_checks: RunChecks,
    options: WatchOptions,
    *,
    out: IO[str] | None = None,
) -> Watched:
    """Watch until every check passes (``until_pass``) or Ctrl-C; the last run."""
    stream = out or sys.stdout
    changes: queue.Queue[Trigger] = queue.Queue()
    busy = Busy()
    recorder = RecordingEngine(engine)  # the checks' own execs are not changes
    events = EngineWatch(engine, LabEvents(lab, instance, engine.inspect_container,
                                           recorder.ran), changes, busy).start()
    from provisioner.learner.state import state_dir

    folder = FolderWatch(lab.folder, changes, ignore=(state_dir(),)).start()
    view = _View(stream, lab, options, folder.mode)
    runs = 0
    fast = quick(lab)
    try:
        with view:
            with busy:
                run = run_checks(recorder, fast, True)
            runs += 1
            view.show(run, None, "started")
            while not (options.until_pass and run.ok):
                trigger = _next(changes, options.interval, _settle_time(lab, run))
                with busy:
                    new = run_checks(recorder, fast, False)
                runs += 1
                view.show(new, run, trigger.what, engine_note=events.error)
                run = new
        return Watched(run, runs, "all checks pass" if run.ok else "stopped")
    except KeyboardInterrupt:
        view.close()
        return Watched(run if runs else _empty(lab, instance), runs, "interrupted")
    finally:
        events.stop()
        folder.stop()


def _empty(lab: Lab, instance: str) -> CheckRun:
    return CheckRun(lab=lab.key, title=lab.title, host="", instance=instance, started="")


def _settle_time(lab: Lab, run: CheckRun) -> float | None:
    """When a failing check with a longer ``wait`` than one run gives it is worth a retry."""
    waits = {c.id: c.wait for c in lab.checks}
    pending = [waits.get(r.id, 0.0) for r in run.results
               if r.status == "fail" and waits.get(r.id, 0.0) > SETTLE]
    return min(pending) - SETTLE if pending else None


def _next(changes: queue.Queue[Trigger], interval: float, settle: float | None) -> Trigger:
    """Block until a change (then gather the rest of its burst), a settle retry or the timer."""
    timeout = interval if settle is None else min(interval, settle)
    try:
        first = changes.get(timeout=timeout)
    except queue.Empty:
        if settle is not None and settle <= interval:
            return Trigger("settle", "a check with a longer wait")
        return Trigger("timer", f"every {interval:g}s")
    seen = [first]
    deadline = time.monotonic() + DEBOUNCE
    while (left := deadline - time.monotonic()) > 0:
        try:
            seen.append(changes.get(timeout=left))
        except queue.Empty:
            break
    what = seen[0].what + (f" (+{len(seen) - 1} more)" if len(seen) > 1 else "")
    return Trigger(seen[0].source, what)


class _View:
    """The table in place on a terminal; announcements and a line per run elsewhere."""

    def __init__(self, stream: IO[str], lab: Lab, options: WatchOptions, folder_mode: str) -> None:
        self.stream = stream
        self.options = options
        self.lab = lab
        self.tty = stream.isatty() and not options.json_lines
        self.sources = f"engine events, the lab folder ({folder_mode}), every {options.interval:g}s"
        self.live: Any = None
        self.console: Any = None

    def __enter__(self) -> _View:
        if self.tty:
            from rich.console import Console
            from rich.live import Live

            self.console = Console(file=self.stream, highlight=False)
            self.live = Live(console=self.console, auto_refresh=False, transient=False,
                             redirect_stdout=False, redirect_stderr=False)
            self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def show(self, run: CheckRun, before: CheckRun | None, why: str, *,
             engine_note: str = "") -> None:
        news = announcements(before, run)
        if self.options.json_lines:
            doc = {**run.to_dict(), "trigger": why, "newly_passing": [n[0] for n in news
                                                                       if n[1] == "pass" and n[0]]}
            self.stream.write(json.dumps(doc) + "\n")
            self.stream.flush()
            return
        if not self.tty:
            for _, _, text in news:
                self.stream.write(text + "\n")
            self.stream.write(f"[{time.strftime('%H:%M:%S')}] after {why}: "
                              f"score {run.score:g}/{run.total:g}, "
                              f"{sum(1 for r in run.results if r.status == 'pass')}/"
                              f"{len(run.results)} pass\n")
            self.stream.flush()
            return
        from rich.console import Group
        from rich.text import Text

        from provisioner.report.table import table_renderable

        for _, verdict, text in news:
            self.live.console.print(Text(text, style="bold green" if verdict == "pass"
                                         else "bold red"))
        status = Text(f"watching {self.lab.key}: {self.sources}; last check "
                      f"{time.strftime('%H:%M:%S')} after {why}", style="dim")
        if engine_note:
            status.append(f"\nengine events unavailable ({engine_note}); re-checking every "
                          f"{self.options.interval:g}s", style="yellow")
        done = self.options.until_pass and run.ok
        status.append("\nall checks pass" if done else "\nCtrl-C to stop",
                      style="bold green" if done else "dim")
        self.live.update(Group(table_renderable(run), status), refresh=True)


def announcements(before: CheckRun | None, after: CheckRun) -> list[tuple[str, str, str]]:
    """(check, "pass" | "fail", text) for every check that newly passes or fails again."""
    if before is None:
        return []
    was = {r.id: r.status for r in before.results}
    found: list[tuple[str, str, str]] = []
    for r in after.results:
        old = was.get(r.id)
        if r.status == "pass" and old != "pass":
            what = f": {r.description}" if r.description else ""
            found.append((r.id, "pass", f"✔ {r.id} passes now{what}"))
        elif old == "pass" and r.status in ("fail", "blocked"):
            found.append((r.id, "fail", f"✘ {r.id} no longer passes: {r.message}"))
    if after.ok and not before.ok:
        found.append(("", "pass", f"✔ every check passes: score {after.score:g}/{after.total:g}"))
    return found
