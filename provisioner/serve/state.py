"""What the dashboard knows of the class: a :class:`LearnerState` per target, the lab's checks
as columns, how many learners pass each check over time, and the round in progress.

Plain data and no web imports: the worker (:mod:`provisioner.serve.rounds`) writes it from
the runner's outcomes, the web app reads it as JSON documents. Every change is published
(``kind``, ``document``) to one listener while the lock is held, so a subscriber that takes a
:meth:`ClassState.snapshot` under the same lock misses nothing and sees nothing twice.

What it keeps of a learner is what the page shows and no more: the learner's name and the
inventory's host name, the check results (status, message, hint, points), the containers'
names and states. Never a URL, a key, a host key, a var or an environment.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from labspec.model import Check
from provisioner.checks.results import CheckRun
from provisioner.targets.outcome import HostOutcome

Listener = Callable[[str, dict[str, Any]], None]
DOC_VERSION = 1
MAX_TEXT = 1000  # a check message comes from a learner's container: keep it short
MAX_HISTORY = 720  # points kept for the charts (4 hours of rounds every 20 s)
MAX_CONTAINERS = 50


def clip(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


class ContainerView(NamedTuple):
    """One container of the lab on a learner's machine, as the page shows it."""

    name: str  # the lab's name for it (``web``)
    state: str  # running / exited / created / restarting / paused / dead
    health: str | None
    status: str  # the engine's words: "Up 5 seconds (healthy)"


class Observed(NamedTuple):
    """What one look at a learner's machine found (the dashboard's action's result)."""

    run: CheckRun
    containers: tuple[ContainerView, ...]
    not_up: str = ""


@dataclass
class LearnerState:
    host: str
    learner: str
    status: str = "waiting"  # waiting / graded / unreachable / failed / skipped
    busy: str = ""  # "", "queued", "checking", "resetting"
    error: str = ""
    note: str = ""  # the lab is not up there
    checked_at: float | None = None
    seconds: float = 0.0
    run: CheckRun | None = None
    containers: tuple[ContainerView, ...] = ()
    first_passed: dict[str, float] = field(default_factory=dict)

    @property
    def score(self) -> float:
        return self.run.score if self.run is not None else 0.0

    @property
    def total(self) -> float:
        return self.run.total if self.run is not None else 0.0

    @property
    def all_pass(self) -> bool:
        return self.status == "graded" and self.run is not None and self.run.ok

    def passing(self) -> set[str]:
        if self.status != "graded" or self.run is None:
            return set()
        return {r.id for r in self.run.results if r.status == "pass"}

    def as_dict(self) -> dict[str, Any]:
        checks: dict[str, Any] = {}
        if self.run is not None and self.status == "graded":
            for r in self.run.results:
                checks[r.id] = {
                    "status": r.status,
                    "message": clip(r.message),
                    "hint": clip(r.hint) if r.status in ("fail", "blocked") else "",
                    "earned": r.earned,
                    "points": r.points,
                    "first_passed": self.first_passed.get(r.id),
                }
        total = self.total
        return {
            "host": self.host,
            "learner": self.learner,
            "status": self.status,
            "busy": self.busy,
            "error": clip(self.error),
            "note": clip(self.note),
            "checked_at": self.checked_at,
            "seconds": round(self.seconds, 3),
            "score": self.score,
            "total": total,
            "percent": round(100.0 * self.score / total, 1) if total else None,
            "all_pass": self.all_pass,
            "checks": checks,
            "first_passed": dict(self.first_passed),
            "containers": [c._asdict() for c in self.containers[:MAX_CONTAINERS]],
        }


@dataclass
class RoundInfo:
    running: str = ""  # "" when idle, else what runs: "round", "check h1", "reset h1"
    started: float | None = None
    finished: float | None = None
    seconds: float | None = None  # the last full round's
    next: float | None = None  # when the next scheduled round starts
    every: float = 0.0
    count: int = 0  # full rounds done

    def as_dict(self) -> dict[str, Any]:
        return {"running": self.running, "started": self.started, "finished": self.finished,
                "seconds": None if self.seconds is None else round(self.seconds, 3),
                "next": self.next, "every": self.every, "count": self.count}


