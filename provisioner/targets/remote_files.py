"""Files on a remote host over SFTP: walk a tree, make folders, copy a file in place, remove a
tree, and bring a tree back here. Symbolic links on the far side are never followed."""

from __future__ import annotations

import contextlib
import os
import posixpath
import stat
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from labspec.errors import EngineError

if TYPE_CHECKING:
    from paramiko import SFTPAttributes, SFTPClient

# what is never copied between a lab folder here and its copy on a host
SKIP_NAMES = frozenset({"__pycache__", ".git", ".pytest_cache", ".mypy_cache", ".ruff_cache"})
SKIP_SUFFIXES = (".pyc", ".labup-tmp")
MIRROR_FILE_LIMIT = 8 * 1024 * 1024  # a learner's file bigger than this is not brought back
MIRROR_TOTAL_LIMIT = 64 * 1024 * 1024


def skipped(name: str) -> bool:
    return name in SKIP_NAMES or name.endswith(SKIP_SUFFIXES)


def safe_name(name: str) -> bool:
    """A name a far side listed that is one plain path component (never ``..``, never ``/``)."""
    return bool(name) and name not in (".", "..") and "/" not in name and "\0" not in name


def attrs(sftp: SFTPClient, path: str) -> SFTPAttributes | None:
    """``lstat`` of a remote path; None when it does not exist."""
    try:
        return sftp.lstat(path)
    except FileNotFoundError:
        return None


def walk(sftp: SFTPClient, root: str) -> dict[str, SFTPAttributes]:
    """Every regular file under ``root`` (POSIX path relative to it -> its attributes), one
    listing per folder; links and special files are left out, skipped names too."""
    found: dict[str, SFTPAttributes] = {}
    pending = [""]
    while pending:
        rel = pending.pop()
        try:
            entries = sftp.listdir_attr(posixpath.join(root, rel) if rel else root)
        except FileNotFoundError:
            continue
        for entry in entries:
            name = entry.filename
            if not safe_name(name) or skipped(name):
                continue
            child = f"{rel}/{name}" if rel else name
            mode = entry.st_mode or 0
            if stat.S_ISDIR(mode):
                pending.append(child)
            elif stat.S_ISREG(mode):
                found[child] = entry
    return found


def real_folder(sftp: SFTPClient, path: str) -> None:
    """NotADirectoryError unless ``path`` is a folder itself (not a link to one)."""
    found = attrs(sftp, path)
    mode = (found.st_mode or 0) if found is not None else 0
    if found is None or stat.S_ISLNK(mode) or not stat.S_ISDIR(mode):
        raise NotADirectoryError(
            f"{path} is not a folder (a symlink?): refusing to write through it"
        )


def safe_parent(sftp: SFTPClient, root: str, rel: str, *, create: bool = True) -> str:
    """The folder that holds ``rel`` under ``root``, every part below ``root`` checked to be a
    real folder (made when missing, unless ``create=False``: FileNotFoundError then)."""
    current = root
    for part in PurePosixPath(rel).parts[:-1]:
        current = posixpath.join(current, part)
        if attrs(sftp, current) is None:
            if not create:
                raise FileNotFoundError(current)
            sftp.mkdir(current)
        real_folder(sftp, current)
    return current


def put(sftp: SFTPClient, local: Path, target: str) -> SFTPAttributes:
    """Copy one file to ``target`` (its folder checked by the caller) through a fresh temporary
    name beside it and a rename, which replaces a link there rather than following it; the
    attributes the file has after."""
    folder, name = posixpath.split(target)
    tmp = posixpath.join(folder, f".{name}.{os.urandom(4).hex()}.labup-tmp")
    sftp.put(str(local), tmp)
    sftp.chmod(tmp, stat.S_IMODE(local.stat().st_mode))
    sftp.posix_rename(tmp, target)
    return sftp.lstat(target)


def remove_tree(sftp: SFTPClient, path: str) -> None:
    """Remove a remote folder and everything in it (links removed, never followed)."""
    found = attrs(sftp, path)
    if found is None:
        return
    if not stat.S_ISDIR(found.st_mode or 0):
        sftp.remove(path)
        return
    for entry in sftp.listdir_attr(path):
        if safe_name(entry.filename):
            remove_tree(sftp, posixpath.join(path, entry.filename))
    sftp.rmdir(path)


def mirror_here(sftp: SFTPClient, remote: str, local: Path, *, host: str) -> None:
    """Make ``local`` hold the files of the remote folder ``remote`` (what the learner has on
    that machine), so checks that read lab files read theirs. Big files are left out."""
    try:
        files = walk(sftp, remote)
    except OSError as e:
        raise EngineError(f"reading the lab files in {remote} over SFTP failed: {e}",
                          host=host) from e
    total = 0
    wanted: set[Path] = set()
    for rel, entry in sorted(files.items()):
        size = entry.st_size or 0
        if size > MIRROR_FILE_LIMIT or total + size > MIRROR_TOTAL_LIMIT:
            continue
        total += size
        target = local.joinpath(*rel.split("/"))
        wanted.add(target)
        here = target.stat() if target.is_file() else None
        if here is not None and here.st_size == size and int(here.st_mtime) == entry.st_mtime:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            sftp.get(posixpath.join(remote, rel), str(target))
        except OSError as e:
            raise EngineError(f"reading {rel} from {remote} over SFTP failed: {e}",
                              host=host) from e
        if entry.st_mtime is not None:
            os.utime(target, (entry.st_mtime, entry.st_mtime))
    for path in sorted(local.rglob("*"), reverse=True):
        if any(skipped(part) for part in path.relative_to(local).parts):
            continue
        if path.is_file() and path not in wanted:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            with contextlib.suppress(OSError):
                path.rmdir()
