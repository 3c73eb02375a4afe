"""Progress reporters and the instructions printer (no engine needed)."""

from __future__ import annotations

import io
from pathlib import Path

from labspec.model import Lab
from provisioner.catalog.instructions import print_instructions, render_instructions
from provisioner.lifecycle.progress import CallbackReporter, ConsoleReporter, Event, QuietReporter


def test_plain_reporter_prints_one_line_per_resource_with_timing() -> None:
    out = io.StringIO()
    reporter = ConsoleReporter(out)  # a StringIO is not a terminal: plain lines
    reporter.resource("container", "lab5-web", "started", 0.214)
    reporter.resource("network", "lab5-front", "removed")
    reporter.warn("no GPU on this engine")
    assert out.getvalue().splitlines() == [
        "container lab5-web started (0.21s)",
        "network lab5-front removed",
        "warning: no GPU on this engine",
    ]
    assert [e.action for e in reporter.events] == ["started", "removed"]


def test_rich_reporter_writes_styled_lines() -> None:
    out = io.StringIO()
    reporter = ConsoleReporter(out, color=True)
    reporter.resource("container", "lab5-web", "healthy", 1.5, "after 3 probes")
    text = out.getvalue()
    assert "lab5-web" in text and "healthy" in text and "1.50s" in text


def test_quiet_and_callback_reporters_record_for_json_and_fleets() -> None:
    quiet = QuietReporter()
    quiet.resource("volume", "lab5-data", "created", 0.01)
    quiet.info("up to date")
    assert quiet.events[0].as_dict() == {"kind": "volume", "name": "lab5-data",
                                         "action": "created", "seconds": 0.01, "detail": ""}
    assert quiet.messages == [("info", "up to date")]
    seen: list[Event] = []
    fleet = CallbackReporter(seen.append)
    fleet.resource("container", "lab5-web", "started", 0.3)
    fleet.progress("python:3.11", "Downloading")
    fleet.warn("careful")
    assert [(e.kind, e.action) for e in seen] == [
        ("container", "started"), ("progress", "Downloading"), ("message", "careful")]


def test_instructions_are_rendered_with_params_plain_or_rich(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# Lab {{ lab.key }}\n\nOpen port **{{ web_port }}** ({{ instance }}).\n")
    lab = Lab("labup/v1", 5, "net", "Net", "", tmp_path / "lab.yaml", tmp_path,
              values={"web_port": 8050}, instructions=readme)
    assert render_instructions(lab, instance="alice") == (
        "# Lab lab5\n\nOpen port **8050** (alice).\n")
    plain = io.StringIO()
    assert print_instructions(lab, stream=plain)
    assert "Open port **8050** (default)." in plain.getvalue()
    fancy = io.StringIO()
    print_instructions(lab, stream=fancy, rich=True)
    assert "Open port 8050" in fancy.getvalue() and "**" not in fancy.getvalue()
    assert not print_instructions(Lab("labup/v1", 1, "x", "X", "", tmp_path, tmp_path))
