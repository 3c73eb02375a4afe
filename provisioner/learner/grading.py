"""A check run seen through the learner's state: hint levels, what hints cost, solved marks.

- **Hint levels.** A check's ``hint`` may be a list, from a nudge to the full command. Each
  ``labup check`` of the learner's own (``advance``) that finds a task check failing shows the
  next level, up to the last; a blocked check shows the level reached, if any (what it
  needs comes first).
  ``labup hint`` asks for the next level explicitly (:func:`next_hint`). Levels are counted per
  lab instance in the learner's state, and ``hints_used`` is in every report.
- **Cost.** ``points: {value: 3, hint_cost: [0, 1, 1.5]}`` takes the cost of each level seen
  off the points when the check passes (one number: every level costs that); never below 0.
- **Solved.** A check that ``labup solve`` made pass is marked ``solved`` while it passes; the
  mark goes when a check finds it failing again (the learner broke it, or reset the lab).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

from labspec.model import Check, Lab
from labspec.redact import Redactor, redactor
from provisioner.checks.results import CheckResult, CheckRun
from provisioner.learner.state import LabRecord, now


def hint_cost(check: Check, used: int) -> float:
    """What ``used`` hint levels of ``check`` cost."""
    if not check.hint_cost or used <= 0:
        return 0.0
    costs = list(check.hint_cost)
    return sum(costs[min(i, len(costs) - 1)] for i in range(used))


def hint_text(check: Check, level: int, secret: Redactor | None = None) -> str:
    """The text of hint ``level`` (1-based; clamped to the levels there are), with the lab's
    secret values masked (``secret``: a hint may name a secret parameter)."""
    text = check.hints[max(1, min(level, len(check.hints))) - 1] if check.hints else check.hint
    return secret(text) if secret else text


def apply(
    run: CheckRun, lab: Lab, record: LabRecord, *, advance: bool, learner: str = ""
) -> CheckRun:
    """``run`` with hints, costs and solved marks from ``record``; ``record`` is updated with
    what this run showed (``advance``: a learner's own check, which moves failing checks on to
    their next hint level) and the run's grade."""
    by_id = {c.id: c for c in lab.checks}
    secret = redactor(lab)
    results = []
    for r in run.results:
        check = by_id.get(r.id)
        if check is None:
            results.append(r)
            continue
        results.append(_one(r, check, record, advance=advance, secret=secret))
    graded = dataclasses.replace(run, results=results, learner=learner or lab.learner,
                                 variant=dict(lab.variant))
    _grade(record, graded, lab)
    return graded


def _one(
    r: CheckResult, check: Check, record: LabRecord, *, advance: bool, secret: Redactor
) -> CheckResult:
    state = record.check(check.id)
    levels = len(check.hints)
    if check.stage != "task" or not levels:
        state.status = r.status
        return dataclasses.replace(r, hints_total=levels)
    if r.status == "fail" and advance:
        state.hints = min(levels, state.hints + 1)
    used = state.hints
    if r.status != "pass":
        state.solved = False
    elif not state.first_passed:
        state.first_passed = now()
    state.status = r.status
    if r.status == "fail" or (r.status == "blocked" and used):
        hint = hint_text(check, max(used, 1), secret)
    else:  # a blocked check points at the check it needs; its own hint waits its turn
        hint = ""
    earned = max(0.0, r.points - hint_cost(check, used)) if r.status == "pass" else 0.0
    return dataclasses.replace(r, hint=hint, hints_used=used, hints_total=levels,
                               solved=state.solved and r.status == "pass", earned=earned)


def _grade(record: LabRecord, run: CheckRun, lab: Lab) -> None:
    task = [r for r in run.results if r.stage == "task"]
    record.lab_id = lab.id
    record.title = lab.title
    record.learner = run.learner
    record.host = run.host
    record.variant = dict(run.variant)
    record.last_checked = now()
    record.score = run.score
    record.total = run.total
    record.objectives = sum(1 for c in lab.checks if c.stage == "task")
    if len(task) == record.objectives:  # a whole run (not --only / --stage env)
        record.passed = sum(1 for r in task if r.status == "pass")
    else:
        record.passed = sum(1 for c in lab.checks
                            if c.stage == "task" and record.check(c.id).status == "pass")


class NextHint(NamedTuple):
    check: str
    level: int  # 1-based, the one now shown
    levels: int
    text: str
    cost: float  # what the levels seen so far cost, if it passes
    passes: bool = False  # the check passes already: nothing shown, nothing counted


def next_hint(
    record: LabRecord, check: Check, *, passes: bool, secret: Redactor | None = None
) -> NextHint:
    """Move ``check`` on to its next hint level in ``record`` (unless it passes already);
    ``secret`` masks the lab's secret values in the text shown."""
    state = record.check(check.id)
    levels = max(1, len(check.hints))
    if not passes and check.hint:
        state.hints = min(levels, state.hints + 1)
    level = max(state.hints, 1)
    return NextHint(check.id, level, levels, hint_text(check, level, secret),
                    hint_cost(check, state.hints), passes)
