"""Built labs remembered between commands, so a no-op ``labup up`` does not parse YAML again.

A lab is built (YAML, templates, schema, semantic rules) once per content: the key is a digest
of the spec's path and bytes, the ``--set`` values, the host and instance it was rendered for, and a
fingerprint of labspec itself (the size and time of each of its source files and schemas). The
entry also lists every file and folder the built lab points at (the spec, its folder,
instructions, solution, build contexts, Dockerfiles, bind sources) with their size and time:
when any of them changed, or appeared or went away, the entry is not used and the lab is
built again. Failures are never remembered.

Entries are pickles under ``~/.cache/labup/labs`` (``LABUP_CACHE_DIR``; ``LABUP_NO_CACHE=1``
turns this off). A pickle runs code when read, so the folder is used only when it belongs to
the user running labup and nobody else can write to it; otherwise labup builds every time.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import stat
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from labspec.model import Lab

FORMAT = b"labup-lab-cache-1"
MAX_ENTRIES = 256  # the oldest go when a write finds more (a self-test copies its lab each run)
_FINGERPRINT: list[bytes] = []  # computed once per process


def cache_folder() -> Path | None:
    """The folder of remembered labs, or None when caching is off or the folder is unsafe."""
    if os.environ.get("LABUP_NO_CACHE") == "1":
        return None
    base = os.environ.get("LABUP_CACHE_DIR")
    if base:
        root = Path(base)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        root = (Path(xdg) if xdg else Path.home() / ".cache") / "labup"
    folder = root / "labs"
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        info = folder.stat()
    except OSError:
        return None
    if info.st_uid != os.getuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return None
    return folder


def fingerprint() -> bytes:
    """labspec's own code and schemas, by name, size and time: a change forgets every entry."""
    if not _FINGERPRINT:
        from labspec.resources import schemas_dir

        digest = hashlib.sha256(FORMAT)
        here = Path(__file__).parent
        for path in [*sorted(here.glob("*.py")), *sorted(schemas_dir().glob("*.json"))]:
            digest.update(_stamp(path).encode())
        _FINGERPRINT.append(digest.digest())
    return _FINGERPRINT[0]


def _stamp(path: Path) -> str:
    try:
        info = path.stat()
    except OSError:
        return f"{path}\0-"
    return f"{path}\0{info.st_size}\0{info.st_mtime_ns}\0{stat.S_IFMT(info.st_mode)}"


def key(
    path: Path,
    spec: bytes,
    *,
    params: Mapping[str, str] | None,
    host: Mapping[str, Any] | None,
    instance: str | None,
    allow_unsafe: bool,
    learner: str = "",
) -> str:
    context = json.dumps(
        {"path": str(path), "params": dict(params or {}), "host": host, "instance": instance,
         "unsafe": allow_unsafe, "learner": learner},
        sort_keys=True, default=str,
    )
    return hashlib.sha256(fingerprint() + spec + b"\0" + context.encode()).hexdigest()


def dependencies(lab: Lab) -> list[Path]:
    """Every path of this machine the built lab relies on."""
    paths: set[Path] = {lab.path, lab.folder}
    if lab.instructions is not None:
        paths.add(lab.instructions)
    if lab.solution is not None and lab.solution.script is not None:
        paths.add(lab.solution.script)
    if lab.solution is not None:
        paths.update(step.script for step in lab.solution.keyed if step.script is not None)
    for image in lab.images:
        if image.build is not None:
            paths.add(image.build.context)
            paths.add(image.build.context / image.build.dockerfile)
    for c in lab.containers:
        for m in c.mounts:
            if m.type == "bind" and m.source:
                paths.add(Path(m.source))
    return sorted(paths)


def load(
    path: Path,
    build: Callable[[], Lab],
    *,
    params: Mapping[str, str] | None,
    host: Mapping[str, Any] | None,
    instance: str | None,
    allow_unsafe: bool,
    learner: str = "",
) -> Lab:
    """The lab at ``path``: remembered when nothing it depends on changed, else ``build()``."""
    folder = cache_folder()
    try:
        spec = path.read_bytes()
    except OSError:
        return build()  # the builder reports the file as the user named it
    if folder is None:
        return build()
    entry = folder / key(path, spec, params=params, host=host, instance=instance,
                         allow_unsafe=allow_unsafe, learner=learner)
    found = _read(entry)
    if found is not None:
        return found
    lab = build()
    _write(entry, lab, dependencies(lab))
    _prune(folder)
    return lab


def _read(entry: Path) -> Lab | None:
    try:
        raw = entry.read_bytes()
    except OSError:
        return None
    try:
        lab, stamps = pickle.loads(raw)  # noqa: S301 - our own file, in a folder only we write
    except Exception:  # a damaged entry is a miss, never an error
        return None
    if not isinstance(lab, Lab) or not isinstance(stamps, list):
        return None
    if any(_stamp(Path(p)) != s for p, s in stamps):
        return None
    return lab


def _write(entry: Path, lab: Lab, deps: Iterable[Path]) -> None:
    stamps = [(str(p), _stamp(p)) for p in deps]
    try:
        data = pickle.dumps((lab, stamps), protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError):
        return  # a lab that does not pickle is simply built every time
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=entry.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, entry)
        tmp = None
    except OSError:
        pass  # best effort: the next command builds the lab again
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def _prune(folder: Path) -> None:
    try:
        entries = [e for e in os.scandir(folder) if e.is_file() and not e.name.startswith(".")]
        if len(entries) <= MAX_ENTRIES:
            return
        entries.sort(key=lambda e: e.stat().st_mtime_ns)
        for old in entries[: len(entries) - MAX_ENTRIES]:
            Path(old.path).unlink(missing_ok=True)
    except OSError:
        return

