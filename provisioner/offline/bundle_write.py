"""Write an offline course bundle: lab folders, ONE docker save of their images, a manifest."""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import posixpath
import tarfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from labspec.errors import EngineError
from labspec.model import Lab
from provisioner.offline.bundle_format import (
    IMAGES_PREFIX,
    LABS_PREFIX,
    MANIFEST_NAME,
    Bundle,
    BundledImage,
    BundledLab,
    BundleError,
    Manifest,
    Member,
)

_SKIP_NAMES = {"__pycache__", ".git", ".pytest_cache", ".mypy_cache", ".ruff_cache"}

WriteProgress = Callable[[str, int], None]  # (what is being done, bytes written so far)




class _HashingReader:
    """Wraps a readable stream; counts and hashes what is read through it."""

    def __init__(self, raw: IO[bytes], on_read: Callable[[int], None] | None = None) -> None:
        self.raw = raw
        self.digest = hashlib.sha256()
        self.size = 0
        self._on_read = on_read

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.digest.update(data)
        self.size += len(data)
        if self._on_read is not None:
            self._on_read(len(data))
        return data


def lab_image_refs(lab: Lab) -> list[str]:
    """Every image a lab needs on the target: pulled and container images, and the bases of
    the Dockerfiles in its folder (builds run on the target from the bundled lab files)."""
    from provisioner.offline.recipes import images_for_lab

    return images_for_lab(lab)


def _lab_files(lab: Lab) -> Iterator[tuple[Path, str]]:
    """(path, member name) of every file of the lab folder, sorted; symlinks must stay inside."""
    folder = lab.folder.resolve()
    prefix = LABS_PREFIX + folder.name
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(part in _SKIP_NAMES for part in rel.parts) or path.suffix == ".pyc":
            continue
        if path.is_symlink() and not path.resolve().is_relative_to(folder):
            raise BundleError(f"{path}: symlink leads outside the lab folder {folder}")
        if path.is_file():
            yield path, f"{prefix}/{rel.as_posix()}"


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("labup")
    except PackageNotFoundError:
        return "unknown"


def write_bundle(
    client: Any,
    labs: Sequence[Lab],
    output: str | Path,
    *,
    images: Sequence[str] = (),
    progress: WriteProgress | None = None,
) -> Manifest:
    """Write a bundle of ``labs`` (plus extra image refs) to ``output`` and verify it.

    ``client`` is a docker SDK client of the engine holding the images. Every image must be
    present there; the error lists the missing ones. Returns the manifest written.
    """
    output = Path(output)
    api = client.api
    refs: dict[str, list[str]] = {}  # ref -> keys of the labs that need it
    lab_refs: dict[str, list[str]] = {}
    folders: dict[str, Path] = {}
    for lab in labs:
        folder = lab.folder.resolve()
        other = folders.setdefault(folder.name, folder)
        if other != folder:
            raise BundleError(f"two labs have folders named {folder.name}: {other} and {folder}")
        lab_refs[lab.key] = lab_image_refs(lab)
        for ref in lab_refs[lab.key]:
            refs.setdefault(ref, []).append(lab.key)
    for ref in images:
        refs.setdefault(ref, [])
    inspected = _inspect_all(api, list(refs))

    output.parent.mkdir(parents=True, exist_ok=True)
    part = output.with_name(output.name + ".part")
    members: dict[str, Member] = {}
    written = 0

    def count(n: int) -> None:
        nonlocal written
        written += n
        if progress is not None:
            progress("writing", written)

    try:
        with part.open("wb") as raw_out, tarfile.open(
            fileobj=raw_out, mode="w", format=tarfile.PAX_FORMAT
        ) as out:
            bundled_labs = [_add_lab(out, lab, lab_refs[lab.key], members, count) for lab in labs]
            save_manifest: list[dict[str, Any]] = []
            if refs:
                save_manifest = _add_saved_images(api, out, list(refs), members, count)
            bundled_images = _match_images(inspected, refs, save_manifest)
            manifest = Manifest(
                created=_now(),
                labup_version=_version(),
                labs=tuple(bundled_labs),
                images=tuple(bundled_images),
                members=members,
            )
            data = json.dumps(manifest.to_json(), indent=1).encode()
            info = tarfile.TarInfo(MANIFEST_NAME)
            info.size = len(data)
            info.mtime = int(_dt.datetime.now(_dt.UTC).timestamp())
            info.mode = 0o644
            out.addfile(info, io.BytesIO(data))
        if progress is not None:
            progress("verifying", written)
        with Bundle.open(part) as check:
            check.verify()
        part.replace(output)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return manifest


def _inspect_all(api: Any, refs: Sequence[str]) -> dict[str, dict[str, Any]]:
    import docker.errors

    found: dict[str, dict[str, Any]] = {}
    missing: list[str] = []
    for ref in refs:
        try:
            found[ref] = api.inspect_image(ref)
        except docker.errors.ImageNotFound:
            missing.append(ref)
        except docker.errors.APIError as e:
            raise EngineError(f"cannot inspect image {ref}: {e.explanation or e}") from e
    if missing:
        raise BundleError(
            f"{len(missing)} image(s) the bundle needs are not on this engine: "
            + ", ".join(missing),
            hint="prepare them first (`labup images prepare`), then bundle again",
        )
    return found


