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
    from rich.table import Table
    from rich.text import Text

    out = console if console is not None else Console(file=file, highlight=False)
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
            detail.append("\nhint: ", style="bold")
            detail.append(_plain(r.hint))
        table.add_row(
            Text(MARKS[r.status], style=STYLES[r.status]),
            Text(r.id),
            Text(r.stage),
            Text(f"{_points(r.earned)}/{_points(r.points)}"),
            detail,
        )
    out.print(table)
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
    out.print(line)
