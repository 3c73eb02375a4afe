"""Write a bundle's lab folders under a folder the user named, by labup's own rules.

tarfile's extraction filters have been bypassed before (CVE-2025-4517: a chain of symlinks
longer than PATH_MAX gets past ``filter="data"`` on CPython 3.11.7), so labup never lets
tarfile write anything. The rules:

1. Only regular files: :class:`~provisioner.offline.bundle_format.Bundle` refuses links,
   FIFOs, devices and hard links at open, and the manifest's lab folders hold files only.
   Folders are made as the files need them.
2. Every path is checked before anything is opened: each part a plain name (no ``..``,
   ``.``, empty part, NUL or slash), no file that is also a folder of another file.
3. Nothing is written before the whole set verifies: every lab file is read and its sha256
   and size checked first (held in memory, bounded by :data:`MAX_LAB_BYTES`), so the bytes
   written are the bytes verified, even if the bundle file changes underneath.
4. Writes go through directory file descriptors: each folder is opened with ``O_NOFOLLOW``
   relative to its parent's descriptor (a symlink already in ``--labs-dir`` is refused, not
   followed), each file is created ``O_CREAT | O_EXCL | O_NOFOLLOW`` under a temporary name
   in that folder and renamed over the old one, which replaces a link, never writes through
   one. Modes keep the owner's execute bit; set-id bits and group/other write are dropped.
"""

from __future__ import annotations

import errno
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from provisioner.offline.bundle_format import LABS_PREFIX, Bundle, BundleError

MAX_LAB_BYTES = 512 << 20  # lab folders are text and small build contexts
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def plan_lab_files(bundle: Bundle) -> dict[tuple[str, ...], str]:
    """Path parts below ``dest`` -> member name, for every lab file; BundleError for any
    path that is not plain, or a file that another file needs as a folder."""
    files: dict[tuple[str, ...], str] = {}
    for name, member in sorted(bundle.manifest.members.items()):
        if not name.startswith(LABS_PREFIX):
            continue
        if member.type != "file":
            raise BundleError(f"{bundle.path}: {name} is a {member.type}: lab folders hold files")
        parts = tuple(name.removeprefix(LABS_PREFIX).split("/"))
        bad = [p for p in parts if p in ("", ".", "..") or "\x00" in p or len(p) > 255]
        if len(parts) < 2 or bad:
            raise BundleError(f"{bundle.path}: lab file {name!r:.200} is not a plain path")
        files[parts] = name
    folders = {parts[:i] for parts in files for i in range(1, len(parts))}
    clash = sorted(folders & set(files))
    if clash:
        raise BundleError(
            f"{bundle.path}: {'/'.join(clash[0])} is both a file and a folder in the bundle"
        )
    total = sum(bundle.manifest.members[n].size for n in files.values())
    if total > MAX_LAB_BYTES:
        raise BundleError(
            f"{bundle.path}: the lab folders hold {total} bytes (limit {MAX_LAB_BYTES})"
        )
    return files


def _read_verified(bundle: Bundle, name: str) -> bytes:
    import hashlib

    data = b"".join(bundle.chunks(name))
    bundle.check_digest(bundle.manifest.members[name], len(data), hashlib.sha256(data).hexdigest())
    return data


def _mode(bundle: Bundle, name: str) -> int:
    entry = bundle.entries.get(name)
    executable = entry is not None and entry.mode & 0o100
    return 0o755 if executable else 0o644


class _Folders:
    """Directory descriptors below ``dest``, opened one part at a time with O_NOFOLLOW."""

    def __init__(self, root_fd: int, dest: Path) -> None:
        self.dest = dest
        self.fds: dict[tuple[str, ...], int] = {(): root_fd}

    def fd(self, parts: tuple[str, ...]) -> int:
        found = self.fds.get(parts)
        if found is not None:
            return found
        parent = self.fd(parts[:-1])
        name = parts[-1]
        with suppress(FileExistsError):
            os.mkdir(name, 0o755, dir_fd=parent)
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
        except OSError as e:
            if e.errno in (errno.ELOOP, errno.ENOTDIR):
                raise BundleError(
                    f"{self.dest.joinpath(*parts)} exists and is not a folder (a symlink or a "
                    "file): refusing to write through it",
                    hint="remove it, or give --labs-dir an empty folder",
                ) from None
            raise
        self.fds[parts] = fd
        return fd

    def close(self) -> None:
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()


@contextmanager
def _opened(dest: Path) -> Iterator[_Folders]:
    dest.mkdir(parents=True, exist_ok=True)
    root = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)  # the user's own path
    folders = _Folders(root, dest)
    try:
        yield folders
    finally:
        folders.close()


def _write_file(folder: int, leaf: str, data: bytes, mode: int) -> None:
    tmp = f".{leaf[:200]}.labup-{secrets.token_hex(4)}"
    fd = os.open(tmp, _FILE_FLAGS, 0o600, dir_fd=folder)
    try:
        with os.fdopen(fd, "wb", closefd=True) as out:
            out.write(data)
            os.fchmod(out.fileno(), mode)
        os.rename(tmp, leaf, src_dir_fd=folder, dst_dir_fd=folder)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp, dir_fd=folder)
        raise


def extract_labs(bundle: Bundle, dest: str | Path) -> list[Path]:
    """Write the bundle's lab folders into ``dest`` (``dest/05-networking/lab.yaml``...) by
    the rules of this module; returns the lab folders. ``LABUP_LABS_DIR=dest labup 5`` then
    runs the bundled labs. Existing files of the same names are replaced; nothing else in
    ``dest`` is touched."""
    dest = Path(dest)
    files = plan_lab_files(bundle)
    contents = {parts: _read_verified(bundle, name) for parts, name in files.items()}
    try:
        with _opened(dest) as folders:
            for parts, data in contents.items():
                mode = _mode(bundle, files[parts])
                _write_file(folders.fd(parts[:-1]), parts[-1], data, mode)
    except OSError as e:
        raise BundleError(f"cannot write the lab folders under {dest}: {e}") from e
    return [dest / lab.folder.removeprefix(LABS_PREFIX) for lab in bundle.manifest.labs]
