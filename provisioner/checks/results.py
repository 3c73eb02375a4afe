"""Result types of a check run: plain dataclasses with ``to_dict()``.

The fleet's class report builds learners x checks tables from many :class:`CheckRun`
objects, and ``--json`` prints :meth:`CheckRun.to_dict`, so these stay plain and stable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["pass", "fail", "blocked", "skipped"]
STATUSES: tuple[Status, ...] = ("pass", "fail", "blocked", "skipped")

# Version of the JSON document (``to_json``); bumped only on incompatible changes.
JSON_VERSION = 1


@dataclass(frozen=True)
class Outcome:
    """What one attempt of a check type found: pass, fail, skipped or blocked, and why."""

    status: Literal["pass", "fail", "skipped", "blocked"]
    message: str


def blocked(message: str) -> Outcome:
    """The check cannot grade (what it must look at was replaced, or a negative check's
    target is not there to prove anything): never a pass."""
    return Outcome("blocked", message)


def passed(message: str) -> Outcome:
    return Outcome("pass", message)


def failed(message: str) -> Outcome:
    return Outcome("fail", message)


def skipped(message: str) -> Outcome:
    return Outcome("skipped", message)


@dataclass(frozen=True)
class CheckResult:
    """The result of one check. ``earned`` is ``points`` on pass, else 0."""

    id: str
    type: str
    stage: str
    status: Status
    message: str
    hint: str = ""
    description: str = ""
    points: float = 1.0
    earned: float = 0.0
    duration: float = 0.0  # seconds, all attempts included
    attempts: int = 1
    # The learner's side (provisioner/learner): hint levels seen of how many, and whether
    # `labup solve` made the check pass rather than the learner.
    hints_used: int = 0
    hints_total: int = 0
    solved: bool = False

    @property
    def ok(self) -> bool:
        return self.status in ("pass", "skipped")

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "stage": self.stage,
            "status": self.status,
            "message": self.message,
            "hint": self.hint if self.status in ("fail", "blocked") else "",
            "description": self.description,
            "points": self.points,
            "earned": self.earned,
            "duration": round(self.duration, 3),
            "attempts": self.attempts,
            "hints_used": self.hints_used,
            "hints_total": self.hints_total,
            "solved": self.solved,
        }


@dataclass
class CheckRun:
    """All results of one ``run_checks`` call on one engine."""

    lab: str  # lab key: "lab5" or the slug
    title: str
    host: str  # Engine.host_label
    instance: str
    started: str  # ISO 8601, UTC
    duration: float = 0.0
    results: list[CheckResult] = field(default_factory=list)
    learner: str = ""  # who the lab was rendered for (provisioner/learner)
    variant: dict[str, Any] = field(default_factory=dict)  # that learner's random params

    @property
    def hints_used(self) -> int:
        return sum(r.hints_used for r in self.results)

    @property
    def solved(self) -> list[str]:
        """Checks that pass because `labup solve` made them pass."""
        return [r.id for r in self.results if r.solved and r.status == "pass"]

    @property
    def ok(self) -> bool:
        """True when nothing failed or was blocked (skipped checks do not count against)."""
        return all(r.ok for r in self.results)

    @property
    def score(self) -> float:
        return sum(r.earned for r in self.results)

    @property
    def total(self) -> float:
        """Points available: skipped checks (e.g. an absent optional GPU) are not counted."""
        return sum(r.points for r in self.results if r.status != "skipped")

    def counts(self) -> dict[str, int]:
        return {s: sum(1 for r in self.results if r.status == s) for s in STATUSES}

    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if not r.ok]

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": JSON_VERSION,
            "lab": self.lab,
            "title": self.title,
            "host": self.host,
            "instance": self.instance,
            "started": self.started,
            "duration": round(self.duration, 3),
            "ok": self.ok,
            "score": self.score,
            "total": self.total,
            "counts": self.counts(),
            "results": [r.to_dict() for r in self.results],
            "learner": self.learner,
            "variant": dict(self.variant),
            "hints_used": self.hints_used,
            "solved": self.solved,
        }
