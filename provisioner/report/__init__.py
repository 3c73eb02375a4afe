"""Renderers for check results: a table for people, JSON for scripts, JUnit XML for CI,
and a self-contained HTML page for an instructor (one host or a whole class)."""

from provisioner.report.html import render_html, write_html
from provisioner.report.json_report import to_json, to_json_many
from provisioner.report.junit import junit_xml, write_junit
from provisioner.report.table import render_table

__all__ = [
    "junit_xml",
    "render_html",
    "render_table",
    "to_json",
    "to_json_many",
    "write_html",
    "write_junit",
]
