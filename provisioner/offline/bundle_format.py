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
engine lacks. This module holds the format: the manifest, opening and verifying.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from labspec.errors import UserInputError

FORMAT = "labup-bundle/1"
MANIFEST_NAME = "labup-bundle.json"
IMAGES_PREFIX = "images/"
LABS_PREFIX = "labs/"
CHUNK = 1 << 20
_SKIP_NAMES = {"__pycache__", ".git", ".pytest_cache", ".mypy_cache", ".ruff_cache"}

WriteProgress = Callable[[str, int], None]  # (what is being written, bytes so far)


class BundleError(UserInputError):
    """A bundle is missing, truncated, corrupt, or cannot be built from what is on the engine."""


@dataclass(frozen=True)
class Member:
    """One member of the bundle, as the manifest records it."""

    name: str
    type: Literal["file", "symlink", "dir"]
    size: int = 0
    sha256: str = ""
    target: str = ""  # for symlinks: the member it points to (resolved, bundle-relative)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"type": self.type}
        if self.type == "file":
            data.update(size=self.size, sha256=self.sha256)
        if self.type == "symlink":
            data["target"] = self.target
        return data


@dataclass(frozen=True)
class BundledImage:
    id: str  # sha256:...
    tags: tuple[str, ...]  # the references the labs use, e.g. "python:3.11-slim"
    repo_digests: tuple[str, ...]
    size: int  # the image's size on the engine (uncompressed), as docker reports it
    config: str  # member name of the image config
    layers: tuple[str, ...]  # member names of the layer tars, base first
    save_entry: Mapping[str, Any]  # docker save's manifest.json entry for this image
    labs: tuple[str, ...] = ()  # keys of the labs that need it

    @property
    def short_id(self) -> str:
        return self.id.split(":", 1)[-1][:12]


@dataclass(frozen=True)
class BundledLab:
    key: str
    id: int | None
    name: str
    title: str
    folder: str  # member prefix, e.g. "labs/05-networking"
    spec: str  # member name of the spec file
    images: tuple[str, ...] = ()


@dataclass(frozen=True)
class Manifest:
    created: str
    labup_version: str
    labs: tuple[BundledLab, ...]
    images: tuple[BundledImage, ...]
    members: Mapping[str, Member] = field(default_factory=dict)
    format: str = FORMAT

    def to_json(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "created": self.created,
            "labup_version": self.labup_version,
            "labs": [
                {
                    "key": lab.key,
                    "id": lab.id,
                    "name": lab.name,
                    "title": lab.title,
                    "folder": lab.folder,
                    "spec": lab.spec,
                    "images": list(lab.images),
                }
                for lab in self.labs
            ],
            "images": [
                {
                    "id": img.id,
                    "tags": list(img.tags),
                    "repo_digests": list(img.repo_digests),
                    "size": img.size,
                    "config": img.config,
                    "layers": list(img.layers),
                    "save_entry": dict(img.save_entry),
                    "labs": list(img.labs),
                }
                for img in self.images
            ],
            "members": {name: m.to_json() for name, m in sorted(self.members.items())},
        }

    @classmethod
    def from_json(cls, data: Any, *, source: str) -> Manifest:
        """Parse a manifest; any structural problem is a :class:`BundleError`."""
        try:
            if not isinstance(data, dict) or data.get("format") != FORMAT:
                found = data.get("format") if isinstance(data, dict) else type(data).__name__
                raise BundleError(
                    f"{source}: not a labup bundle manifest (format {found!r}, expected {FORMAT!r})"
                )
            members = {
                str(name): Member(
                    name=str(name),
                    type=m["type"],
                    size=int(m.get("size", 0)),
                    sha256=str(m.get("sha256", "")),
                    target=str(m.get("target", "")),
                )
                for name, m in data["members"].items()
            }
            labs = tuple(
                BundledLab(
                    key=str(x["key"]),
                    id=None if x.get("id") is None else int(x["id"]),
                    name=str(x["name"]),
                    title=str(x.get("title", "")),
                    folder=str(x["folder"]),
                    spec=str(x["spec"]),
                    images=tuple(str(i) for i in x.get("images", ())),
                )
                for x in data["labs"]
            )
            images = tuple(
                BundledImage(
                    id=str(x["id"]),
                    tags=tuple(str(t) for t in x["tags"]),
                    repo_digests=tuple(str(d) for d in x.get("repo_digests", ())),
                    size=int(x["size"]),
                    config=str(x["config"]),
                    layers=tuple(str(la) for la in x["layers"]),
                    save_entry=dict(x["save_entry"]),
                    labs=tuple(str(k) for k in x.get("labs", ())),
                )
                for x in data["images"]
            )
            return cls(
                created=str(data.get("created", "")),
                labup_version=str(data.get("labup_version", "")),
                labs=labs,
                images=images,
                members=members,
            )
        except BundleError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise BundleError(f"{source}: the bundle manifest is damaged ({e!r})") from e

    @property
    def images_bytes(self) -> int:
        """Bytes of image data stored in the bundle (shared layers counted once)."""
        return sum(m.size for m in self.members.values() if m.name.startswith(IMAGES_PREFIX))


