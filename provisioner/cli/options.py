"""Options shared by many commands, defined once so every command spells them alike."""

from __future__ import annotations

from collections.abc import Sequence

import typer

from labspec.errors import UserInputError

LAB_ARG = typer.Argument(..., help="Lab number (`5`), lab folder, or spec file.", metavar="LAB")
HOST = typer.Option(
    None,
    "--host",
    "-H",
    help=(
        "Engine URL: unix://, tcp:// or ssh://user@host:port"
        " (default DOCKER_HOST or the local socket)."
    ),
)
INSTANCE = typer.Option(
    None, "--instance", help="Instance name, so one lab can run several times on one engine."
)
SET = typer.Option(
    None,
    "--set",
    "-s",
    help="Override a param: --set name=value (repeatable).",
    metavar="NAME=VALUE",
)
JSON = typer.Option(False, "--json", help="Print a machine-readable JSON document on stdout.")
ALLOW_UNSAFE = typer.Option(
    False,
    "--allow-unsafe",
    help="Allow binds outside the lab folder, privileged containers and host networking.",
)
INVENTORY = typer.Option(
    None, "--inventory", "-i", help="Inventory file: run on every host it lists, over SSH."
)


def parse_sets(values: Sequence[str] | None) -> dict[str, str]:
    """``--set name=value`` strings to a mapping (the spec loader coerces the types)."""
    params: dict[str, str] = {}
    for item in values or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise UserInputError(f"--set {item!r}: expected NAME=VALUE")
        params[name.strip()] = value
    return params
