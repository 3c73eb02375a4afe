"""paramiko, imported for labup without invoke.

paramiko's ssh_config module imports invoke at import time, only to run ``Match exec``
commands; that import is 70 ms of the 130 ms paramiko takes, on every command that talks to
an engine over SSH. labup imports paramiko with invoke held back, and brings invoke in when
an ssh_config's ``Match exec`` needs it (:func:`allow_match_exec`, called by
:mod:`provisioner.engine.ssh_route`).
"""

from __future__ import annotations

import sys


def _import_without_invoke() -> None:
    if "paramiko" in sys.modules or "invoke" in sys.modules:
        return
    sys.modules["invoke"] = None  # type: ignore[assignment]  # "import invoke" fails fast
    try:
        import paramiko  # noqa: F401
    finally:
        if "invoke" in sys.modules and sys.modules["invoke"] is None:
            del sys.modules["invoke"]


_import_without_invoke()

import paramiko as paramiko  # noqa: E402  # re-exported: the one way labup imports it


def allow_match_exec() -> bool:
    """Give paramiko's ssh_config invoke, for ``Match exec``; False when it is not installed."""
    import paramiko.config

    if getattr(paramiko.config, "invoke", None) is not None:
        return True
    try:
        import invoke
    except ImportError:
        return False
    setattr(paramiko.config, "invoke", invoke)  # noqa: B010  # paramiko declares no such name
    return True
