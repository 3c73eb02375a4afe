"""A self-contained HTML report (inline CSS, no scripts, no links out), rendered with
Jinja2 in a sandboxed environment with autoescaping on: messages come from containers and
learners' files, so they are data, never markup."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from provisioner.checks.results import CheckRun

TEMPLATE = "report.html.j2"


def render_html(runs_by_host: Mapping[str, CheckRun], *, title: str | None = None) -> str:
    from jinja2 import FileSystemLoader, StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment(
        loader=FileSystemLoader(str(Path(__file__).parent / "templates")),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    runs = list(runs_by_host.items())
    check_ids: list[str] = []
    for _, run in runs:
        for r in run.results:
            if r.id not in check_ids:
                check_ids.append(r.id)
    matrix = [(host, run, {r.id: r for r in run.results}) for host, run in runs]
    first = runs[0][1] if runs else None
    heading = title or (f"{first.title} ({first.lab})" if first else "labup checks")
    return env.get_template(TEMPLATE).render(
        title=heading,
        runs=runs,
        matrix=matrix,
        check_ids=check_ids,
        generated=datetime.now(UTC).isoformat(timespec="seconds"),
        ok=all(run.ok for _, run in runs),
    )


def write_html(
    runs_by_host: Mapping[str, CheckRun], path: str | Path, *, title: str | None = None
) -> Path:
    """Write the report page for one host (``{"local": run}``) or a whole class."""
    target = Path(path)
    target.write_text(render_html(runs_by_host, title=title), encoding="utf-8")
    return target
