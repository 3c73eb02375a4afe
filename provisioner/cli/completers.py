"""The completion callbacks typer holds for LAB arguments and ``check --only``.

No ``from __future__ import annotations`` here, on purpose: typer reads every callback's
type hints each time it builds the app, on every run, and string annotations cost about
0.4 ms per parameter to evaluate, eager ones a tenth of that. The answers themselves are in
``complete.py``, imported only when a shell asks.
"""

import typer


def complete_lab(incomplete: str) -> list[tuple[str, str]]:
    """Lab numbers of the catalog, for every LAB argument."""
    from provisioner.cli.complete import lab_numbers

    return lab_numbers(incomplete)


def complete_check_id(ctx: typer.Context, incomplete: str) -> list[tuple[str, str]]:
    """The check ids of the lab named before, for ``--only``."""
    from provisioner.cli.complete import check_ids

    return check_ids(ctx.params, list(ctx.args), incomplete)
