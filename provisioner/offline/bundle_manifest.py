"""The bundle manifest: its records, and a strict reader that trusts nothing in it.

A bundle may come from anyone, so :meth:`Manifest.from_json` checks every field for its type
and range before anything uses it: whole numbers are JSON integers (``1e999`` and ``true`` are
not sizes), member names are clean relative paths under ``labs/`` or ``images/`` (no ``..``,
no absolute path, no empty or ``.`` part), lab folders are one path part, image IDs are
``sha256:`` digests and tags are image references. :func:`parse_manifest_bytes` bounds the
manifest's size and refuses ``NaN``/``Infinity`` and nesting too deep to parse, so every
damaged or hostile manifest is a :class:`BundleError` (exit 2), never a traceback.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from labspec.errors import UserInputError

FORMAT = "labup-bundle/1"
MANIFEST_NAME = "labup-bundle.json"
IMAGES_PREFIX = "images/"
LABS_PREFIX = "labs/"
MAX_MANIFEST_BYTES = 64 << 20  # a course of thousands of files is a few MB
MAX_MEMBER_BYTES = 1 << 44  # 16 TiB: any real layer is smaller
MAX_NAME = 1024  # characters in a member name
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_KEY = re.compile(r"^[a-z0-9][a-z0-9-]{0,60}$")


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

    def load_entry(self) -> dict[str, Any]:
        """The ``manifest.json`` entry a docker-load stream gets for this image: its config
        and layers, and NO tags (``RepoTags`` is null). Whatever the bundle's copy of docker's
        entry says, the engine tags nothing itself; labup then applies exactly ``tags``."""
        return {
            "Config": self.config.removeprefix(IMAGES_PREFIX),
            "RepoTags": None,
            "Layers": [layer.removeprefix(IMAGES_PREFIX) for layer in self.layers],
        }


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
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise BundleError(
                f"{source}: not a labup bundle manifest (format {found!r}, expected {FORMAT!r})"
            )
        reader = _Reader(source)
        try:
            return reader.manifest(data)
        except _Bad as e:
            raise BundleError(f"{source}: the bundle manifest is damaged ({e})") from None

    @property
    def images_bytes(self) -> int:
        """Bytes of image data stored in the bundle (shared layers counted once)."""
        return sum(m.size for m in self.members.values() if m.name.startswith(IMAGES_PREFIX))


def parse_manifest_bytes(raw: bytes, *, source: str) -> Manifest:
    """The manifest from its bytes: bounded size, plain JSON, nesting Python can parse."""
    if len(raw) > MAX_MANIFEST_BYTES:
        raise BundleError(
            f"{source}: the manifest is {len(raw)} bytes (limit {MAX_MANIFEST_BYTES}): "
            "not a bundle labup wrote"
        )

    def constant(name: str) -> Any:
        raise ValueError(f"{name} is not a JSON number")

    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=constant)
    except (UnicodeDecodeError, ValueError) as e:  # JSONDecodeError is a ValueError
        raise BundleError(
            f"{source}: the manifest is not valid JSON: the bundle is corrupt ({e})"
        ) from None
    except RecursionError:
        raise BundleError(
            f"{source}: the manifest is nested too deeply to be a labup manifest: "
            "the bundle is corrupt or hostile"
        ) from None
    return Manifest.from_json(data, source=source)


def check_member_name(name: str) -> str | None:
    """Why ``name`` cannot be a bundle member (None when it can): a clean relative path
    under ``labs/`` or ``images/``, each part a real name."""
    if not name or len(name) > MAX_NAME:
        return "empty or too long"
    if "\x00" in name or "\\" in name:
        return "holds a NUL or a backslash"
    if name.startswith("/"):
        return "is absolute"
    if not name.startswith((LABS_PREFIX, IMAGES_PREFIX)):
        return "is outside labs/ and images/"
    parts = name.split("/")
    if any(part in ("", ".", "..") for part in parts) or posixpath.normpath(name) != name:
        return "is not a clean path (empty, '.' or '..' parts)"
    if len(parts) < 2:
        return "names a top folder"
    return None


class _Bad(Exception):
    """One field of the manifest is wrong; the message names it."""


class _Reader:
    """Typed access to the manifest's JSON, naming the field that is wrong."""

    def __init__(self, source: str) -> None:
        self.source = source

    @staticmethod
    def obj(value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise _Bad(f"{where}: expected an object, found {type(value).__name__}")
        return value

    @staticmethod
    def text(value: Any, where: str, *, optional: bool = False) -> str:
        if value is None and optional:
            return ""
        if not isinstance(value, str) or len(value) > 64 * 1024:
            raise _Bad(f"{where}: expected a string, found {type(value).__name__}")
        return value

    @staticmethod
    def whole(value: Any, where: str, *, limit: int = MAX_MEMBER_BYTES) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Bad(f"{where}: expected a whole number, found {value!r:.40}")
        if not 0 <= value <= limit:
            raise _Bad(f"{where}: {value} is out of range (0..{limit})")
        return value

    def texts(self, value: Any, where: str, *, optional: bool = True) -> tuple[str, ...]:
        if value is None and optional:
            return ()
        if not isinstance(value, list):
            raise _Bad(f"{where}: expected a list, found {type(value).__name__}")
        return tuple(self.text(v, f"{where}[{i}]") for i, v in enumerate(value))

    def name(self, value: Any, where: str) -> str:
        name = self.text(value, where)
        why = check_member_name(name)
        if why is not None:
            raise _Bad(f"{where}: member name {name!r:.80} {why}")
        return name

    def member(self, name: str, value: Any) -> Member:
        where = f"members[{name!r:.80}]"
        self.name(name, where)
        m = self.obj(value, where)
        kind = m.get("type")
        if kind == "file":
            digest = self.text(m.get("sha256"), f"{where}.sha256")
            if not _HEX64.match(digest):
                raise _Bad(f"{where}.sha256: not a sha256 digest")
            return Member(name, "file", self.whole(m.get("size"), f"{where}.size"), digest)
        if name.startswith(LABS_PREFIX):
            raise _Bad(f"{where}: lab folders hold files only, not a {kind!r}")
        if kind == "dir":
            return Member(name, "dir")
        if kind == "symlink":
            target = self.name(m.get("target"), f"{where}.target")
            if not target.startswith(IMAGES_PREFIX):
                raise _Bad(f"{where}.target: a link in images/ points into images/ only")
            return Member(name, "symlink", target=target)
        raise _Bad(f"{where}.type: {kind!r:.40} is not file, dir or symlink")

    def lab(self, value: Any, i: int) -> BundledLab:
        where = f"labs[{i}]"
        x = self.obj(value, where)
        key = self.text(x.get("key"), f"{where}.key")
        if not _KEY.match(key):
            raise _Bad(f"{where}.key: {key!r:.60} is not a lab key")
        folder = self.name(x.get("folder"), f"{where}.folder")
        if not folder.startswith(LABS_PREFIX) or folder.count("/") != 1:
            raise _Bad(f"{where}.folder: {folder!r:.80} is not labs/<one folder>")
        spec = self.name(x.get("spec"), f"{where}.spec")
        if not spec.startswith(folder + "/"):
            raise _Bad(f"{where}.spec: {spec!r:.80} is not inside {folder}")
        raw_id = x.get("id")
        return BundledLab(
            key=key,
            id=None if raw_id is None else self.whole(raw_id, f"{where}.id", limit=999),
            name=self.text(x.get("name"), f"{where}.name"),
            title=self.text(x.get("title"), f"{where}.title", optional=True),
            folder=folder,
            spec=spec,
            images=self.refs(x.get("images"), f"{where}.images"),
        )

    def refs(self, value: Any, where: str) -> tuple[str, ...]:
        from labspec.semantic import valid_image_reference

        refs = self.texts(value, where)
        for i, ref in enumerate(refs):
            if not valid_image_reference(ref):
                raise _Bad(f"{where}[{i}]: {ref!r:.80} is not an image reference")
        return refs

    def image(self, value: Any, i: int) -> BundledImage:
        where = f"images[{i}]"
        x = self.obj(value, where)
        image_id = self.text(x.get("id"), f"{where}.id")
        if not image_id.startswith("sha256:") or not _HEX64.match(image_id[7:]):
            raise _Bad(f"{where}.id: {image_id!r:.80} is not a sha256 image ID")
        config = self.name(x.get("config"), f"{where}.config")
        layers = tuple(
            self.name(v, f"{where}.layers[{j}]")
            for j, v in enumerate(self.texts(x.get("layers"), f"{where}.layers", optional=False))
        )
        for name in (config, *layers):
            if not name.startswith(IMAGES_PREFIX):
                raise _Bad(f"{where}: {name!r:.80} is not under images/")
        entry = self.obj(x.get("save_entry"), f"{where}.save_entry")
        if entry.get("Config") != config.removeprefix(IMAGES_PREFIX) or entry.get("Layers") != [
            layer.removeprefix(IMAGES_PREFIX) for layer in layers
        ]:
            raise _Bad(f"{where}.save_entry: its Config and Layers are not the image's")
        return BundledImage(
            id=image_id,
            tags=self.refs(x.get("tags"), f"{where}.tags"),
            repo_digests=self.texts(x.get("repo_digests"), f"{where}.repo_digests"),
            size=self.whole(x.get("size"), f"{where}.size"),
            config=config,
            layers=layers,
            save_entry=dict(entry),
            labs=self.texts(x.get("labs"), f"{where}.labs"),
        )

    def manifest(self, data: dict[str, Any]) -> Manifest:
        members_raw = self.obj(data.get("members"), "members")
        members = {str(name): self.member(str(name), m) for name, m in members_raw.items()}
        labs_raw, images_raw = data.get("labs"), data.get("images")
        if not isinstance(labs_raw, list) or not isinstance(images_raw, list):
            raise _Bad("labs and images: expected lists")
        return Manifest(
            created=self.text(data.get("created"), "created", optional=True),
            labup_version=self.text(data.get("labup_version"), "labup_version", optional=True),
            labs=tuple(self.lab(x, i) for i, x in enumerate(labs_raw)),
            images=tuple(self.image(x, i) for i, x in enumerate(images_raw)),
            members=members,
        )
