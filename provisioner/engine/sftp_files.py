"""Folders and whole-file writes over an SSH connection's SFTP channel.

Used by the lab folder's copy (:mod:`provisioner.targets.file_sync`) and the learner's state on
a host (:mod:`provisioner.learner.state`): a write is a new file under a random name, created
exclusively (never an existing file or a link), renamed over the old one, so a reader (or a
second writer on a shared home) sees the old text or the new one, whole.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import stat
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from paramiko import SFTPClient


def makedirs(sftp: SFTPClient, path: str, *, mode: int = 0o777) -> None:
    """Make the folder ``path`` and its parents (``mode`` for the ones made; a link on the way
    is followed: this is for labup's own base folders). Another run making one meanwhile is
    fine; something there that is not a folder is NotADirectoryError."""
    current = ""
    for part in PurePosixPath(path).parts:
        current = posixpath.join(current, part) if current else part
        if current == "/":
            continue
        try:
            found = sftp.stat(current)
        except FileNotFoundError:
            try:
                sftp.mkdir(current, mode=mode)
                continue
            except OSError:  # made by another run meanwhile, or a real failure: look again
                found = sftp.stat(current)
        if not stat.S_ISDIR(found.st_mode or 0):
            raise NotADirectoryError(f"{current} exists and is not a folder")


def write_text(sftp: SFTPClient, path: str, text: str) -> None:
    """Replace ``path`` by ``text`` (see the module docstring); OSError when it cannot."""
    folder, name = posixpath.split(path)
    tmp = posixpath.join(folder, f".{name}.{os.urandom(6).hex()}.labup-tmp")
    try:
        with sftp.open(tmp, "wx") as fh:
            fh.write(text)
        sftp.posix_rename(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            sftp.remove(tmp)
        raise
