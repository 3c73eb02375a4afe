"""The learner's state folder: one small JSON file per lab instance, never lost on a crash.

Where: ``LABUP_STATE_DIR``, else ``$XDG_STATE_HOME/labup``, else ``~/.local/state/labup``; the
files are ``labs/<lab key>.<instance>.json``. What: per check, the hint levels the learner saw
and whether ``labup solve`` made it pass; per lab, the last check's score and when it ran.

Every write goes to a temporary file in the same folder, is flushed to disk (``fsync``) and
renamed over the old one (``os.replace``, atomic on POSIX): a reader, or labup after a crash or
a ``kill -9`` mid-write, finds the old version or the new one, never half of one. A read, change
and write holds an advisory lock (``flock`` on ``<file>.lock``), so two labup processes (a
``check --watch`` and a ``hint`` in another terminal) never lose each other's changes.

On an inventory host the state lives on that host (the learner runs labup there):
:class:`RemoteStore` reads and writes it over the target's SFTP channel, in
``vars.labup_state_dir`` or ``~/.local/state/labup`` of the SSH login.
"""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from labspec.errors import UserInputError
from provisioner.engine.sftp_files import makedirs, write_text

if TYPE_CHECKING:
    from paramiko import SFTPClient

STATE_VERSION = 1
REMOTE_DEFAULT = "~/.local/state/labup"