# ---------------------------------------------------------------------------------------
# Reading and verifying
# ---------------------------------------------------------------------------------------


class Bundle:
    """An open bundle file. Opening reads the manifest and checks that every member it lists
    is present with its recorded size and type; :meth:`verify` checks the sha256 sums."""

    def __init__(self, path: Path, tar: tarfile.TarFile, manifest: Manifest) -> None:
        self.path = path
        self.tar = tar
        self.manifest = manifest

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
            manifest = _read_manifest(tar, path)
            _check_structure(tar, manifest, path)
        except BaseException:
            tar.close()
            raise
        return cls(path, tar, manifest)

    def __enter__(self) -> Bundle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.tar.close()

    def chunks(self, name: str) -> Iterator[bytes]:
        """The data of file member ``name``, in chunks."""
        handle = self.tar.extractfile(name)
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
            digest = hashlib.sha256()
            size = 0
            for chunk in self.chunks(name):
                digest.update(chunk)
                size += len(chunk)
            if size != member.size or digest.hexdigest() != member.sha256:
                raise BundleError(
                    f"{self.path}: checksum mismatch in {name}: the bundle is corrupt "
                    f"(expected sha256 {member.sha256[:16]}..., {member.size} bytes; "
                    f"found {digest.hexdigest()[:16]}..., {size} bytes)",
                    hint="copy the bundle again, or rebuild it with `labup bundle`",
                )
            checked += size
        return checked

    def extract_labs(self, dest: str | Path) -> list[Path]:
        """Write the bundle's lab folders into ``dest`` (``dest/05-networking/lab.yaml``...),
        checksums checked first; returns the folders. ``LABUP_LABS_DIR=dest labup 5`` then
        runs the bundled labs."""
        dest = Path(dest)
        names = [n for n in self.manifest.members if n.startswith(LABS_PREFIX)]
        self.verify(names)
        members = [
            self.tar.getmember(n).replace(name=n.removeprefix(LABS_PREFIX), deep=False)
            for n in sorted(names)
        ]
        try:
            dest.mkdir(parents=True, exist_ok=True)
            self.tar.extractall(dest, members=members, filter="data")
        except (OSError, tarfile.TarError) as e:
            raise BundleError(f"cannot write the lab folders under {dest}: {e}") from e
        return [dest / lab.folder.removeprefix(LABS_PREFIX) for lab in self.manifest.labs]

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


def _read_manifest(tar: tarfile.TarFile, path: Path) -> Manifest:
    try:
        names = tar.getnames()
    except (tarfile.TarError, OSError, EOFError) as e:
        raise BundleError(f"{path}: the bundle is truncated or damaged ({e})") from e
    if MANIFEST_NAME not in names:
        last = names[-1] if names else "nothing"
        raise BundleError(
            f"{path}: no {MANIFEST_NAME} inside: the bundle is truncated (it is written last; "
            f"the last member found is {last}) or is not a labup bundle",
            hint="copy the bundle again (compare its size with the original)",
        )
    handle = tar.extractfile(MANIFEST_NAME)
    if handle is None:
        raise BundleError(f"{path}: {MANIFEST_NAME} is not a file")
    try:
        with handle:
            data = json.loads(handle.read().decode("utf-8"))
    except (tarfile.TarError, OSError, EOFError) as e:
        raise BundleError(
            f"{path}: the manifest is cut short: the bundle is truncated ({e})"
        ) from e
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BundleError(
            f"{path}: the manifest is not valid JSON: the bundle is corrupt ({e})"
        ) from e
    return Manifest.from_json(data, source=str(path))


def _check_structure(tar: tarfile.TarFile, manifest: Manifest, path: Path) -> None:
    present = {m.name: m for m in tar.getmembers()}
    for name, member in manifest.members.items():
        found = present.get(name)
        if found is None:
            raise BundleError(f"{path}: member {name} listed in the manifest is missing")
        kind = "file" if found.isfile() else "symlink" if found.issym() else "dir"
        if kind != member.type:
            raise BundleError(f"{path}: member {name} is a {kind}, the manifest says {member.type}")
        if kind == "file" and found.size != member.size:
            raise BundleError(
                f"{path}: member {name} has {found.size} bytes, the manifest says {member.size}"
            )
    extra = sorted(set(present) - set(manifest.members) - {MANIFEST_NAME})
    if extra:
        raise BundleError(f"{path}: members not in the manifest: {', '.join(extra[:5])}")
    for image in manifest.images:
        for name in (image.config, *image.layers):
            if name not in manifest.members:
                raise BundleError(f"{path}: image {image.short_id} needs {name}, not in the bundle")


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

