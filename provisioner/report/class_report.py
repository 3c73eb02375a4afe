"""The class report: every host's check results in one table, learners as rows, checks as columns.

Built from a fleet ``check`` run (one :class:`provisioner.checks.CheckRun` per host that
answered), written as HTML (Jinja2, autoescaped, one self-contained page), JSON or CSV, chosen by
the file's suffix. A host that could not be graded is a row too, with the reason.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labspec.errors import UserInputError
from labspec.model import Check
from provisioner.checks.results import CheckRun

FORMATS = {".html": "html", ".htm": "html", ".json": "json", ".csv": "csv"}
JSON_VERSION = 1


@dataclass(frozen=True)
class Column:
    id: str
    description: str
    points: float


@dataclass(frozen=True)
class Cell:
    status: str  # pass / fail / blocked / skipped
    earned: float
    points: float
    message: str = ""
    hint: str = ""
    hints_used: int = 0  # hint levels the learner saw (their own state)
    solved: bool = False  # made to pass by `labup solve`, not by the learner


@dataclass
class Row:
    learner: str
    host: str
    status: str  # graded / unreachable / failed
    error: str = ""
    cells: dict[str, Cell] = field(default_factory=dict)
    variant: dict[str, Any] = field(default_factory=dict)  # the learner's random params

    @property
    def hints_used(self) -> int:
        return sum(c.hints_used for c in self.cells.values())

    @property
    def solved(self) -> list[str]:
        return [k for k, c in self.cells.items() if c.solved and c.status == "pass"]

    @property
    def score(self) -> float:
        return sum(c.earned for c in self.cells.values())

    @property
    def total(self) -> float:
        return sum(c.points for c in self.cells.values() if c.status != "skipped")

    @property
    def percent(self) -> float | None:
        return round(100.0 * self.score / self.total, 1) if self.total else None


@dataclass
class ClassReport:
    lab: str
    title: str
    generated: str
    columns: list[Column]
    rows: list[Row]

    def pass_rate(self, check_id: str) -> str:
        graded = [r.cells[check_id] for r in self.rows if check_id in r.cells]
        if not graded:
            return "-"
        passed = sum(1 for c in graded if c.status == "pass")
        return f"{passed}/{len(graded)}"

    @property
    def average(self) -> float | None:
        graded = [r.percent for r in self.rows if r.percent is not None]
        return round(sum(graded) / len(graded), 1) if graded else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": JSON_VERSION,
            "lab": self.lab,
            "title": self.title,
            "generated": self.generated,
            "checks": [{"id": c.id, "description": c.description, "points": c.points}
                       for c in self.columns],
            "learners": [
                {
                    "learner": r.learner,
                    "host": r.host,
                    "status": r.status,
                    "error": r.error,
                    "score": r.score,
                    "total": r.total,
                    "percent": r.percent,
                    "checks": {
                        k: {"status": c.status, "earned": c.earned, "points": c.points,
                            "message": c.message, "hints_used": c.hints_used,
                            "solved": c.solved}
                        for k, c in r.cells.items()
                    },
                    "hints_used": r.hints_used,
                    "solved": r.solved,
                    "variant": dict(r.variant),
                }
                for r in self.rows
            ],
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2) + "\n"

    def to_csv(self) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["learner", "host", "status", *[c.id for c in self.columns],
                         "score", "total", "percent", "error", "hints_used", "solved",
                         "variant"])
        for r in self.rows:
            cells = [
                (_num(r.cells[c.id].earned) if r.cells[c.id].status != "skipped" else "skipped")
                if c.id in r.cells else ""
                for c in self.columns
            ]
            percent = "" if r.percent is None else _num(r.percent)
            variant = " ".join(f"{k}={v}" for k, v in r.variant.items())
            writer.writerow([r.learner, r.host, r.status, *cells, _num(r.score),
                             _num(r.total), percent, r.error, r.hints_used,
                             " ".join(r.solved), variant])
        return buf.getvalue()

    def to_html(self) -> str:
        import jinja2

        env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
        env.filters["num"] = _num
        return env.from_string(TEMPLATE).render(report=self)

    def write(self, path: Path) -> str:
        """Write in the format the suffix names; returns the format."""
        fmt = FORMATS.get(path.suffix.lower())
        if fmt is None:
            raise UserInputError(
                f"--report {path}: unknown format {path.suffix or '(none)'}",
                hint="name the file .html, .json or .csv",
            )
        text = {"html": self.to_html, "json": self.to_json, "csv": self.to_csv}[fmt]()
        try:
            path.write_text(text, encoding="utf-8")
        except OSError as e:
            raise UserInputError(f"cannot write the class report {path}: {e}") from e
        return fmt


def _num(value: float) -> str:
    return f"{value:g}"


@dataclass(frozen=True)
class HostRun:
    """One host of a fleet ``check``: its run when it was graded, else why not."""

    host: str
    learner: str
    run: CheckRun | None
    status: str = "graded"  # graded / unreachable / failed
    message: str = ""


def build_report(
    lab_key: str,
    title: str,
    hosts: Sequence[HostRun],
    *,
    checks: Sequence[Check] = (),
) -> ClassReport:
    """The class report of a fleet ``check``; ``checks`` (the lab's Check models) fixes the
    column order, and checks only some runs have are added after them."""
    columns: list[Column] = [Column(c.id, c.description, float(c.points)) for c in checks]
    known = {c.id for c in columns}
    rows: list[Row] = []
    for h in hosts:
        if h.run is None:
            status = "unreachable" if h.status == "unreachable" else "failed"
            first = h.message.splitlines()[0] if h.message else ""
            rows.append(Row(h.learner, h.host, status, error=first))
            continue
        row = Row(h.learner, h.host, "graded", variant=dict(h.run.variant))
        for r in h.run.results:
            if r.id not in known:
                known.add(r.id)
                columns.append(Column(r.id, r.description, float(r.points)))
            row.cells[r.id] = Cell(r.status, float(r.earned), float(r.points), r.message, r.hint,
                                   r.hints_used, r.solved)
        rows.append(row)
    return ClassReport(
        lab=lab_key,
        title=title,
        generated=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        columns=columns,
        rows=rows,
    )


TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{ report.lab }}: class report</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.4em; margin-bottom: 0.2em; }
p.meta { color: #666; margin-top: 0; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.35em 0.6em; text-align: center; }
th.learner, td.learner, td.host { text-align: left; }
th small { display: block; font-weight: normal; color: #666; }
td.pass { background: #e3f5e1; }
td.fail { background: #fbe3e3; }
td.blocked { background: #fdf1d8; }
td.skipped { background: #f0f0f0; color: #777; }
td.down { background: #eee; color: #a33; text-align: left; }
td.total { font-weight: bold; }
td small, td.learner small { display: block; color: #666; font-weight: normal; }
tfoot td { color: #555; }
</style>
</head>
<body>
<h1>{{ report.title }} ({{ report.lab }})</h1>
<p class="meta">Class report generated {{ report.generated }}:
{{ report.rows | length }} learner(s), {{ report.columns | length }} check(s)
{%- if report.average is not none %}, average {{ report.average | num }}%{% endif %}.</p>
<table>
<thead>
<tr>
<th class="learner">learner</th><th>host</th>
{% for c in report.columns %}
<th title="{{ c.description }}">{{ c.id }}<small>{{ c.points | num }} pt</small></th>
{% endfor %}
<th>score</th><th>%</th><th>hints</th>
</tr>
</thead>
<tbody>
{% for r in report.rows %}
<tr>
<td class="learner">{{ r.learner }}
{%- if r.variant %}<small class="variant">
{%- for k, v in r.variant.items() %}{{ k }}={{ v }} {% endfor %}</small>{% endif %}</td>
<td class="host">{{ r.host }}</td>
{% if r.status != "graded" %}
<td class="down" colspan="{{ report.columns | length + 3 }}">{{ r.status }}: {{ r.error }}</td>
{% else %}
{% for c in report.columns %}
{% set cell = r.cells.get(c.id) %}
{% if cell is none %}<td>-</td>
{% else %}<td class="{{ cell.status }}" title="{{ cell.message }}
{%- if cell.hint and cell.status != 'pass' %} (hint: {{ cell.hint }}){% endif %}">
{{- cell.status }}{% if cell.solved %} (solved by labup){% endif %}<br>{{ cell.earned | num }}
{%- if cell.hints_used %}<small>{{ cell.hints_used }} hint(s)</small>{% endif %}</td>
{% endif %}
{% endfor %}
<td class="total">{{ r.score | num }} / {{ r.total | num }}</td>
<td class="total">{% if r.percent is not none %}{{ r.percent | num }}{% else %}-{% endif %}</td>
<td>{{ r.hints_used }}</td>
{% endif %}
</tr>
{% endfor %}
</tbody>
<tfoot>
<tr><td class="learner" colspan="2">passed</td>
{% for c in report.columns %}<td>{{ report.pass_rate(c.id) }}</td>{% endfor %}
<td colspan="3"></td></tr>
</tfoot>
</table>
</body>
</html>
"""