def state_dir() -> Path:
    """``LABUP_STATE_DIR``, else ``$XDG_STATE_HOME/labup``, else ``~/.local/state/labup``."""
    override = os.environ.get("LABUP_STATE_DIR")
    if override:
        return Path(override).expanduser()
    xdg = os.environ.get("XDG_STATE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "state") / "labup"


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class CheckState:
    """One check, as the learner met it."""

    hints: int = 0  # hint levels shown so far
    solved: bool = False  # passes because `labup solve` made it pass
    status: str = ""  # at the last check
    first_passed: str = ""  # when it first passed (UTC, ISO 8601)


@dataclass
class LabRecord:
    """One lab instance of one learner: the checks, and the last run's grade."""

    lab: str
    instance: str
    lab_id: int | None = None
    title: str = ""
    learner: str = ""
    host: str = ""
    variant: dict[str, Any] = field(default_factory=dict)
    last_checked: str = ""
    score: float = 0.0
    total: float = 0.0
    passed: int = 0  # task checks passing at the last check
    objectives: int = 0  # task checks of the lab
    checks: dict[str, CheckState] = field(default_factory=dict)

    def check(self, check_id: str) -> CheckState:
        return self.checks.setdefault(check_id, CheckState())

    @property
    def hints_used(self) -> int:
        return sum(c.hints for c in self.checks.values())

    @property
    def solved(self) -> list[str]:
        return sorted(k for k, c in self.checks.items() if c.solved)

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["version"] = STATE_VERSION
        return doc

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> LabRecord:
        known = {k: doc[k] for k in cls.__dataclass_fields__ if k in doc and k != "checks"}
        record = cls(**known)
        for cid, raw in (doc.get("checks") or {}).items():
            if isinstance(raw, dict):
                fields = CheckState.__dataclass_fields__
                record.checks[str(cid)] = CheckState(**{k: v for k, v in raw.items()
                                                        if k in fields})
        return record


def record_name(lab: str, instance: str) -> str:
    return f"{lab}.{instance}.json"


class Store(Protocol):
    """Where one learner's records are: this machine's state folder, or an inventory host's."""

    @property
    def where(self) -> str:
        """The folder, for messages."""
        ...

    def read(self, lab: str, instance: str) -> LabRecord:
        """The record (a new, empty one when there is none)."""
        ...

    def update(self, lab: str, instance: str, change: Callable[[LabRecord], None]) -> LabRecord:
        """Read, ``change(record)``, write back atomically; the record as written."""
        ...


class LocalStore:
    """The state folder on this machine (see the module docstring)."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = (folder or state_dir()) / "labs"

    @property
    def where(self) -> str:
        return str(self.folder)

    def path(self, lab: str, instance: str) -> Path:
        return self.folder / record_name(lab, instance)

    def read(self, lab: str, instance: str) -> LabRecord:
        return _parse(self.path(lab, instance), lab, instance)

    def update(self, lab: str, instance: str, change: Callable[[LabRecord], None]) -> LabRecord:
        path = self.path(lab, instance)
        with self._locked(path):
            record = _parse(path, lab, instance)
            change(record)
            write_atomic(path, json.dumps(record.to_dict(), indent=1, sort_keys=True) + "\n")
        return record

    def records(self) -> list[LabRecord]:
        """Every record in the folder, by lab then instance."""
        if not self.folder.is_dir():
            return []
        found = []
        for path in sorted(self.folder.glob("*.json")):
            lab, _, rest = path.name.partition(".")
            found.append(_parse(path, lab, rest.removesuffix(".json")))
        return sorted(found, key=lambda r: (r.lab_id if r.lab_id is not None else 10**6, r.lab,
                                            r.instance))

    def remove(self, lab: str, instance: str | None = None) -> list[str]:
        """Forget a lab (one instance, or all of them); the instances removed."""
        removed = []
        for path in sorted(self.folder.glob(f"{lab}.*.json")) if self.folder.is_dir() else []:
            inst = path.name[len(lab) + 1 : -len(".json")]
            if instance is None or inst == instance:
                with self._locked(path):
                    path.unlink(missing_ok=True)
                path.with_name(path.name + ".lock").unlink(missing_ok=True)
                removed.append(inst)
        return removed

    @contextlib.contextmanager
    def _locked(self, path: Path) -> Iterator[None]:
        try:
            self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as e:
            raise UserInputError(
                f"cannot use the learner state folder {self.folder}: {e.strerror or e}",
                hint="set LABUP_STATE_DIR to a folder you can write to",
            ) from e
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: the atomic rename still holds
            yield
            return
        with open(path.with_name(path.name + ".lock"), "a") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that ``path`` is always the old or the new text, whole."""
    _clean_temporaries(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise UserInputError(
            f"cannot write the learner state {path}: {e.strerror or e}",
            hint="set LABUP_STATE_DIR to a folder you can write to",
        ) from e
    with contextlib.suppress(OSError):  # the rename itself, on disk (POSIX folders)
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _clean_temporaries(path: Path) -> None:
    """Temporary files a killed labup left (their process is gone)."""
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        pid = tmp.name[len(path.name) + 2 : -len(".tmp")]
        if pid.isdigit() and not _alive(int(pid)):
            tmp.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _parse(path: Path, lab: str, instance: str) -> LabRecord:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return LabRecord(lab=lab, instance=instance)
    except OSError as e:
        raise UserInputError(f"cannot read the learner state {path}: {e.strerror or e}") from e
    return _decode(text, lab, instance, str(path))


def _decode(text: str, lab: str, instance: str, where: str) -> LabRecord:
    try:
        doc = json.loads(text)
        if not isinstance(doc, dict):
            raise ValueError("not an object")
        return LabRecord.from_dict(doc)
    except (ValueError, TypeError) as e:
        raise UserInputError(
            f"the learner state {where} is damaged ({e})",
            hint=f"labup never writes half a file (was it edited?); `labup progress --reset "
            f"{lab} --instance {instance}` forgets it and starts afresh",
        ) from e


class RemoteStore:
    """The state folder of an inventory host, over the target's SFTP channel."""

    def __init__(self, sftp: SFTPClient, base: str | None = None, host: str = "") -> None:
        self.sftp = sftp
        root = base or REMOTE_DEFAULT
        if root == "~" or root.startswith("~/"):
            home = sftp.normalize(".")
            root = posixpath.join(home, root[2:]) if root != "~" else home
        self.folder = posixpath.join(root, "labs")
        self.host = host

    @property
    def where(self) -> str:
        return f"{self.host}:{self.folder}"

    def read(self, lab: str, instance: str) -> LabRecord:
        path = posixpath.join(self.folder, record_name(lab, instance))
        try:
            with self.sftp.open(path, "r") as fh:
                text = fh.read().decode("utf-8")
        except FileNotFoundError:
            return LabRecord(lab=lab, instance=instance)
        except (OSError, UnicodeDecodeError) as e:
            raise UserInputError(f"cannot read the learner state {self.host}:{path}: {e}") from e
        return _decode(text, lab, instance, f"{self.host}:{path}")

    def update(self, lab: str, instance: str, change: Callable[[LabRecord], None]) -> LabRecord:
        """Read, change and write the record. The write is a new file under a name of its own
        (created exclusively: never an existing file or a link) renamed over the record, so
        several labup runs writing one home (an NFS home shared by classroom machines) each
        leave a whole record, never a missing one."""
        record = self.read(lab, instance)
        change(record)
        path = posixpath.join(self.folder, record_name(lab, instance))
        try:
            makedirs(self.sftp, self.folder, mode=0o700)
            write_text(self.sftp, path, json.dumps(record.to_dict(), indent=1, sort_keys=True)
                       + "\n")
        except OSError as e:
            raise UserInputError(f"cannot write the learner state {self.host}:{path}: {e}") from e
        return record
