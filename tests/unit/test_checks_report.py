"""Renderers: table, JSON, JUnit XML and HTML, from hand-made results."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

from provisioner.checks.results import CheckResult, CheckRun
from provisioner.report import (
    junit_xml,
    render_html,
    render_table,
    to_json,
    to_json_many,
    write_html,
    write_junit,
)


def make_run(host: str = "local", *, failing: bool = True) -> CheckRun:
    results = [
        CheckResult("web-up", "container", "env", "pass", "lab5-web: running", earned=1.0),
        CheckResult(
            "db-isolated",
            "reachable",
            "env",
            "pass",
            "lab5-web cannot reach lab5-db",
            points=2.0,
            earned=2.0,
        ),
        CheckResult("gpu", "gpu", "task", "skipped", "optional GPU absent", points=5.0),
    ]
    if failing:
        results += [
            CheckResult(
                "page",
                "http",
                "task",
                "fail",
                "GET / -> 404 [red]Not Found[/red] <script>x</script>",
                hint="serve <b>index.html</b> from /usr/share/nginx/html",
                points=3.0,
            ),
            CheckResult(
                "after",
                "exec",
                "task",
                "blocked",
                "needs page, which did not pass",
                hint="fix page first",
            ),
        ]
    return CheckRun(
        "lab5",
        "Networking",
        host,
        "default",
        "2026-11-28T00:00:00+00:00",
        duration=1.25,
        results=results,
    )


def test_table_shows_status_points_hints_and_score_without_markup() -> None:
    out = io.StringIO()
    render_table(make_run(), file=out)
    text = out.getvalue()
    for fragment in ("PASS", "FAIL", "BLOCKED", "SKIP", "0/3", "2/2", "Networking: lab5 on local"):
        assert fragment in text
    assert "hint: serve <b>index.html</b>" in " ".join(text.split())
    assert "[red]Not Found[/red]" in text  # printed literally, not as rich markup
    assert "score 3/7 (2 pass, 1 fail, 1 blocked, 1 skipped) in 1.2s: some checks fail" in text


def test_table_of_a_passing_run() -> None:
    out = io.StringIO()
    render_table(make_run(failing=False), file=out)
    assert "score 3/3" in out.getvalue() and "all checks pass" in out.getvalue()


def test_json_document_is_stable_and_versioned() -> None:
    doc = to_json(make_run())
    assert json.loads(json.dumps(doc)) == doc
    assert list(doc) == [
        "version",
        "lab",
        "title",
        "host",
        "instance",
        "started",
        "duration",
        "ok",
        "score",
        "total",
        "counts",
        "results",
        "learner",
        "variant",
        "hints_used",
        "solved",
    ]
    assert doc["version"] == 1 and doc["ok"] is False
    assert (doc["score"], doc["total"]) == (3.0, 7.0)
    assert list(doc["results"][0]) == [
        "id",
        "type",
        "stage",
        "status",
        "message",
        "hint",
        "description",
        "points",
        "earned",
        "duration",
        "attempts",
        "hints_used",
        "hints_total",
        "solved",
    ]
    page = next(r for r in doc["results"] if r["id"] == "page")
    assert page["hint"].startswith("serve")
    many = to_json_many({"pc1": make_run("pc1"), "pc2": make_run("pc2", failing=False)})
    assert many["version"] == 1 and many["ok"] is False and list(many["hosts"]) == ["pc1", "pc2"]


def test_junit_counts_failures_and_skips(tmp_path: Path) -> None:
    path = write_junit(
        {"pc1": make_run("pc1"), "pc2": make_run("pc2", failing=False)}, tmp_path / "j.xml"
    )
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("skipped")) == ("8", "1", "3")
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["lab5@pc1", "lab5@pc2"]
    assert suites[0].get("timestamp") == "2026-11-28T00:00:00"
    failure = suites[0].find("testcase[@name='page']/failure")
    assert failure is not None and failure.get("type") == "http"
    assert failure.text is not None and failure.text.endswith(
        "hint: serve <b>index.html</b> from /usr/share/nginx/html"
    )
    blocked = suites[0].find("testcase[@name='after']/skipped")
    assert blocked is not None and blocked.get("message", "").startswith("blocked: ")
    assert suites[0].find("testcase[@name='web-up']/failure") is None
    assert junit_xml(make_run()).startswith('<?xml version="1.0" encoding="UTF-8"?>')


def test_html_is_self_contained_and_escapes_everything(tmp_path: Path) -> None:
    path = write_html({"local": make_run()}, tmp_path / "r.html")
    page = path.read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert "<script>x</script>" not in page and "&lt;script&gt;x&lt;/script&gt;" in page
    assert "serve &lt;b&gt;index.html&lt;/b&gt;" in page
    for external in ("<link", "<script", "src=", "@import", "url("):
        assert external not in page
    assert "Class overview" not in page  # one host: no matrix


def test_html_class_report_has_a_hosts_by_checks_matrix() -> None:
    page = render_html(
        {"alice": make_run("alice"), "bob": make_run("bob", failing=False)}, title="Lab 5: class"
    )
    assert "<title>Lab 5: class</title>" in page
    assert "Class overview" in page
    assert page.count('class="cell pass"') == 2 * 2 and page.count('class="cell fail"') == 1
    assert "alice" in page and "bob" in page


def test_junit_stays_valid_xml_with_control_characters_in_messages() -> None:
    run = make_run()
    run.results[3] = CheckResult(
        "page", "http", "task", "fail", "\x1b[31mred\x1b[0m and a NUL \x00", hint="h\x07"
    )
    root = ET.fromstring(junit_xml(run).split("\n", 1)[1])
    failure = root.find("testsuite/testcase[@name='page']/failure")
    assert failure is not None
    assert failure.get("message") == "\ufffd[31mred\ufffd[0m and a NUL \ufffd"


def test_table_never_passes_control_characters_to_the_terminal() -> None:
    run = make_run()
    run.results[3] = CheckResult("page", "http", "task", "fail", "\x1b]0;pwned\x07 body")
    out = io.StringIO()
    render_table(run, file=out)
    assert "\x1b]0;" not in out.getvalue() and "\x07" not in out.getvalue()
    assert "?]0;pwned? body" in out.getvalue()
