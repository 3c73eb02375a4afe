"""Who the learner is: the seed of their variant, the name in reports.

On one engine (``--host`` or the default): ``--learner NAME``, else ``LABUP_LEARNER``, else the
user name. On an inventory host: its ``learner`` var, else the host's name (each machine of a
classroom is one learner, whoever runs the command).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from labspec.errors import UserInputError

MAX_LENGTH = 64


def local_user() -> str:
    """The user name, as ``getpass.getuser`` finds it (without importing getpass and its
    terminal handling on every command)."""
    for name in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        value = os.environ.get(name)
        if value:
            return value
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError, OSError):  # no passwd entry (a container's random uid)
        return str(os.getuid()) if hasattr(os, "getuid") else "learner"


def explicit(name: str | None) -> str | None:
    """``--learner`` or ``LABUP_LEARNER``, checked; None when neither is given."""
    value = name if name is not None else os.environ.get("LABUP_LEARNER")
    if value is None:
        return None
    value = value.strip()
    if not value or len(value) > MAX_LENGTH or any(ord(ch) < 32 for ch in value):
        raise UserInputError(
            f"--learner {value!r}: give a name of 1 to {MAX_LENGTH} printable characters")
    return value


def learner_for(
    given: str | None, *, vars: Mapping[str, Any], name: str, from_inventory: bool
) -> str:
    """The learner of one target (see the module docstring)."""
    if from_inventory:
        return str(vars.get("learner") or name)
    return given or local_user()
