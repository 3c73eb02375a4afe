"""Offline course bundles: one tar with lab folders, images and a checksummed manifest.

Layout of a bundle (an uncompressed tar; layer data is already compressed or not worth it):

``labs/<folder>/...``
    every file of each lab folder (spec, instructions, build contexts, solution).
``images/...``
    the output of ONE ``docker save`` of every image the labs need, member for member, so
    layers shared between images are stored once. ``images/manifest.json`` is docker's.
``labup-bundle.json``
    the manifest, written LAST: labs, images (ID, tags, RepoDigests, size, config and layer
    members), and the size and sha256 of every other member. A truncated copy therefore has
    no manifest and is refused as such.

:func:`provisioner.offline.bundle_write.write_bundle` writes ``OUT.part``, re-reads and verifies it,
then renames it to ``OUT``. :func:`provisioner.offline.bundle_load.load_bundle_into` loads what an
engine lacks; :func:`provisioner.offline.bundle_extract.extract_labs` writes its lab folders.
The manifest and its strict reader are :mod:`provisioner.offline.bundle_manifest`; this module
opens a bundle and checks it: no member but regular files, folders and (under ``images/``)
symlinks that stay inside, no name twice, every image's ID the digest of its config.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from provisioner.offline.bundle_manifest import (
    FORMAT,
    IMAGES_PREFIX,
    LABS_PREFIX,
    MANIFEST_NAME,
    MAX_MANIFEST_BYTES,
    BundledImage,
    BundledLab,
    BundleError,
    Manifest,
    Member,
    parse_manifest_bytes,
)

__all__ = [
    "CHUNK",
    "FORMAT",
    "IMAGES_PREFIX",
    "LABS_PREFIX",
    "MANIFEST_NAME",
    "Bundle",
    "BundleError",
    "BundledImage",
    "BundledLab",
    "Manifest",
    "Member",
    "describe",
    "member_kind",
]

CHUNK = 1 << 20
MAX_MANIFEST_READ = MAX_MANIFEST_BYTES + 1  # one byte more than allowed: too big is seen
MAX_MEMBERS = 1_000_000


# ---------------------------------------------------------------------------------------
# Reading and verifying
# ---------------------------------------------------------------------------------------


class Bundle:
    """An open bundle file. Opening reads the manifest and checks that every member it lists
    is present with its recorded size and type, and nothing else is; :meth:`verify` checks
    the sha256 sums. Lab folders are written by
    :func:`provisioner.offline.bundle_extract.extract_labs`, never by tarfile."""

    def __init__(
        self,
        path: Path,
        tar: tarfile.TarFile,
        manifest: Manifest,
        entries: dict[str, tarfile.TarInfo] | None = None,
    ) -> None:
        self.path = path
        self.tar = tar
        self.manifest = manifest
        self.entries = entries if entries is not None else {m.name: m for m in tar.getmembers()}

    @classmethod
    def open(cls, path: str | Path) -> Bundle:
        path = Path(path)
        if not path.is_file():
            raise BundleError(f"{path}: no such bundle file")
        try:
            tar = tarfile.open(path, mode="r:")  # noqa: SIM115 (closed by Bundle.close)
        except (tarfile.TarError, OSError, EOFError) as e:
            raise BundleError(f"{path}: not a readable tar file ({e})") from e
        try:
            entries = _entries(tar, path)
            manifest = _read_manifest(tar, entries, path)
            _check_structure(entries, manifest, path)
        except BaseException:
            tar.close()
            raise
        return cls(path, tar, manifest, entries)

    def __enter__(self) -> Bundle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.tar.close()

    def chunks(self, name: str) -> Iterator[bytes]:
        """The data of file member ``name``, in chunks."""
        entry = self.entries.get(name)
        handle = self.tar.extractfile(entry) if entry is not None and entry.isreg() else None
        if handle is None:
            raise BundleError(f"{self.path}: member {name} has no data")
        with handle:
            while True:
                try:
                    chunk = handle.read(CHUNK)
                except (tarfile.TarError, OSError, EOFError) as e:
                    raise BundleError(
                        f"{self.path}: member {name} is cut short: the bundle is truncated ({e})",
                        hint="copy the bundle again (compare its size with the original)",
                    ) from e
                if not chunk:
                    return
                yield chunk

    def verify(self, names: Iterable[str] | None = None) -> int:
        """Check the sha256 of the given file members (default: all). Returns bytes checked.
        Raises :class:`BundleError` naming the first member whose data does not match."""
        wanted = self.manifest.members.keys() if names is None else names
        checked = 0
        for name in sorted(set(wanted)):
            member = self.manifest.members[name]
            if member.type != "file":
                continue
            data = hashlib.sha256()
            size = 0
            for chunk in self.chunks(name):
                data.update(chunk)
                size += len(chunk)
            self.check_digest(member, size, data.hexdigest())
            checked += size
        return checked

    def check_digest(self, member: Member, size: int, digest: str) -> None:
        """BundleError unless ``size`` and ``digest`` are what the manifest says of ``member``."""
        if size != member.size or digest != member.sha256:
            raise BundleError(
                f"{self.path}: checksum mismatch in {member.name}: the bundle is corrupt "
                f"(expected sha256 {member.sha256[:16]}..., {member.size} bytes; "
                f"found {digest[:16]}..., {size} bytes)",
                hint="copy the bundle again, or rebuild it with `labup bundle`",
            )

    def resolve(self, name: str) -> str:
        """Follow symlink members to the file member they end at."""
        seen = set()
        while self.manifest.members[name].type == "symlink":
            if name in seen:
                raise BundleError(f"{self.path}: symlink loop at {name}")
            seen.add(name)
            name = self.manifest.members[name].target
            if name not in self.manifest.members:
                raise BundleError(f"{self.path}: symlink points outside the bundle: {name}")
        return name


def member_kind(entry: tarfile.TarInfo) -> str:
    """``file``, ``dir`` or ``symlink``; anything else (hard link, FIFO, device, sparse or
    contiguous file) is named for what it is, and no manifest type matches it."""
    if entry.type in (tarfile.REGTYPE, tarfile.AREGTYPE) and not entry.issparse():
        return "file"
    if entry.type == tarfile.DIRTYPE:
        return "dir"
    if entry.type == tarfile.SYMTYPE:
        return "symlink"
    return {
        tarfile.LNKTYPE: "hard link",
        tarfile.FIFOTYPE: "FIFO",
        tarfile.CHRTYPE: "character device",
        tarfile.BLKTYPE: "block device",
        tarfile.CONTTYPE: "contiguous file",
    }.get(entry.type, f"member of tar type {entry.type!r}")


def _entries(tar: tarfile.TarFile, path: Path) -> dict[str, tarfile.TarInfo]:
    """Every tar member by name; a name given twice is refused (which copy would count?)."""
    entries: dict[str, tarfile.TarInfo] = {}
    try:
        for m in tar:
            if m.name in entries:
                raise BundleError(f"{path}: member {m.name!r:.200} is in the tar twice")
            if len(entries) >= MAX_MEMBERS:
                raise BundleError(f"{path}: more than {MAX_MEMBERS} members: not a labup bundle")
            entries[m.name] = m
    except (tarfile.TarError, OSError, EOFError) as e:
        raise BundleError(f"{path}: the bundle is truncated or damaged ({e})") from e
    return entries


def _read_manifest(
    tar: tarfile.TarFile, entries: dict[str, tarfile.TarInfo], path: Path
) -> Manifest:
    entry = entries.get(MANIFEST_NAME)
    if entry is None:
        last = next(reversed(entries), "nothing")
        raise BundleError(
            f"{path}: no {MANIFEST_NAME} inside: the bundle is truncated (it is written last; "
            f"the last member found is {last}) or is not a labup bundle",
            hint="copy the bundle again (compare its size with the original)",
        )
    handle = tar.extractfile(entry) if member_kind(entry) == "file" else None
    if handle is None:
        raise BundleError(f"{path}: {MANIFEST_NAME} is not a file")
    try:
        with handle:
            raw = handle.read(MAX_MANIFEST_READ)
    except (tarfile.TarError, OSError, EOFError) as e:
        raise BundleError(
            f"{path}: the manifest is cut short: the bundle is truncated ({e})"
        ) from e
    return parse_manifest_bytes(raw, source=str(path))


def _check_structure(
    entries: dict[str, tarfile.TarInfo], manifest: Manifest, path: Path
) -> None:
    for name, entry in entries.items():
        kind = member_kind(entry)
        if kind not in ("file", "dir", "symlink"):
            raise BundleError(f"{path}: member {name!r:.200} is a {kind}: a bundle holds none")
    for name, member in manifest.members.items():
        found = entries.get(name)
        if found is None:
            raise BundleError(f"{path}: member {name} listed in the manifest is missing")
        kind = member_kind(found)
        if kind != member.type:
            raise BundleError(f"{path}: member {name} is a {kind}, the manifest says {member.type}")
        if kind == "file" and found.size != member.size:
            raise BundleError(
                f"{path}: member {name} has {found.size} bytes, the manifest says {member.size}"
            )
        if kind == "symlink":
            target = os.path.normpath(os.path.join(os.path.dirname(name), found.linkname))
            if found.linkname.startswith("/") or target != member.target:
                raise BundleError(
                    f"{path}: symlink {name} points to {found.linkname!r:.200}, "
                    f"the manifest says {member.target}"
                )
    extra = sorted(set(entries) - set(manifest.members) - {MANIFEST_NAME})
    if extra:
        raise BundleError(f"{path}: members not in the manifest: {', '.join(extra[:5])}")
    for image in manifest.images:
        for name in (image.config, *image.layers):
            if name not in manifest.members:
                raise BundleError(f"{path}: image {image.short_id} needs {name}, not in the bundle")
        _check_image_id(manifest, image, path)
    for lab in manifest.labs:
        spec = manifest.members.get(lab.spec)
        if spec is None or spec.type != "file":
            raise BundleError(f"{path}: lab {lab.key}'s spec {lab.spec} is not in the bundle")


def _check_image_id(manifest: Manifest, image: BundledImage, path: Path) -> None:
    """An image's ID is the sha256 of its config: a bundle cannot name one image and carry
    another (the engine would keep the ID of what it loads, under the tags of the first)."""
    name, seen = image.config, set()
    while name in manifest.members and manifest.members[name].type == "symlink":
        if name in seen:
            break
        seen.add(name)
        name = manifest.members[name].target
    config = manifest.members.get(name)
    if config is None or config.type != "file" or image.id != "sha256:" + config.sha256:
        raise BundleError(
            f"{path}: image {image.id[:19]}... ({', '.join(image.tags)}) does not match its "
            f"config {image.config}: the bundle is corrupt or hostile",
            hint="build the bundle again with `labup bundle`",
        )


def describe(
    manifest: Manifest, *, path: Path | None = None, size: int | None = None
) -> dict[str, Any]:
    """A summary for ``labup bundle inspect --json``: labs, images, sizes."""
    lab_files: dict[str, int] = {}
    for lab in manifest.labs:
        lab_files[lab.key] = sum(
            m.size for m in manifest.members.values() if m.name.startswith(lab.folder + "/")
        )
    return {
        "path": str(path) if path else None,
        "bytes": size,
        "format": manifest.format,
        "created": manifest.created,
        "labup_version": manifest.labup_version,
        "labs": [
            {
                "key": lab.key,
                "id": lab.id,
                "name": lab.name,
                "title": lab.title,
                "files_bytes": lab_files[lab.key],
                "images": list(lab.images),
            }
            for lab in manifest.labs
        ],
        "images": [
            {
                "tags": list(img.tags),
                "id": img.id,
                "repo_digests": list(img.repo_digests),
                "size": img.size,
                "layers": len(img.layers),
                "labs": list(img.labs),
            }
            for img in manifest.images
        ],
        "images_bytes": manifest.images_bytes,
        "members": len(manifest.members),
    }

