"""The ``docker load`` stream of a bundle's images, re-packed on the fly from its members.

A docker-save subset: a ``manifest.json`` listing only the images to send (their configs and
layers, no tags: see :meth:`BundledImage.load_entry`), then those members, a symlink kept when
its target travels too, else sent as a copy. Layers whose chain the engine has are left out.
"""

from __future__ import annotations

import json
import posixpath
import tarfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from provisioner.offline.bundle_format import IMAGES_PREFIX, Bundle, BundledImage

BLOCK = 512
LoadProgress = Callable[[int, int], None]  # (bytes sent, bytes to send)


def chain_ids(diff_ids: Sequence[str]) -> list[str]:
    """Docker's layer chain IDs for a list of diff IDs (base first)."""
    import hashlib

    chains: list[str] = []
    for diff in diff_ids:
        if not chains:
            chains.append(diff)
        else:
            chains.append("sha256:" + hashlib.sha256(f"{chains[-1]} {diff}".encode()).hexdigest())
    return chains


def diff_ids(bundle: Bundle, image: BundledImage) -> list[str]:
    from provisioner.offline.bundle_format import BundleError

    data = b"".join(bundle.chunks(bundle.resolve(image.config)))
    try:
        return [str(d) for d in json.loads(data)["rootfs"]["diff_ids"]]
    except (ValueError, KeyError, TypeError) as e:
        raise BundleError(f"{bundle.path}: image config {image.config} is damaged ({e})") from e


@dataclass(frozen=True)
class _Part:
    info: tarfile.TarInfo
    source: str | bytes | None  # member name, literal bytes, or None (no data)

    @property
    def header(self) -> bytes:
        return self.info.tobuf(format=tarfile.GNU_FORMAT, encoding="utf-8", errors="strict")

    @property
    def length(self) -> int:
        size = self.info.size if self.info.isfile() else 0
        return len(self.header) + size + (-size % BLOCK)


def _subset_parts(
    bundle: Bundle, images: Sequence[BundledImage], skip_chains: frozenset[str]
) -> tuple[list[_Part], int]:
    """The members of a docker-save tar holding ``images``; returns (parts, bytes skipped)."""
    needed: dict[str, None] = {}
    skipped_layers: set[str] = set()
    for image in images:
        needed.setdefault(image.config, None)
        chains = chain_ids(diff_ids(bundle, image)) if skip_chains else []
        for i, layer in enumerate(image.layers):
            if i < len(chains) and chains[i] in skip_chains:
                skipped_layers.add(layer)
            else:
                needed.setdefault(layer, None)
    skipped = sum(
        bundle.manifest.members[bundle.resolve(n)].size for n in skipped_layers - set(needed)
    )
    entries = [image.load_entry() for image in images]
    manifest = json.dumps(entries).encode()
    info = tarfile.TarInfo("manifest.json")
    info.size, info.mode = len(manifest), 0o644
    parts = [_Part(info, manifest)]
    for name in needed:
        member = bundle.manifest.members[name]
        out_name = name.removeprefix(IMAGES_PREFIX)
        info = tarfile.TarInfo(out_name)
        info.mode = 0o644
        if member.type == "symlink" and member.target in needed:
            info.type = tarfile.SYMTYPE
            info.linkname = posixpath.relpath(member.target, posixpath.dirname(name))
            parts.append(_Part(info, None))
            continue
        real = bundle.resolve(name)  # a symlink whose target stays behind travels as a copy
        info.size = bundle.manifest.members[real].size
        parts.append(_Part(info, real))
    return parts, skipped


class _Counter:
    def __init__(self, total: int, progress: LoadProgress | None) -> None:
        self.total = total
        self.sent = 0
        self.progress = progress

    def __call__(self, data: bytes) -> bytes:
        self.sent += len(data)
        if self.progress is not None:
            self.progress(self.sent, self.total)
        return data


def _stream(bundle: Bundle, parts: Sequence[_Part], step: _Counter) -> Iterator[bytes]:
    for part in parts:
        yield step(part.header)
        if isinstance(part.source, bytes):
            yield step(part.source)
        elif isinstance(part.source, str):
            for chunk in bundle.chunks(part.source):
                yield step(chunk)
        size = part.info.size if part.info.isfile() else 0
        if size % BLOCK:
            yield step(b"\0" * (BLOCK - size % BLOCK))
    yield step(b"\0" * (2 * BLOCK))


