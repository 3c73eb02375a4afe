"""Bind sources and build contexts are re-resolved right before they are used.

A bind source inside the lab folder was resolved when the spec loaded (symlinks followed, so
an escape showed then, see :mod:`labspec.semantic_host`). Between that moment and the
engine's mount, something may have swapped a path for a symlink. Right before each container
is created, and before each build, every such path is resolved again, on the machine whose
file system the engine uses:

- a local engine: this machine (``os.path.realpath``);
- an engine over SSH: the far side, through the connection's SFTP channel (the server's own
  ``realpath``), on the copy :mod:`provisioner.targets.file_sync` made;
- a ``tcp://`` engine elsewhere: labup cannot see that file system; the static rule still
  holds (no container of the lab can change a bind path), nothing more is promised.

The path must resolve to exactly what was checked (no symlink anywhere in it, the lab
folder's included) and exist, else the container is not created. labup hands the engine
that plain absolute path: never a ``/proc/self/fd/N`` path, which names labup's descriptor
table, not the engine's. What is left is the moment between this check and the engine's own
``mount``: closed for the lab's own containers by the static rule, narrowed to that moment for
writers outside the lab (docs/security.md says so).
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from labspec.errors import EngineError
from labspec.model import Container, Lab
from provisioner.engine.protocol import Engine

Resolve = Callable[[str], str | None]  # a path -> its real path, None when it is gone


def resolver(engine: Engine) -> Resolve | None:
    """How to resolve paths where ``engine`` mounts from; None when labup cannot see there."""
    if engine.is_local:
        return _local
    shell = engine.ssh_session()
    if shell is None:
        return None
    sftp = shell.sftp()

    def remote(path: str) -> str | None:
        try:
            return str(sftp.normalize(path))
        except OSError:
            return None

    return remote


def _local(path: str) -> str | None:
    try:
        return os.path.realpath(path, strict=True)
    except OSError:
        return None


def _inside(path: str, folder: str) -> bool:
    p, f = PurePosixPath(path), PurePosixPath(folder)
    return p == f or p.is_relative_to(f)


def check_binds(lab: Lab, c: Container, resolve: Resolve | None, *, name: str) -> None:
    """EngineError unless every bind source of ``c`` inside the lab folder still resolves to
    itself. Binds outside the folder (``--allow-unsafe``) are the user's explicit choice."""
    if resolve is None:
        return
    folder = str(lab.folder)
    for m in c.mounts:
        if m.type != "bind" or not m.source or not _inside(m.source, folder):
            continue
        real = resolve(m.source)
        if real != posixpath.normpath(m.source):
            now = f"now resolves to {real}" if real is not None else "is gone"
            raise EngineError(
                f"bind source {m.source} {now}: it changed since the lab was checked (a "
                "symlink swapped in?); not creating the container",
                resource=name,
                hint="look at what changed in the lab folder; `labup up` checks it again",
            )


def check_build_context(context: Path, *, image: str) -> None:
    """Build contexts are sent from this machine: the same rule, here."""
    real = _local(str(context))
    if real != str(context):
        now = f"now resolves to {real}" if real is not None else "is gone"
        raise EngineError(
            f"build context {context} {now}: it changed since the lab was checked; "
            "not building",
            resource=f"image {image}",
        )
