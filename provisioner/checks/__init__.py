"""Declarative checks: run a lab's checks on an engine and collect results.

``run_checks(engine, lab)`` is the entry point used by ``labup up`` (env stage), ``labup
check`` and ``labup test``; renderers for the results live in ``provisioner.report``.
"""

from provisioner.checks.registry import CHECK_TYPES, UnknownCheckType, get_check, known_types
from provisioner.checks.results import CheckResult, CheckRun, Outcome, Status
from provisioner.checks.runner import run_checks, run_one, select_checks

__all__ = [
    "CHECK_TYPES",
    "CheckResult",
    "CheckRun",
    "Outcome",
    "Status",
    "UnknownCheckType",
    "get_check",
    "known_types",
    "run_checks",
    "run_one",
    "select_checks",
]
