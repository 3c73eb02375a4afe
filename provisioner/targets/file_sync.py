"""Copy the lab files that bind mounts need to a per-lab folder on a remote host, over SFTP.

Only what changed is sent: beside the remote folder labup keeps a manifest
(``<folder>.labup-manifest.json``: per file its SHA-256, size and remote mtime). A file is
uploaded when its local hash differs from the manifest's, or when the remote copy's size or
mtime no longer match (someone edited it on the host). Files the manifest lists that the lab no
longer has are removed; nothing else on the host is touched. Uploads go to a temporary name
and are renamed into place.

Nothing is written or removed through a symlink: every folder below the remote lab folder is
checked with ``lstat`` before a write, a link where a file goes is removed (the link itself),
and the manifest lives outside the folder the containers see. A folder bound **read-write**
belongs to the lab's containers once they run (a process there may plant links in it), so it
is copied once, when it does not exist on the host yet, and never written into afterwards.

Build contexts are not copied: images are built through the Engine API, which streams the
context from this machine over the same SSH connection.

:func:`remote_lab` returns the copy of the :class:`Lab` whose ``folder`` and bind sources point
at the remote folder, which is what the provisioner must realize on that host.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import posixpath
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from labspec.errors import EngineError
from labspec.model import Lab, Mount

if TYPE_CHECKING:
    from paramiko import SFTPClient

MANIFEST = ".labup-manifest.json"  # suffix of the manifest beside the remote folder
DEFAULT_BASE = "~/.labup"


@dataclass(frozen=True)
class SyncResult:
    remote_folder: str
    uploaded: tuple[str, ...]
    unchanged: tuple[str, ...]
    removed: tuple[str, ...]
    bytes_sent: int
    kept: tuple[str, ...] = ()  # in a read-write folder already on the host: the lab's own

    def summary(self) -> str:
        kept = f", {len(self.kept)} kept (read-write, the lab's own)" if self.kept else ""
        return (
            f"{len(self.uploaded)} file(s) sent ({self.bytes_sent} bytes), "
            f"{len(self.unchanged)} unchanged, {len(self.removed)} removed{kept}"
        )


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
    except ValueError:
        return False
    return True


def bind_sources(lab: Lab) -> list[Path]:
    """The bind mount sources inside the lab folder (files or folders), absolute, sorted."""
    found: set[Path] = set()
    for c in lab.containers:
        for m in c.mounts:
            if m.type == "bind" and m.source:
                src = Path(m.source)
                if _inside(src, lab.folder):
                    found.add(src)
    return sorted(found)


def rw_folders(lab: Lab) -> list[str]:
    """Relative POSIX paths of the folders bound read-write (the lab's containers own them)."""
    found: set[str] = set()
    for c in lab.containers:
        for m in c.mounts:
            if m.type == "bind" and m.source and not m.read_only:
                src = Path(m.source)
                if _inside(src, lab.folder) and src.is_dir():
                    found.add(src.relative_to(lab.folder).as_posix())
    return sorted(found)


def _under(rel: str, folder: str) -> bool:
    return folder == "." or rel == folder or rel.startswith(folder + "/")


def files_to_send(lab: Lab) -> dict[str, Path]:
    """Relative POSIX path -> local file, for every regular file the binds need."""
    wanted: dict[str, Path] = {}
    for src in bind_sources(lab):
        if src.is_file():
            candidates: Iterable[Path] = (src,)
        elif src.is_dir():
            candidates = (p for p in sorted(src.rglob("*")) if p.is_file())
        else:
            continue  # missing locally: the provisioner reports it
        for path in candidates:
            rel = path.relative_to(lab.folder).as_posix()
            wanted[rel] = path
    return wanted


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def remote_folder_for(sftp: SFTPClient, lab: Lab, instance: str, base: str | None = None) -> str:
    """``<base>/labs/<lab key>-<instance>`` with ``~`` resolved to the login's home."""
    root = base or DEFAULT_BASE
    if root == "~" or root.startswith("~/"):
        home = sftp.normalize(".")
        root = posixpath.join(home, root[2:]) if root != "~" else home
    return posixpath.join(root, "labs", f"{lab.key}-{instance}")


def sync_lab(
    sftp: SFTPClient, lab: Lab, *, instance: str, base: str | None = None, host: str | None = None
) -> SyncResult:
    """Make the remote folder hold exactly the lab's bind files; send only what changed."""
    remote = remote_folder_for(sftp, lab, instance, base)
    try:
        return _sync(sftp, lab, remote)
    except OSError as e:
        raise EngineError(
            f"copying lab files to {remote} over SFTP failed: {e}", host=host
        ) from e


def _sync(sftp: SFTPClient, lab: Lab, remote: str) -> SyncResult:
    _makedirs(sftp, posixpath.dirname(remote))  # labup's own base folder (may be a link)
    fresh = _lstat(sftp, remote) is None
    if fresh:
        sftp.mkdir(remote)
    _real_folder(sftp, remote)
    manifest_path = remote + MANIFEST
    old = _read_manifest(sftp, manifest_path)
    wanted = files_to_send(lab)
    owned = [f for f in rw_folders(lab)
             if not fresh and _lstat(sftp, posixpath.join(remote, f)) is not None]
    new: dict[str, dict[str, Any]] = {}
    uploaded: list[str] = []
    unchanged: list[str] = []
    kept: list[str] = []
    sent = 0
    for rel, local in wanted.items():
        if any(_under(rel, f) for f in owned):
            kept.append(rel)  # the lab's containers own this folder now: never written
            if rel in old:
                new[rel] = old[rel]
            continue
        digest = sha256_file(local)
        target = posixpath.join(remote, rel)
        parent = _safe_parent(sftp, remote, rel)
        entry = old.get(rel)
        attrs = _lstat(sftp, target)
        if (
            entry is not None
            and attrs is not None
            and stat.S_ISREG(attrs.st_mode or 0)
            and entry.get("sha256") == digest
            and entry.get("size") == attrs.st_size
            and entry.get("mtime") == attrs.st_mtime
        ):
            new[rel] = entry
            unchanged.append(rel)
            continue
        if attrs is not None and stat.S_ISLNK(attrs.st_mode or 0):
            sftp.remove(target)  # the link itself, never what it points to
        tmp = posixpath.join(parent, f".{posixpath.basename(rel)}.labup-{os.urandom(4).hex()}")
        sftp.put(str(local), tmp)
        sftp.chmod(tmp, stat.S_IMODE(local.stat().st_mode))
        sftp.posix_rename(tmp, target)
        after = sftp.lstat(target)
        new[rel] = {"sha256": digest, "size": after.st_size, "mtime": after.st_mtime}
        uploaded.append(rel)
        sent += local.stat().st_size
    removed: list[str] = []
    for rel in sorted(set(old) - set(wanted)):
        if any(_under(rel, f) for f in owned):
            continue  # the lab's own data: left alone
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            _safe_parent(sftp, remote, rel, create=False)
            sftp.remove(posixpath.join(remote, rel))  # a link is removed, not followed
        removed.append(rel)
    if uploaded or removed or old.keys() != new.keys():
        _write_manifest(sftp, manifest_path, new)
    return SyncResult(remote, tuple(uploaded), tuple(unchanged), tuple(removed), sent,
                      tuple(kept))


def _lstat(sftp: SFTPClient, path: str) -> Any:
    try:
        return sftp.lstat(path)
    except FileNotFoundError:
        return None


def _real_folder(sftp: SFTPClient, path: str) -> None:
    attrs = _lstat(sftp, path)
    mode = (attrs.st_mode or 0) if attrs is not None else 0
    if attrs is None or stat.S_ISLNK(mode) or not stat.S_ISDIR(mode):
        raise NotADirectoryError(
            f"{path} is not a folder (a symlink?): refusing to write through it"
        )


def _safe_parent(sftp: SFTPClient, remote: str, rel: str, *, create: bool = True) -> str:
    """The folder that will hold ``rel``, every part below ``remote`` a real folder (made
    when missing, unless ``create=False``); NotADirectoryError at a link or a file."""
    current = remote
    for part in PurePosixPath(rel).parts[:-1]:
        current = posixpath.join(current, part)
        if _lstat(sftp, current) is None:
            if not create:
                raise FileNotFoundError(current)
            sftp.mkdir(current)
        _real_folder(sftp, current)
    return current


def _stat(sftp: SFTPClient, path: str) -> Any:
    try:
        return sftp.stat(path)
    except FileNotFoundError:
        return None


def _makedirs(sftp: SFTPClient, path: str) -> None:
    parts = PurePosixPath(path).parts
    current = ""
    for part in parts:
        current = posixpath.join(current, part) if current else part
        if current == "/":
            continue
        attrs = _stat(sftp, current)
        if attrs is None:
            sftp.mkdir(current)
        elif not stat.S_ISDIR(attrs.st_mode or 0):
            raise NotADirectoryError(f"{current} exists and is not a folder")


def _read_manifest(sftp: SFTPClient, path: str) -> dict[str, dict[str, Any]]:
    try:
        with sftp.open(path, "r") as fh:
            doc = json.loads(fh.read().decode("utf-8"))
    except FileNotFoundError:
        return {}
    except (ValueError, UnicodeDecodeError):
        return {}  # a damaged manifest means: send everything again
    files = doc.get("files") if isinstance(doc, dict) else None
    return {str(k): dict(v) for k, v in files.items()} if isinstance(files, dict) else {}


def _write_manifest(sftp: SFTPClient, path: str, files: dict[str, dict[str, Any]]) -> None:
    tmp = f"{path}.labup-{os.urandom(4).hex()}"
    with sftp.open(tmp, "w") as fh:
        fh.write(json.dumps({"version": 1, "files": files}, indent=1, sort_keys=True))
    sftp.posix_rename(tmp, path)


def remote_lab(lab: Lab, remote_folder: str, *, move_folder: bool = True) -> Lab:
    """A copy of ``lab`` whose bind sources inside its folder point at ``remote_folder``, and
    its ``folder`` too unless ``move_folder=False`` (checks that read lab files locally, such as
    the dockerfile lint, keep the local folder)."""
    remote = Path(remote_folder)

    def move(m: Mount) -> Mount:
        if m.type != "bind" or not m.source or not _inside(Path(m.source), lab.folder):
            return m
        rel = Path(m.source).relative_to(lab.folder)
        return dataclasses.replace(m, source=str(remote / rel))

    containers = tuple(
        dataclasses.replace(c, mounts=tuple(move(m) for m in c.mounts)) for c in lab.containers
    )
    if not move_folder:
        return dataclasses.replace(lab, containers=containers)
    return dataclasses.replace(lab, folder=remote, containers=containers)
