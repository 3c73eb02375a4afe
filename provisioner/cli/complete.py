"""Shell completion: lab numbers for LAB arguments, check ids for ``check --only``.

typer's ``--install-completion`` / ``--show-completion`` install a script that calls
``labup`` again with ``_LABUP_COMPLETE`` set; these functions answer it. They run only then
(imported lazily by the callbacks in ``options.py``), read the catalog's folder names and at
most one spec, and print nothing of their own: a lab that does not load completes nothing.
"""

from __future__ import annotations

import os
import re
from collections.abc import MutableMapping
from typing import Any

from labspec.errors import LabupError

COMPLETE_VAR = "_LABUP_COMPLETE"
# `labup 5 ...`: the program, a separator (bash's script joins words with a newline), a number
_SHORTHAND = re.compile(r"^(\S+)(\s+)(\d+)(?=\s|$)")


def lab_numbers(incomplete: str) -> list[tuple[str, str]]:
    """``("5", "networking")`` for every catalog lab whose number starts with ``incomplete``.
    Nothing for a path being typed, so the shell completes file names instead."""
    if incomplete and not incomplete.isdigit():
        return []
    from labspec.catalog import catalog_folders

    out = []
    try:
        folders = catalog_folders()
    except (LabupError, OSError):
        return []
    for folder in folders:
        number, _, slug = folder.name.partition("-")
        if not number.isdigit():
            continue
        value = str(int(number))
        if value.startswith(incomplete):
            out.append((value, slug.replace("-", " ")))
    return out


def check_ids(
    params: dict[str, Any], args: list[str], incomplete: str
) -> list[tuple[str, str]]:
    """The ids of the checks of the lab named on the command line so far, less those already
    given with ``--only``. The lab is ``params["lab"]``, or the first word left in ``args``:
    click stops parsing at an option still waiting for its value, as ``--only`` is here."""
    ref = params.get("lab") or next((a for a in args if not a.startswith("-")), None)
    if not ref:
        return []
    from provisioner.catalog.lab_source import LabSource

    try:
        lab = LabSource.resolve(str(ref), sets=params.get("sets") or None).load()
    except (LabupError, OSError):
        return []
    given = set(params.get("only") or ())
    return [
        (c.id, c.description or c.type)
        for c in lab.checks
        if c.id.startswith(incomplete) and c.id not in given
    ]


def normalise_env(env: MutableMapping[str, str]) -> None:
    """``labup 5 --<TAB>`` completes as ``labup up 5 --``: the shorthand ``main`` applies to
    a command line, applied to the words the completion script passes."""
    cword = env.get("COMP_CWORD", "")
    if "COMP_WORDS" in env and cword.isdigit() and int(cword) > 1:  # bash: words and index
        shorthand = _SHORTHAND.match(env["COMP_WORDS"])
        if shorthand:
            env["COMP_WORDS"] = _SHORTHAND.sub(r"\1\2up\2\3", env["COMP_WORDS"], count=1)
            env["COMP_CWORD"] = str(int(cword) + 1)
    line = env.get("_TYPER_COMPLETE_ARGS", "")  # zsh, fish, powershell: the line so far
    if _SHORTHAND.match(line) and len(line.split()) + line.endswith(" ") > 2:
        env["_TYPER_COMPLETE_ARGS"] = _SHORTHAND.sub(r"\1\2up\2\3", line, count=1)


def wanted(env: MutableMapping[str, str] | None = None) -> bool:
    return COMPLETE_VAR in (os.environ if env is None else env)
