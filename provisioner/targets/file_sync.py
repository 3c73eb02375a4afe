"""The lab folder on a remote host: the learner's copy of it, kept by labup over SFTP.

On an engine over SSH the learner works on that machine, so ``up`` gives the machine the whole
lab folder (``<labup_dir or ~/.labup>/labs/<lab key>-<instance>``): the files the bind mounts
need, and the files the learner reads and edits (a Dockerfile to write, a site to change).
Only what changed is sent. Beside the remote folder labup keeps a manifest
(``<folder>.labup-manifest.json``, outside what the containers see: per file the SHA-256 sent,
and the size and time it had on the host just after):

- a file the lab changed here is sent again, unless the learner changed it on the host;
- a file the learner changed on the host (its size or time no longer match the manifest) is
  kept: a second ``up`` never undoes a learner's work (the result counts the files it kept);
- with ``restore`` (``reset``: the clean state of a fresh ``up``) the folder is made exactly
  the lab's again: edits are undone and files the lab does not have are removed.

Nothing is written or removed through a link: every folder below the remote lab folder is
checked with ``lstat`` before a write (a link or a file there is refused), a link where a file
goes is replaced (the link itself), and uploads go to a fresh temporary name in the file's own
folder and are renamed into place. A folder bound **read-write** belongs to the lab's containers
once they run (a process there may plant links in it): ``up`` copies it only when it is not on
the host yet and never writes into it afterwards; ``reset`` restores it only after the lab's
containers are gone (see ``lifecycle.reset``'s ``prepare``). Build contexts of images the spec
builds are streamed from this machine through the Engine API, as before.

:func:`remote_lab` returns the copy of the :class:`Lab` whose ``folder`` and bind sources point
at the remote folder, which is what the provisioner must realize on that host.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labspec.errors import EngineError
from labspec.model import Lab, Mount
from provisioner.engine.sftp_files import makedirs, write_text
from provisioner.targets.remote_files import (
    attrs,
    put,
    real_folder,
    remove_tree,
    safe_parent,
    skipped,
    walk,
)

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
    # left as they are: changed by the learner on the host, or in a read-write folder the
    # lab's containers own
    kept: tuple[str, ...] = ()

    def summary(self) -> str:
        kept = f", {len(self.kept)} kept as they are on the host" if self.kept else ""
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
    """Relative POSIX paths of the lab's folders bound read-write (its containers own them)."""
    found: set[str] = set()
    for c in lab.containers:
        for m in c.mounts:
            if m.type == "bind" and m.source and not m.read_only:
                src = Path(m.source)
                if _inside(src, lab.folder) and src.is_dir():
                    found.add(src.relative_to(lab.folder).as_posix())
    return sorted(found)


def _under(rel: str, folders: list[str]) -> bool:
    return any(f == "." or rel == f or rel.startswith(f + "/") for f in folders)


def lab_files(folder: Path) -> dict[str, Path]:
    """Relative POSIX path -> file, for every regular file of a lab folder (links, caches and
    version-control folders left out)."""
    wanted: dict[str, Path] = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(skipped(part) for part in rel.parts) or path.is_symlink() or not path.is_file():
            continue
        wanted[rel.as_posix()] = path
    return wanted


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def remote_base(sftp: SFTPClient, base: str | None) -> str:
    """``base`` (default ``~/.labup``) with ``~`` resolved to the login's home."""
    root = base or DEFAULT_BASE
    if root == "~" or root.startswith("~/"):
        home = sftp.normalize(".")
        root = posixpath.join(home, root[2:]) if root != "~" else home
    return root


def remote_folder_for(sftp: SFTPClient, lab: Lab, instance: str, base: str | None = None) -> str:
    """``<base>/labs/<lab key>-<instance>``: the learner's copy of the lab on that host."""
    return posixpath.join(remote_base(sftp, base), "labs", f"{lab.key}-{instance}")


def sync_lab(
    sftp: SFTPClient,
    lab: Lab,
    *,
    instance: str,
    base: str | None = None,
    host: str | None = None,
    restore: bool = False,
    remote: str | None = None,
) -> SyncResult:
    """Bring the learner's copy of the lab on the host up to date (see the module docstring);
    ``remote`` names another folder than the learner's (a self-test's scratch copy)."""
    remote = remote or remote_folder_for(sftp, lab, instance, base)
    try:
        return _sync(sftp, lab_files(lab.folder), remote, restore=restore,
                     owned_if_there=rw_folders(lab))
    except OSError as e:
        raise EngineError(
            f"copying lab files to {remote} over SFTP failed: {e}", host=host
        ) from e


