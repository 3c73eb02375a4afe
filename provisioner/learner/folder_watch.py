"""What wakes ``labup check --watch`` in the lab folder: a file written, created, removed or
renamed anywhere under it.

inotify on Linux (through ``ctypes``, no dependency), one watch per folder, new folders added
as they appear; ``.git``, ``__pycache__``, editor swap files and labup's own state folder (when
it lies inside) are left out. Elsewhere, or when inotify is unavailable, a scan of the folder's
file sizes and times every 2 s. Either way a thread blocks (in ``select``) and puts a
:class:`~provisioner.learner.triggers.Trigger` on the watch's queue.
"""

from __future__ import annotations

import contextlib
import os
import queue
import struct
import threading
from pathlib import Path

from provisioner.learner.triggers import Trigger

IGNORED_PARTS = frozenset({".git", "__pycache__", ".pytest_cache", ".mypy_cache", "node_modules"})

_IN_MODIFY, _IN_ATTRIB, _IN_CLOSE_WRITE = 0x2, 0x4, 0x8
_IN_MOVED_FROM, _IN_MOVED_TO, _IN_CREATE, _IN_DELETE = 0x40, 0x80, 0x100, 0x200
_IN_ISDIR, _IN_NONBLOCK, _IN_CLOEXEC = 0x40000000, 0o4000, 0o2000000
_MASK = (_IN_CLOSE_WRITE | _IN_ATTRIB | _IN_MOVED_FROM | _IN_MOVED_TO | _IN_CREATE | _IN_DELETE)
MAX_FOLDERS = 500
POLL_SECONDS = 2.0


def _relative(path: Path, folder: Path) -> Path | None:
    try:
        return path.resolve().relative_to(folder.resolve())
    except (ValueError, OSError):
        return None


def _ignored(rel: Path) -> bool:
    name = rel.name
    return (any(part in IGNORED_PARTS for part in rel.parts) or name.endswith(("~", ".swp",
            ".swx", ".tmp")) or name.startswith(".#") or name == "4913")


class FolderWatch:
    """A thread that queues a trigger when a file under ``folder`` changes."""

    def __init__(self, folder: Path, out: queue.Queue[Trigger],
                 ignore: tuple[Path, ...] = ()) -> None:
        self.folder = folder
        self.out = out
        # folders labup itself writes to (the learner state, when it lies in the lab folder)
        self.ignore = tuple(p for p in (_relative(i, folder) for i in ignore) if p is not None)
        self._stop = threading.Event()
        self._fd = -1
        self._wake_r, self._wake_w = os.pipe()
        self._dirs: dict[int, Path] = {}
        self._before: dict[str, tuple[int, int]] = {}
        self.mode = "inotify"
        self.thread = threading.Thread(target=self._run, name="labup-folder", daemon=True)

    def start(self) -> FolderWatch:
        self._fd = self._inotify()
        if self._fd < 0:
            self.mode = "poll"
            self._before = self._snapshot()  # now: a change right after start() counts
        self.thread.start()
        return self

    def _inotify(self) -> int:
        import sys

        if not sys.platform.startswith("linux"):
            return -1
        try:
            import ctypes
            import ctypes.util

            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            fd = int(libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC))
        except (OSError, AttributeError):
            return -1
        if fd < 0:
            return -1
        self._libc = libc
        for folder in self._folders():
            self._add(fd, folder)
        return fd

    def _folders(self) -> list[Path]:
        found = [self.folder]
        for root, dirs, _ in os.walk(self.folder):
            dirs[:] = [d for d in dirs if d not in IGNORED_PARTS
                       and not self._ours(Path(root, d).relative_to(self.folder))]
            found += [Path(root) / d for d in dirs]
            if len(found) > MAX_FOLDERS:
                break
        return found[:MAX_FOLDERS]

    def _add(self, fd: int, folder: Path) -> None:
        wd = int(self._libc.inotify_add_watch(fd, os.fsencode(folder), _MASK))
        if wd >= 0:
            self._dirs[wd] = folder

    def _run(self) -> None:
        if self._fd >= 0:
            self._run_inotify()
        else:
            self._run_poll()

    def _run_inotify(self) -> None:
        import select

        while not self._stop.is_set():
            ready, _, _ = select.select([self._fd, self._wake_r], [], [])
            if self._wake_r in ready or self._stop.is_set():
                return
            try:
                data = os.read(self._fd, 65536)
            except BlockingIOError:
                continue
            except OSError:
                return
            changed = self._parse(data)
            if changed:
                self.out.put(Trigger("folder", ", ".join(sorted(changed)[:3])))

    def _parse(self, data: bytes) -> set[str]:
        changed: set[str] = set()
        offset = 0
        while offset + 16 <= len(data):
            wd, mask, _cookie, size = struct.unpack_from("iIII", data, offset)
            raw = data[offset + 16 : offset + 16 + size].rstrip(b"\0")
            offset += 16 + size
            folder = self._dirs.get(wd)
            if folder is None:
                continue
            path = folder / os.fsdecode(raw) if raw else folder
            with contextlib.suppress(ValueError):
                rel = path.relative_to(self.folder)
                if _ignored(rel) or self._ours(rel):
                    continue
                if mask & _IN_ISDIR and mask & (_IN_CREATE | _IN_MOVED_TO):
                    self._add(self._fd, path)  # a new folder: watch it too
                changed.add(rel.as_posix() or ".")
        return changed

    def _run_poll(self) -> None:
        before = self._before
        while not self._stop.wait(POLL_SECONDS):
            now = self._snapshot()
            changed = {k for k in before.keys() | now.keys() if before.get(k) != now.get(k)}
            before = now
            if changed:
                self.out.put(Trigger("folder", ", ".join(sorted(changed)[:3])))

    def _snapshot(self) -> dict[str, tuple[int, int]]:
        stamps: dict[str, tuple[int, int]] = {}
        for root, dirs, files in os.walk(self.folder):
            dirs[:] = [d for d in dirs if d not in IGNORED_PARTS]
            for name in files:
                path = Path(root) / name
                rel = path.relative_to(self.folder)
                if _ignored(rel) or self._ours(rel):
                    continue
                with contextlib.suppress(OSError):
                    info = path.stat()
                    stamps[rel.as_posix()] = (info.st_size, info.st_mtime_ns)
        return stamps

    def _ours(self, rel: Path) -> bool:
        return any(rel == i or i in rel.parents for i in self.ignore)

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        self.thread.join(timeout=5)
        for fd in (self._fd, self._wake_r, self._wake_w):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
