"""The live view of a fleet run and its summary table.

On a terminal: one line per host (status, current step, elapsed time) updated in place with
rich's ``Live``. Otherwise: plain lines, one per step change, so logs and CI stay readable.
Both end with :func:`print_summary`: a table per host and the hosts that failed.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Sequence
from typing import Any, TextIO

from provisioner.targets.outcome import FleetResult, HostOutcome

MARKS = {"ok": "ok", "failed": "FAILED", "unreachable": "UNREACHABLE", "skipped": "skipped"}


class PlainView:
    """One plain line per event: ``[h1] connecting``, ``[h1] ok 1.2s``."""

    def __init__(self, stream: TextIO | None = None, *, command: str = "") -> None:
        self._stream = stream or sys.stdout
        self._lock = threading.Lock()
        self._last: dict[str, str] = {}
        self._command = command

    def _line(self, text: str) -> None:
        with self._lock:
            print(text, file=self._stream, flush=True)

    def started(self, host: str) -> None:
        pass

    def step(self, host: str, text: str) -> None:
        if self._last.get(host) == text:
            return
        self._last[host] = text
        self._line(f"[{host}] {text}")

    def finished(self, outcome: HostOutcome) -> None:
        first = outcome.message.splitlines()[0] if outcome.message else ""
        detail = f": {first}" if first and outcome.status != "ok" else ""
        self._line(f"[{outcome.host}] {MARKS[outcome.status]} {outcome.seconds:.1f}s{detail}")


class LiveView:
    """A rich ``Live`` table, one row per host, refreshed in place while the fleet runs."""

    def __init__(self, hosts: Sequence[str], *, console: Any = None, title: str = "") -> None:
        from rich.console import Console
        from rich.live import Live

        self._console = console or Console()
        self._hosts = list(hosts)
        self._title = title
        self._lock = threading.Lock()
        self._rows: dict[str, dict[str, Any]] = {
            h: {"status": "queued", "step": "", "t0": None, "t1": None} for h in hosts
        }
        self._live = Live(
            get_renderable=self._render,
            console=self._console,
            refresh_per_second=8,
            transient=False,
        )

    def __enter__(self) -> LiveView:
        self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.refresh()
        self._live.stop()

    def _render(self) -> Any:
        from rich.markup import escape
        from rich.table import Table

        table = Table(title=self._title or None, box=None, pad_edge=False, show_header=False,
                      expand=True, title_justify="left")
        width = max([4, *(len(h) for h in self._hosts)])
        table.add_column("host", style="bold", no_wrap=True, min_width=width)
        table.add_column("status", no_wrap=True, min_width=11)
        table.add_column("step", no_wrap=True, overflow="ellipsis", ratio=1)
        table.add_column("time", justify="right", no_wrap=True, min_width=6)
        now = time.monotonic()
        with self._lock:
            for host in self._hosts:
                row = self._rows[host]
                t0, t1 = row["t0"], row["t1"]
                elapsed = "" if t0 is None else f"{(t1 or now) - t0:.1f}s"
                status = row["status"]
                style = {
                    "ok": "green", "FAILED": "red", "UNREACHABLE": "red", "skipped": "yellow",
                    "running": "cyan",
                }.get(status, "dim")
                table.add_row(escape(host), f"[{style}]{status}[/]", escape(row["step"]), elapsed)
        return table

    def started(self, host: str) -> None:
        with self._lock:
            self._rows[host].update(status="running", t0=time.monotonic())

    def step(self, host: str, text: str) -> None:
        with self._lock:
            self._rows[host]["step"] = text

    def finished(self, outcome: HostOutcome) -> None:
        first = outcome.message.splitlines()[0] if outcome.message else ""
        with self._lock:
            row = self._rows[outcome.host]
            row.update(status=MARKS[outcome.status], t1=time.monotonic())
            if outcome.status != "ok" and first:
                row["step"] = first
            elif outcome.status == "ok":
                row["step"] = first or "done"


def print_summary(result: FleetResult, *, command: str, stream: TextIO | None = None) -> None:
    """The per-host summary table, then the hosts that failed (or that all went well)."""
    out = stream or sys.stdout
    rows = [
        (
            o.host,
            MARKS[o.status],
            f"{o.seconds:.1f}s",
            (o.message.splitlines()[0] if o.message else "") if o.status != "ok" else o.message,
        )
        for o in result.outcomes
    ]
    if out.isatty():
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        table = Table(title=escape(f"{command}: {len(rows)} host(s) in {result.seconds:.1f}s"))
        for col in ("host", "result", "time", "detail"):
            table.add_column(col, justify="right" if col == "time" else "left")
        for host, mark, secs, detail in rows:
            style = "green" if mark == "ok" else ("yellow" if mark == "skipped" else "red")
            table.add_row(escape(host), f"[{style}]{mark}[/]", secs, escape(detail))
        Console(file=out).print(table)
    else:
        width = max([4, *(len(r[0]) for r in rows)])
        print(f"{command}: {len(rows)} host(s) in {result.seconds:.1f}s", file=out)
        print(f"{'host':<{width}}  {'result':<11}  {'time':>6}  detail", file=out)
        for host, mark, secs, detail in rows:
            print(f"{host:<{width}}  {mark:<11}  {secs:>6}  {detail}".rstrip(), file=out)
    if result.failed:
        print(f"failed: {', '.join(result.failed)}", file=out)
    else:
        print("all hosts ok", file=out)
    out.flush()


def make_view(hosts: Sequence[str], *, title: str = "", stream: TextIO | None = None) -> Any:
    """A :class:`LiveView` on a terminal, else a :class:`PlainView`; use it with ``with``."""
    out = stream or sys.stdout
    if out.isatty():
        from rich.console import Console

        return LiveView(hosts, console=Console(file=out), title=title)
    return _PlainContext(PlainView(out))


class _PlainContext:
    def __init__(self, view: PlainView) -> None:
        self.view = view

    def __enter__(self) -> PlainView:
        return self.view

    def __exit__(self, *exc: object) -> None:
        pass