def _add_lab(
    out: tarfile.TarFile,
    lab: Lab,
    refs: Sequence[str],
    members: dict[str, Member],
    count: Callable[[int], None],
) -> BundledLab:
    folder = lab.folder.resolve()
    prefix = LABS_PREFIX + folder.name
    for path, name in _lab_files(lab):
        info = out.gettarinfo(str(path), arcname=name)
        if not info.isfile():  # a symlink inside the folder: store what it points to
            info = tarfile.TarInfo(name)
            info.size = path.stat().st_size
            info.mode = path.stat().st_mode & 0o777
            info.mtime = int(path.stat().st_mtime)
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        with path.open("rb") as handle:
            reader = _HashingReader(handle, count)
            out.addfile(info, reader)
        members[name] = Member(name, "file", reader.size, reader.digest.hexdigest())
    spec = lab.path.resolve()
    spec_name = (
        f"{prefix}/{spec.relative_to(folder).as_posix()}" if spec.is_relative_to(folder) else ""
    )
    if spec_name not in members:
        raise BundleError(f"{lab.path}: the spec file is not inside the lab folder {folder}")
    return BundledLab(
        key=lab.key,
        id=lab.id,
        name=lab.name,
        title=lab.title,
        folder=prefix,
        spec=spec_name,
        images=tuple(refs),
    )


def _add_saved_images(
    api: Any,
    out: tarfile.TarFile,
    refs: Sequence[str],
    members: dict[str, Member],
    count: Callable[[int], None],
) -> list[dict[str, Any]]:
    """Stream ONE ``docker save`` of all refs into the bundle under images/."""
    import docker.errors

    try:
        response = api._get(api._url("/images/get"), params={"names": list(refs)}, stream=True)
        api._raise_for_status(response)
    except docker.errors.APIError as e:
        raise EngineError(f"docker save failed: {e.explanation or e}") from e
    save_manifest: list[dict[str, Any]] | None = None
    try:
        with tarfile.open(fileobj=response.raw, mode="r|") as saved:
            for entry in saved:
                name = IMAGES_PREFIX + entry.name.removeprefix("./").rstrip("/")
                info = tarfile.TarInfo(name)
                info.mode, info.mtime, info.type = entry.mode, entry.mtime, entry.type
                if entry.isdir():
                    out.addfile(info)
                    members[name] = Member(name, "dir")
                elif entry.issym():
                    info.linkname = entry.linkname
                    out.addfile(info)
                    target = posixpath.normpath(
                        posixpath.join(posixpath.dirname(name), entry.linkname)
                    )
                    members[name] = Member(name, "symlink", target=target)
                elif entry.isfile():
                    handle = saved.extractfile(entry)
                    if handle is None:
                        raise EngineError(f"docker save produced an unreadable member {entry.name}")
                    if entry.name == "manifest.json":
                        data = handle.read()
                        save_manifest = json.loads(data)
                        handle = io.BytesIO(data)
                    info.size = entry.size
                    reader = _HashingReader(handle, count)
                    out.addfile(info, reader)
                    members[name] = Member(name, "file", reader.size, reader.digest.hexdigest())
                else:
                    raise EngineError(f"docker save produced an unexpected member {entry.name}")
    except (tarfile.TarError, OSError, json.JSONDecodeError) as e:
        raise EngineError(f"reading docker save's output failed: {e}") from e
    finally:
        response.close()
    if not isinstance(save_manifest, list):
        raise EngineError("docker save's output has no manifest.json")
    return save_manifest


def _match_images(
    inspected: Mapping[str, Mapping[str, Any]],
    refs: Mapping[str, Sequence[str]],
    save_manifest: Sequence[Mapping[str, Any]],
) -> list[BundledImage]:
    by_hex: dict[str, Mapping[str, Any]] = {}
    for entry in save_manifest:
        config = str(entry["Config"])
        by_hex[posixpath.basename(config).removesuffix(".json")] = entry
    images: dict[str, BundledImage] = {}
    for ref, info in inspected.items():
        image_id = str(info["Id"])
        found = by_hex.get(image_id.split(":", 1)[-1])
        if found is None:
            raise EngineError(f"docker save did not include {ref} ({image_id[:19]})")
        previous = images.get(image_id)
        tags = (*previous.tags, ref) if previous else (ref,)
        labs = tuple(dict.fromkeys((*(previous.labs if previous else ()), *refs[ref])))
        images[image_id] = BundledImage(
            id=image_id,
            tags=tags,
            repo_digests=tuple(info.get("RepoDigests") or ()),
            size=int(info.get("Size") or 0),
            config=IMAGES_PREFIX + str(found["Config"]),
            layers=tuple(IMAGES_PREFIX + str(x) for x in found["Layers"]),
            save_entry=dict(found),
            labs=labs,
        )
    return list(images.values())