class ClassState:
    """The class as the dashboard sees it; thread-safe, every change published."""

    def __init__(
        self,
        lab_key: str,
        title: str,
        checks: Sequence[Check],
        learners: Sequence[tuple[str, str]],  # (host, learner), in inventory order
        *,
        every: float = 0.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.lab_key = lab_key
        self.title = title
        self.checks = tuple(checks)
        self.learners = {host: LearnerState(host, learner) for host, learner in learners}
        self.history: list[dict[str, Any]] = []
        self.round = RoundInfo(every=every)
        self.lock = threading.RLock()
        self._clock = clock
        self._listeners: list[Listener] = []

    # -- listening ------------------------------------------------------------------------
    def listen(self, listener: Listener) -> None:
        with self.lock:
            self._listeners.append(listener)

    def _publish(self, kind: str, document: dict[str, Any]) -> None:
        for listener in self._listeners:
            listener(kind, document)

    # -- documents ------------------------------------------------------------------------
    def columns(self) -> list[dict[str, Any]]:
        return [{"id": c.id, "description": clip(c.description), "points": float(c.points),
                 "stage": c.stage} for c in self.checks]

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "version": DOC_VERSION,
                "lab": {"key": self.lab_key, "title": self.title},
                "checks": self.columns(),
                "learners": [s.as_dict() for s in self.learners.values()],
                "round": self.round.as_dict(),
                "history": list(self.history),
            }

    # -- what the worker tells it ---------------------------------------------------------
    def busy(self, host: str, what: str, *, only_if_idle: bool = False) -> None:
        """``host`` waits (``queued``), is being checked (``checking``) or reset
        (``resetting``), or is done ("")."""
        with self.lock:
            learner = self.learners.get(host)
            if learner is None or learner.busy == what or (only_if_idle and learner.busy):
                return
            learner.busy = what
            self._publish("learner", learner.as_dict())

    def record(self, outcome: HostOutcome) -> None:
        """A host's check outcome from the runner: graded, or why it could not be."""
        with self.lock:
            learner = self.learners.get(outcome.host)
            if learner is None:
                return
            now = self._clock()
            learner.busy = ""
            learner.checked_at = now
            learner.seconds = outcome.seconds
            seen = outcome.done.value if outcome.done is not None else None
            if outcome.status == "ok" and isinstance(seen, Observed):
                learner.status = "graded"
                learner.error = ""
                learner.run = seen.run
                learner.containers = seen.containers
                learner.note = seen.not_up
                for r in seen.run.results:
                    if r.status == "pass":
                        learner.first_passed.setdefault(r.id, now)
            else:
                learner.status = outcome.status if outcome.status != "ok" else "failed"
                first = outcome.message.strip().splitlines()
                learner.error = first[0] if first else outcome.status
                learner.run = None
                learner.containers = ()
                learner.note = ""
            self._publish("learner", learner.as_dict())

    def forget_passes(self, host: str) -> None:
        """After a reset: the learner starts the lab again."""
        with self.lock:
            learner = self.learners.get(host)
            if learner is not None:
                learner.first_passed.clear()

    def started(self, what: str) -> None:
        with self.lock:
            self.round.running = what
            self.round.started = self._clock()
            self._publish("round", self.round.as_dict())

    def finished(self, *, full: bool, seconds: float, next_at: float | None) -> None:
        """The job in progress ended: a point on the charts, and when the next round is."""
        with self.lock:
            self.round.running = ""
            self.round.finished = self._clock()
            if full:
                self.round.seconds = seconds
                self.round.count += 1
            self.round.next = next_at
            point = self.point()
            self.history.append(point)
            del self.history[:-MAX_HISTORY]
            self._publish("history", point)
            self._publish("round", self.round.as_dict())

    def notice(self, text: str, *, level: str = "info") -> None:
        with self.lock:
            self._publish("notice", {"level": level, "text": clip(text), "t": self._clock()})

    def point(self) -> dict[str, Any]:
        """How many learners pass each check now (of those graded)."""
        with self.lock:
            graded = [s for s in self.learners.values() if s.status == "graded"]
            passing = {c.id: 0 for c in self.checks}
            for s in graded:
                for check_id in s.passing():
                    passing[check_id] = passing.get(check_id, 0) + 1
            return {"t": self._clock(), "graded": len(graded),
                    "all_pass": sum(1 for s in graded if s.all_pass), "passing": passing}

    # -- the class report -----------------------------------------------------------------
    def report(self) -> Any:
        """The class report (:class:`provisioner.report.class_report.ClassReport`) of the
        last results: a learner not graded (yet) is a row with the reason."""
        from provisioner.report.class_report import HostRun, build_report

        with self.lock:
            hosts = [
                HostRun(s.host, s.learner, s.run if s.status == "graded" else None,
                        "unreachable" if s.status == "unreachable" else "graded"
                        if s.status == "graded" else "failed",
                        s.error or ("not checked yet" if s.status == "waiting" else s.status))
                for s in self.learners.values()
            ]
            return build_report(self.lab_key, self.title, hosts, checks=self.checks)
