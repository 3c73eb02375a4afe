"""Where the shipped data lives: schemas/ and the labs/ catalog.

In a wheel they sit in ``labspec/_data/``; in a source checkout (and an editable
install) at the repository root. ``LABUP_LABS_DIR`` overrides the catalog folder.
A learner never works inside the installed package: see :func:`workspace_dir`.
"""

from __future__ import annotations

import os
from pathlib import Path

_PKG = Path(__file__).resolve().parent


def _data_dir(name: str) -> Path:
    packaged = _PKG / "_data" / name
    if packaged.is_dir():
        return packaged
    return _PKG.parent / name


def schemas_dir() -> Path:
    """The folder holding ``lab.schema.json``, ``inventory.schema.json`` and friends."""
    return _data_dir("schemas")


def labs_dir() -> Path:
    """The course catalog folder (one ``NN-slug/`` folder per lab)."""
    override = os.environ.get("LABUP_LABS_DIR")
    return Path(override) if override else _data_dir("labs")


def is_packaged(path: Path) -> bool:
    """True when ``path`` lies inside the installed package's data (a wheel install)."""
    try:
        path.resolve().relative_to((_PKG / "_data").resolve())
    except ValueError:
        return False
    return True


def workspace_dir() -> Path:
    """Where learners get their own copy of a catalog lab that was installed with the package:
    ``LABUP_WORKSPACE``, else ``~/labup``."""
    override = os.environ.get("LABUP_WORKSPACE")
    return Path(override).expanduser() if override else Path.home() / "labup"
