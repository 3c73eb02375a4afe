"""Fan a per-host action out over the hosts of an inventory, bounded-parallel.

The runner is generic: ``run_fleet(hosts, action)`` connects to each host (one SSH connection,
reused for every API call, exec probe and SFTP transfer of that host), calls
``action(ctx)`` with a :class:`HostContext`, and closes the connection. The commands (up,
down, reset, status, check, plan, doctor) supply the action. A host that is unreachable or
fails is recorded and never stops the others; the result knows which hosts failed, and
:func:`record_failed` keeps them next to the inventory for ``--only-failed``.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from labspec.errors import EngineUnreachable, LabupError, UserInputError
from labspec.model import Host, Inventory
from provisioner.engine.protocol import Engine

Status = Literal["ok", "failed", "unreachable", "skipped"]
FAILED_FILE_SUFFIX = ".labup-failed.json"


class FleetCancelled(LabupError):
    """Ctrl-C during a fleet run: raised in each running host's next step."""


class HostSkipped(LabupError):
    """Raised by an action: this host is left out on purpose (e.g. no GPU), with the reason."""


class FleetView(Protocol):
    """What the runner tells a live view: a host started, moved to a step, finished."""

    def started(self, host: str) -> None: ...

    def step(self, host: str, text: str) -> None: ...

    def finished(self, outcome: HostOutcome) -> None: ...


class NullView:
    def started(self, host: str) -> None:
        pass

    def step(self, host: str, text: str) -> None:
        pass

    def finished(self, outcome: HostOutcome) -> None:
        pass


@dataclass(frozen=True)
class HostOutcome:
    """How one host's run ended."""

    host: str
    status: Status
    seconds: float
    step: str  # the last step reached
    message: str = ""  # one line (or a few) for the summary; the error text on failure
    result: Any = None  # what the action returned

    @property
    def ok(self) -> bool:
        return self.status in ("ok", "skipped")


@dataclass(frozen=True)
class FleetResult:
    outcomes: tuple[HostOutcome, ...]
    seconds: float

    @property
    def failed(self) -> tuple[str, ...]:
        return tuple(o.host for o in self.outcomes if not o.ok)

    @property
    def exit_code(self) -> int:
        return 0 if not self.failed else 1

    def outcome(self, host: str) -> HostOutcome:
        for o in self.outcomes:
            if o.host == host:
                return o
        raise KeyError(host)

    def as_dict(self) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 3),
            "failed": list(self.failed),
            "hosts": [
                {
                    "host": o.host,
                    "status": o.status,
                    "seconds": round(o.seconds, 3),
                    "step": o.step,
                    "message": o.message,
                }
                for o in self.outcomes
            ],
        }


@dataclass
class HostContext:
    """What an action receives: the host, its engine, and a way to report its current step."""

    host: Host
    engine: Engine
    _report: Callable[[str], None]
    _step: str = "connected"
    data: dict[str, Any] = field(default_factory=dict)
    cancel: threading.Event = field(default_factory=threading.Event)
    _cancelled: bool = False

    def step(self, text: str) -> None:
        """Tell the live view what this host is doing now (``pulling images``, ``starting web``).

        After Ctrl-C, the first step reported raises :class:`FleetCancelled`, so the host's
        command fails there and cleans up what it created (later steps, the cleanup's own,
        pass)."""
        if self.cancel.is_set() and not self._cancelled:
            self._cancelled = True
            raise FleetCancelled("interrupted (Ctrl-C)")
        self._step = text
        self._report(text)

    @property
    def current_step(self) -> str:
        return self._step

    @property
    def ssh(self) -> Any:
        """The host's :class:`provisioner.engine.ssh.SshSession` (exec probes, SFTP), or None."""
        from provisioner.engine.ssh import ssh_session_of

        client = getattr(self.engine, "client", None)
        return ssh_session_of(client) if client is not None else None


Connector = Callable[[Host], Engine]
Action = Callable[[HostContext], Any]


def connect_host(host: Host, *, timeout: float = 10.0) -> Engine:
    """One SSH connection to the host's engine, host key verified (see provisioner.engine.ssh)."""
    from provisioner.engine.docker_engine import DockerEngine
    from provisioner.engine.ssh import docker_client_over_ssh

    client = docker_client_over_ssh(
        host.url,
        key=host.key,
        known_hosts=host.known_hosts,
        timeout=timeout,
        docker_host=host.docker_host,
    )
    return DockerEngine(client, url=host.url, host_label=host.name)


def run_fleet(
    hosts: Sequence[Host],
    action: Action,
    *,
    parallel: int = 10,
    view: FleetView | None = None,
    connector: Connector | None = None,
) -> FleetResult:
    """Run ``action`` on every host, at most ``parallel`` at once; never stop on one failure."""
    if parallel < 1:
        raise UserInputError(f"--parallel must be at least 1, got {parallel}")
    shown: FleetView = view or NullView()
    connect = connector or connect_host
    started = time.monotonic()
    cancel = threading.Event()

    def one(host: Host) -> HostOutcome:
        return _run_one(host, action, connect, shown, cancel)

    if not hosts:
        return FleetResult(outcomes=(), seconds=0.0)
    workers = min(parallel, len(hosts))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fleet") as ex:
        futures = [ex.submit(one, h) for h in hosts]
        try:
            outcomes = tuple(f.result() for f in futures)
        except KeyboardInterrupt:
            # hosts not started never start; running ones fail at their next step and clean
            # up what they created (the pool waits for them on the way out)
            cancel.set()
            for f in futures:
                f.cancel()
            raise
    return FleetResult(outcomes=outcomes, seconds=time.monotonic() - started)


