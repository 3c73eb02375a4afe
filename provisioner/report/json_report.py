"""The ``--json`` document of ``labup check`` (documented in docs/checks.md; stable)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provisioner.checks.results import JSON_VERSION, CheckRun


def to_json(run: CheckRun) -> dict[str, Any]:
    """One run as a JSON-ready dict, with a ``version`` key."""
    return run.to_dict()


def to_json_many(runs_by_host: Mapping[str, CheckRun]) -> dict[str, Any]:
    """Runs of many hosts: ``{"version": 1, "ok": ..., "hosts": {name: run}}``."""
    return {
        "version": JSON_VERSION,
        "ok": all(r.ok for r in runs_by_host.values()),
        "hosts": {host: run.to_dict() for host, run in runs_by_host.items()},
    }
