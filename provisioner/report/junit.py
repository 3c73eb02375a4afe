"""JUnit XML for CI: one <testsuite> per host, one <testcase> per check.

``fail`` -> ``<failure>`` (message, hint in the text); ``skipped`` and ``blocked`` ->
``<skipped>`` (a blocked check's cause is already reported as a failure). The suite's
properties carry the learner's side: ``learner``, ``variant.<param>``, ``hints_used``, and per
check ``hints.<id>`` (levels seen) and ``solved.<id>`` (made to pass by ``labup solve``).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path

from provisioner.checks.results import CheckRun

# Characters XML 1.0 forbids (container output may hold ANSI escapes or NULs).
_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _clean(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def _suite(parent: ET.Element, run: CheckRun) -> None:
    counts = run.counts()
    suite = ET.SubElement(
        parent,
        "testsuite",
        {
            "name": f"{run.lab}@{run.host}",
            "tests": str(len(run.results)),
            "failures": str(counts["fail"]),
            "errors": "0",
            "skipped": str(counts["skipped"] + counts["blocked"]),
            "time": f"{run.duration:.3f}",
            "timestamp": run.started[:19],  # the Ant JUnit schema: no time zone
            "hostname": run.host,
        },
    )
    props = ET.SubElement(suite, "properties")
    for name, value in (
        ("lab", run.lab),
        ("instance", run.instance),
        ("score", f"{run.score:g}"),
        ("total", f"{run.total:g}"),
    ):
        ET.SubElement(props, "property", {"name": name, "value": value})
    if run.learner:
        ET.SubElement(props, "property", {"name": "learner", "value": _clean(run.learner)})
    for key, value in run.variant.items():
        ET.SubElement(props, "property", {"name": f"variant.{key}", "value": _clean(str(value))})
    ET.SubElement(props, "property", {"name": "hints_used", "value": str(run.hints_used)})
    for r in run.results:  # per check: hint levels seen, and whether `labup solve` did it
        if r.hints_used:
            ET.SubElement(props, "property", {"name": f"hints.{r.id}", "value": str(r.hints_used)})
        if r.solved:
            ET.SubElement(props, "property", {"name": f"solved.{r.id}", "value": "true"})
    for r in run.results:
        case = ET.SubElement(
            suite,
            "testcase",
            {"classname": f"{run.lab}.{r.stage}", "name": r.id, "time": f"{r.duration:.3f}"},
        )
        if r.status == "fail":
            failure = ET.SubElement(
                case, "failure", {"message": _clean(r.message), "type": r.type}
            )
            failure.text = _clean(r.message + (f"\nhint: {r.hint}" if r.hint else ""))
        elif r.status in ("skipped", "blocked"):
            ET.SubElement(case, "skipped", {"message": _clean(f"{r.status}: {r.message}")})


def junit_xml(runs: CheckRun | Mapping[str, CheckRun]) -> str:
    """The JUnit XML document for one run or for runs by host."""
    many = [runs] if isinstance(runs, CheckRun) else list(runs.values())
    root = ET.Element(
        "testsuites",
        {
            "name": "labup",
            "tests": str(sum(len(r.results) for r in many)),
            "failures": str(sum(r.counts()["fail"] for r in many)),
            "errors": "0",
            "skipped": str(sum(r.counts()["skipped"] + r.counts()["blocked"] for r in many)),
            "time": f"{max((r.duration for r in many), default=0.0):.3f}",
        },
    )
    for run in many:
        _suite(root, run)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(runs: CheckRun | Mapping[str, CheckRun], path: str | Path) -> Path:
    target = Path(path)
    target.write_text(junit_xml(runs), encoding="utf-8")
    return target
