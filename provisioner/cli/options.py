"""Every option shared by more than one command, defined once so every command spells it alike,
and the helpers that turn them into the options objects the runner takes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from provisioner.cli.completers import complete_check_id, complete_lab
from provisioner.engine.labels import DEFAULT_INSTANCE

if TYPE_CHECKING:
    from provisioner.targets.select import TargetOptions

__all__ = ["DEFAULT_INSTANCE", "complete_check_id", "complete_lab"]


LAB_ARG = typer.Argument(
    ...,
    help="Lab number (`5`), lab folder, or spec file.",
    metavar="LAB",
    autocompletion=complete_lab,
)
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
LEARNER = typer.Option(
    None, "--learner",
    help="Who the lab is for (seeds its random params; default LABUP_LEARNER, else your user "
    "name; with -i each host's learner var).",
    metavar="NAME",
)
ALLOW_UNSAFE = typer.Option(
    False,
    "--allow-unsafe",
    help="Allow binds outside the lab folder, privileged containers and host networking.",
)

# -- where to run ------------------------------------------------------------------------------
INVENTORY = typer.Option(
    None, "--inventory", "-i", help="Inventory file: run on every host it lists, over SSH."
)
LIMIT = typer.Option(
    None, "--limit", "-l",
    help="With -i: only these hosts or groups (names, groups, globs or label=value; "
    "comma-separated or repeated).",
)
ONLY_FAILED = typer.Option(
    False, "--only-failed",
    help="With -i: only the hosts that failed in the last run of this command on the inventory.",
)
PARALLEL = typer.Option(
    None, "--parallel", min=1, max=256,
    help="With -i: hosts driven at once (default: the inventory's parallelism, 10).",
)
REFUSE_NO_GPU = typer.Option(
    False, "--refuse-no-gpu",
    help="With -i: a host without the GPUs the lab needs is a failure, not skipped.",
)

# -- lifecycle -----------------------------------------------------------------------------------
KEEP_ON_FAILURE = typer.Option(
    False, "--keep-on-failure", help="When up fails, keep what it created (for inspection)."
)
NO_CHECK = typer.Option(False, "--no-check", help="Skip the lab's environment checks after up.")
QUIET = typer.Option(False, "--quiet", "-q", help="No progress lines and no instructions.")
ENGINE_CALLS = typer.Option(
    16, "--engine-calls", min=1, max=64, help="Engine API calls in flight at once, per engine."
)
TIMEOUT = typer.Option(
    120.0, "--timeout", min=1.0, help="Longest wait (s) for a container to be healthy or complete."
)
VOLUMES = typer.Option(False, "--volumes", "-v", help="Also remove the lab's named volumes.")
BUNDLE = typer.Option(
    None, "--bundle",
    help="Load the images each engine lacks from this offline bundle first (no pulls).",
)


def where(
    host: str | None,
    inventory: Path | str | None,
    limit: list[str] | None,
    only_failed: bool,
    parallel: int | None,
) -> TargetOptions:
    """The targets a command names: ``--host`` (or the default engine), or ``-i`` hosts."""
    from provisioner.targets.select import TargetOptions

    options = TargetOptions(
        host=host,
        inventory=Path(inventory) if inventory is not None else None,
        limit=tuple(limit or ()),
        only_failed=only_failed,
        parallel=parallel,
    )
    options.check()
    return options