def _run_one(
    host: Host, action: Action, connect: Connector, view: FleetView, cancel: threading.Event
) -> HostOutcome:
    t0 = time.monotonic()
    step = "connecting"
    if cancel.is_set():
        return HostOutcome(host.name, "failed", 0.0, "queued", "interrupted before it started")
    view.started(host.name)
    view.step(host.name, step)
    engine: Engine | None = None
    ctx: HostContext | None = None

    def done(status: Status, message: str, result: Any = None) -> HostOutcome:
        last = ctx.current_step if ctx is not None else step
        outcome = HostOutcome(host.name, status, time.monotonic() - t0, last, message, result)
        view.finished(outcome)
        return outcome

    try:
        try:
            engine = connect(host)
        except LabupError as e:
            return done("unreachable", _one_line(e))
        ctx = HostContext(host=host, engine=engine, _report=lambda s: view.step(host.name, s),
                          cancel=cancel)
        view.step(host.name, "connected")
        try:
            result = action(ctx)
        except HostSkipped as e:
            return done("skipped", _one_line(e))
        except EngineUnreachable as e:
            return done("unreachable", _one_line(e))
        except LabupError as e:  # an error may carry what was done (``partial``), e.g. a report
            return done("failed", str(e), getattr(e, "partial", None))
        except Exception as e:  # a bug or an SDK error nobody wrapped: this host only
            return done("failed", f"unexpected {type(e).__name__}: {e}")
        message = result.summary() if hasattr(result, "summary") else ""
        return done("ok", str(message), result)
    finally:
        if engine is not None:
            # closing a dead connection must not hide the outcome
            with contextlib.suppress(Exception):
                engine.close()


def _one_line(e: LabupError) -> str:
    text = e.message
    return text if not e.hint else f"{text} (hint: {e.hint})"


# -- host selection ---------------------------------------------------------------------------


def select_hosts(
    inventory: Inventory,
    limit: Sequence[str] | None = None,
    *,
    only: Iterable[str] | None = None,
) -> tuple[Host, ...]:
    """The inventory's hosts, in order, narrowed by ``--limit`` (names, groups, glob patterns or
    ``label=value``, comma-separated or repeated) and by ``only`` (the last run's failures)."""
    chosen = list(inventory.hosts)
    if limit:
        wanted = _expand_limit(inventory, limit)
        chosen = [h for h in chosen if h.name in wanted]
    if only is not None:
        keep = set(only)
        chosen = [h for h in chosen if h.name in keep]
    return tuple(chosen)


def _expand_limit(inventory: Inventory, limit: Sequence[str]) -> set[str]:
    names = [h.name for h in inventory.hosts]
    wanted: set[str] = set()
    for item in limit:
        for word in (w.strip() for w in item.split(",")):
            if not word:
                continue
            if "=" in word:  # a label selector: room=b12
                key, _, value = word.partition("=")
                matches = [
                    h.name for h in inventory.hosts if str(h.labels.get(key.strip(), "")) == value
                ]
                if not matches:
                    raise UserInputError(f"--limit {word!r}: no host has the label {key}={value}")
                wanted.update(matches)
            elif word in inventory.groups:
                wanted.update(inventory.groups[word])
            elif word in names:
                wanted.add(word)
            elif any(ch in word for ch in "*?["):
                matches = fnmatch.filter(names, word)
                if not matches:
                    raise UserInputError(f"--limit {word!r} matches no host in {inventory.path}")
                wanted.update(matches)
            else:
                groups = ", ".join(sorted(inventory.groups)) or "none"
                raise UserInputError(
                    f"--limit {word!r} is neither a host nor a group of {inventory.path}",
                    hint=f"hosts: {', '.join(names)}; groups: {groups}",
                )
    return wanted


# -- --only-failed: the last run's failed hosts, in a small file next to the inventory ---------


def failed_file(inventory_path: Path) -> Path:
    """``classroom.yml`` keeps its last failures in ``.classroom.yml.labup-failed.json``."""
    return inventory_path.with_name(f".{inventory_path.name}{FAILED_FILE_SUFFIX}")


def record_failed(inventory_path: Path, command: str, result: FleetResult) -> Path | None:
    """Remember which hosts failed (an empty list when none did), per command verb and as the
    last run; None when the inventory's folder is not writable."""
    path = failed_file(inventory_path)
    entry = {
        "command": command,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "failed": list(result.failed),
        "ran": [o.host for o in result.outcomes],
    }
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
        by_verb = dict(old.get("by_command", {})) if isinstance(old, dict) else {}
    except (OSError, ValueError):
        by_verb = {}
    by_verb[_verb(command)] = entry
    doc = {**entry, "by_command": by_verb}
    try:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)
    except OSError:
        return None
    return path


def _verb(command: str) -> str:
    return command.split()[0] if command.split() else command


def load_failed(inventory_path: Path, command: str | None = None) -> tuple[str, tuple[str, ...]]:
    """(command, failed hosts) of the last recorded run of the same verb as ``command`` (``up``
    reruns what the last ``up`` left failed, even if a ``status`` ran since), else of the last
    run; a clear error when nothing is recorded."""
    path = failed_file(inventory_path)
    try:
        doc: Mapping[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        entry = doc
        if command is not None:
            entry = doc.get("by_command", {}).get(_verb(command), doc)
        failed = tuple(str(h) for h in entry["failed"])
        recorded = str(entry.get("command", "?"))
    except FileNotFoundError as e:
        raise UserInputError(
            f"--only-failed: no earlier fleet run is recorded for {inventory_path}",
            hint="run the command once without --only-failed",
        ) from e
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise UserInputError(f"--only-failed: cannot read {path}: {e}") from e
    return recorded, failed
