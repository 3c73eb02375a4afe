"""The results table for people: status, id, points, message, and the hint of each failure."""

from __future__ import annotations

import re
from typing import IO, Any

from provisioner.checks.results import CheckRun

# Control characters from container output (ANSI escapes, bells) must not reach the terminal.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _plain(text: str) -> str:
    return _CONTROL.sub("?", text)


STYLES = {"pass": "green", "fail": "red", "blocked": "yellow", "skipped": "dim"}
MARKS = {"pass": "PASS", "fail": "FAIL", "blocked": "BLOCKED", "skipped": "SKIP"}


def _points(value: float) -> str:
    return f"{value:g}"


def render_table(run: CheckRun, file: IO[str] | None = None, console: Any | None = None) -> None:
    """Print the run as a table on ``console`` (a rich Console) or ``file`` (default stdout).

    Messages and hints are printed as plain text, never interpreted as rich markup."""
    from rich.console import Console

    out = console if console is not None else Console(file=file, highlight=False)
    out.print(table_renderable(run))


def hint_label(level: int, levels: int) -> str:
    """``hint: `` for a single hint, ``hint 2/3: `` for hints in levels."""
    return f"hint {max(level, 1)}/{levels}: " if levels > 1 else "hint: "


def table_renderable(run: CheckRun) -> Any:
    """The table and its score line as one rich renderable (``check --watch`` updates it in
    place)."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    where = f"{run.lab} on {run.host}" + (f" ({run.instance})" if run.instance != "default" else "")
    table = Table(title=Text(f"{run.title}: {where}"), title_justify="left", expand=False)
    table.add_column("status", no_wrap=True)
    table.add_column("check", no_wrap=True)
    table.add_column("stage", no_wrap=True)
    table.add_column("points", justify="right", no_wrap=True)
    table.add_column("result")
    for r in run.results:
        detail = Text(_plain(r.message))
        if r.status in ("fail", "blocked") and r.hint:
            detail.append("\n" + hint_label(r.hints_used, r.hints_total), style="bold")
            detail.append(_plain(r.hint))
        if r.solved:
            detail.append("\nsolved by labup solve", style="magenta")
        elif r.status == "pass" and r.hints_used and r.earned < r.points:
            detail.append(f"\n{r.hints_used} hint(s) used", style="dim")
        table.add_row(
            Text(MARKS[r.status], style=STYLES[r.status]),
            Text(r.id),
            Text(r.stage),
            Text(f"{_points(r.earned)}/{_points(r.points)}"),
            detail,
        )
    counts = run.counts()
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    verdict = Text(
        "all checks pass" if run.ok else "some checks fail", style=("green" if run.ok else "red")
    )
    line = Text(
        f"score {_points(run.score)}/{_points(run.total)} ({summary or 'no checks'}) "
        f"in {run.duration:.1f}s: "
    )
    line.append_text(verdict)
    extra = []
    if run.hints_used:
        extra.append(f"{run.hints_used} hint(s) used")
    if run.solved:
        extra.append(f"{len(run.solved)} solved by labup")
    if extra:
        line.append(" (" + ", ".join(extra) + ")", style="dim")
    return Group(table, line)
