"""Spec commands: validate, schema."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Added by the labspec work (issue 2): validate, schema."""