def _sync(
    sftp: SFTPClient,
    wanted: dict[str, Path],
    remote: str,
    *,
    restore: bool,
    owned_if_there: list[str],
) -> SyncResult:
    makedirs(sftp, posixpath.dirname(remote))  # labup's own base folder (it may be a link)
    fresh = attrs(sftp, remote) is None
    if fresh:
        sftp.mkdir(remote)
    real_folder(sftp, remote)
    manifest_path = remote + MANIFEST
    old = _read_manifest(sftp, manifest_path)
    there = walk(sftp, remote)
    if MANIFEST in there:  # where labup kept it before: inside the folder the containers see
        if not old:
            old = _read_manifest(sftp, posixpath.join(remote, MANIFEST))
        sftp.remove(posixpath.join(remote, MANIFEST))
        del there[MANIFEST]
    # read-write folders already on the host are the containers' own: never written on an up
    owned = [] if restore or fresh else [
        f for f in owned_if_there if attrs(sftp, posixpath.join(remote, f)) is not None]
    new: dict[str, dict[str, Any]] = {}
    uploaded: list[str] = []
    unchanged: list[str] = []
    kept: list[str] = []
    sent = 0
    for rel, local in wanted.items():
        entry = old.get(rel)
        if _under(rel, owned):
            kept.append(rel)
            if entry is not None:
                new[rel] = entry
            continue
        digest = sha256_file(local)
        found = there.get(rel)
        as_sent = (entry is not None and found is not None
                   and entry.get("size") == found.st_size and entry.get("mtime") == found.st_mtime)
        if as_sent and entry is not None and entry.get("sha256") == digest:
            new[rel] = entry
            unchanged.append(rel)
            continue
        if found is not None and not as_sent and not restore:
            kept.append(rel)  # the learner's version (or theirs from before labup knew it)
            if entry is not None:
                new[rel] = entry
            continue
        parent = safe_parent(sftp, remote, rel)
        after = put(sftp, local, posixpath.join(parent, posixpath.basename(rel)))
        new[rel] = {"sha256": digest, "size": after.st_size, "mtime": after.st_mtime}
        uploaded.append(rel)
        sent += local.stat().st_size
    removed: list[str] = []
    for rel in sorted(set(there) - set(wanted)):
        if _under(rel, owned):
            continue  # the containers' own data: left alone
        entry = old.get(rel)
        found = there[rel]
        ours_untouched = (entry is not None and entry.get("size") == found.st_size
                          and entry.get("mtime") == found.st_mtime)
        if restore or ours_untouched:
            with contextlib.suppress(FileNotFoundError):
                parent = safe_parent(sftp, remote, rel, create=False)
                sftp.remove(posixpath.join(parent, posixpath.basename(rel)))  # never followed
            removed.append(rel)
        elif entry is not None:
            kept.append(rel)  # the lab dropped it, the learner changed it: theirs now
    if uploaded or removed or old.keys() != new.keys():
        _write_manifest(sftp, manifest_path, new)
    return SyncResult(remote, tuple(uploaded), tuple(unchanged), tuple(removed), sent,
                      tuple(sorted(kept)))


def forget_copy(sftp: SFTPClient, remote: str) -> None:
    """Remove a copy of a lab folder on a host, and its manifest beside it."""
    remove_tree(sftp, remote)
    with contextlib.suppress(FileNotFoundError):
        sftp.remove(remote + MANIFEST)


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
    write_text(sftp, path, json.dumps({"version": 1, "files": files}, indent=1, sort_keys=True))


def remote_lab(lab: Lab, remote_folder: str, *, move_folder: bool = True) -> Lab:
    """A copy of ``lab`` whose bind sources inside its folder point at ``remote_folder``, and
    its ``folder`` too unless ``move_folder=False`` (checks that read lab files here keep the
    folder of this machine: the learner's files brought back, see ``remote_files``)."""
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


def rerooted(lab: Lab, folder: Path) -> Lab:
    """The same lab read from a copy of its folder at ``folder``: the spec, instructions,
    solution, build contexts and binds inside the folder all point into the copy."""
    old = lab.folder

    def move(path: Path) -> Path:
        return folder / path.relative_to(old) if _inside(path, old) else path

    def move_mount(m: Mount) -> Mount:
        if m.type == "bind" and m.source and _inside(Path(m.source), old):
            return dataclasses.replace(m, source=str(move(Path(m.source))))
        return m

    images = tuple(
        dataclasses.replace(i, build=dataclasses.replace(i.build, context=move(i.build.context)))
        if i.build is not None else i
        for i in lab.images
    )
    solution = lab.solution
    if solution is not None and solution.script is not None:
        solution = dataclasses.replace(solution, script=move(solution.script))
    containers = tuple(
        dataclasses.replace(c, mounts=tuple(move_mount(m) for m in c.mounts))
        for c in lab.containers
    )
    return dataclasses.replace(
        lab, folder=folder, path=move(lab.path), images=images, containers=containers,
        instructions=move(lab.instructions) if lab.instructions is not None else None,
        solution=solution,
    )
