"""The one runner: an action on one engine, run on a single target inline or on many at once.

Every verb (up, reset, plan, down, status, check, doctor, test, bundle load) is an
:data:`Action`: a function of a :class:`TargetContext` (the target, its live engine, a progress
reporter) that returns a :class:`Done`. :func:`run_targets` runs it

- on a single target (``--host URL`` or the default engine) inline, in the main thread: the
  progress lines of the console reporter, an error is raised to the CLI's one handler (its exit
  code, Ctrl-C cleaning up as it goes), ``--json`` prints the action's document;
- on the hosts of an inventory in a bounded pool: one connection per host, one live line per
  host, a host that fails never stops the others, a summary table, the failed hosts remembered
  for ``--only-failed``; ``--json`` prints every host's document.
"""

from __future__ import annotations

import contextlib
import functools
import json
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from labspec.errors import EXIT_FAILED, EngineUnreachable, LabupError
from provisioner.engine.protocol import Engine
from provisioner.lifecycle.progress import Reporter
from provisioner.targets.outcome import (
    ActionFailed,
    Done,
    FleetCancelled,
    FleetFailed,
    FleetResult,
    FleetView,
    HostOutcome,
    HostSkipped,
    NullView,
    Status,
)
from provisioner.targets.select import Targets
from provisioner.targets.target import Target

if TYPE_CHECKING:
    from provisioner.engine.gpus import GpuProbe
    from provisioner.engine.protocol import HostShell

R = TypeVar("R")

__all__ = [
    "Action", "ActionFailed", "Done", "FleetCancelled", "FleetFailed", "FleetResult",
    "FleetView", "HostOutcome", "HostSkipped", "NullView", "Status", "TargetContext",
    "finish", "run_fleet", "run_targets",
]


@dataclass
class TargetContext:
    """What an action receives: the target, its engine, a reporter, and a way to say its step."""

    target: Target
    engine: Engine
    reporter: Reporter
    _report: Callable[[str], None] = lambda text: None
    _progress: Callable[[str], None] | None = None  # transient lines; default: the step
    cancel: threading.Event = field(default_factory=threading.Event)
    gpu_probe: GpuProbe | None = None  # what placement found, asked once per run
    _step: str = "connected"
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

    def progress(self, text: str) -> None:
        """A transient progress line (``loading [####------] 40%``): the host's line in a
        fleet, a line rewritten in place on one engine's terminal."""
        if self._progress is None:
            self.step(text)
        else:
            self._progress(text)

    @property
    def current_step(self) -> str:
        return self._step

    @property
    def ssh(self) -> HostShell | None:
        """The target's SSH connection (commands on the host, SFTP), or None when local."""
        return self.engine.ssh_session()


Action = Callable[[TargetContext], Done[R]]
Connector = Callable[[Target], Engine]


def connect_target(target: Target, *, probes: bool = False) -> Engine:
    return target.connect(probes=probes)


def run_targets(
    targets: Targets,
    action: Action[Any],
    *,
    command: str,
    json_out: bool = False,
    quiet: bool = False,
    summary: bool = True,
    raise_errors: bool = True,
    connector: Connector | None = None,
    probes: bool = False,
) -> FleetResult:
    """Run ``action`` on every target: inline for one engine, bounded-parallel for a fleet.
    ``probes``: the action runs probe checks (see :func:`provisioner.engine.connect.connect`).

    For one engine an error is raised (after ``--json`` printed what the action had done),
    unless ``raise_errors=False``: then it is in the outcome, as for a fleet. For a fleet the
    summary table is printed (``summary=False``: the command renders its own) and the failed
    hosts are remembered next to the inventory; the caller decides the exit (:func:`finish`).
    """
    connect = connector or functools.partial(connect_target, probes=probes)
    if not targets.fleet:
        return _run_inline(targets.first, action, connect, command=command, json_out=json_out,
                           quiet=quiet, raise_errors=raise_errors)
    from provisioner.targets.failed_hosts import record_failed
    from provisioner.targets.live_view import make_view, print_summary

    names = [t.name for t in targets.items]
    stream = sys.stderr if json_out else sys.stdout
    with make_view(names, title=command, stream=stream) as view:
        result = run_fleet(targets.items, action, parallel=targets.parallel, view=view,
                           connector=connect)
    if targets.inventory is not None:
        record_failed(targets.inventory.path, command, result.failed,
                      [o.host for o in result.outcomes])
    if json_out:
        doc = {**result.as_dict(), "command": command}
        sys.stdout.write(json.dumps(doc, indent=2, default=str) + "\n")
    elif summary:
        print_summary(result, command=command, stream=sys.stdout)
    return result


def finish(result: FleetResult) -> None:
    """Exit 1 naming the failed hosts of a fleet run (after its summary was printed)."""
    if result.failed:
        raise FleetFailed(
            f"{len(result.failed)} of {len(result.outcomes)} host(s) failed: "
            f"{', '.join(result.failed)}",
            hint="fix them and rerun just those with --only-failed",
        )


def emit_json(document: Mapping[str, Any]) -> None:
    sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")
    sys.stdout.flush()


def _run_inline(
    target: Target,
    action: Action[Any],
    connect: Connector,
    *,
    command: str,
    json_out: bool,
    quiet: bool,
    raise_errors: bool,
) -> FleetResult:
    from provisioner.lifecycle.progress import ConsoleReporter, QuietReporter

    t0 = time.monotonic()
    reporter: Reporter = QuietReporter() if (json_out or quiet) else ConsoleReporter()
    ctx: TargetContext | None = None
    line = TransientLine(sys.stderr if not (json_out or quiet) else None)
    try:
        engine = connect(target)
        try:
            ctx = TargetContext(target=target, engine=engine, reporter=reporter,
                                _progress=line.show)
            done = action(ctx)
        finally:
            line.clear()
            with contextlib.suppress(Exception):  # closing a dead connection hides nothing
                engine.close()
    except LabupError as e:
        partial = e.partial if isinstance(e, ActionFailed) else None
        if json_out and partial is not None:
            emit_json(partial.document)
        if raise_errors:
            raise (e.cause if isinstance(e, ActionFailed) else e) from e
        status: Status = "unreachable" if isinstance(e, EngineUnreachable) else "failed"
        if isinstance(e, HostSkipped):
            status = "skipped"
        outcome = HostOutcome(target.name, status, time.monotonic() - t0,
                              ctx.current_step if ctx else "connecting", _host_message(e),
                              partial, e.exit_code)
        return FleetResult((outcome,), outcome.seconds)
    if json_out:
        emit_json(done.document)
    outcome = HostOutcome(target.name, "ok", time.monotonic() - t0, "done", done.summary, done)
    return FleetResult((outcome,), outcome.seconds)


class TransientLine:
    """One line rewritten in place on a terminal (nothing when not a terminal)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream if stream is not None and stream.isatty() else None
        self._shown = False

    def show(self, text: str) -> None:
        if self._stream is not None:
            self._stream.write("\r\033[K" + text[:110])
            self._stream.flush()
            self._shown = True

    def clear(self) -> None:
        if self._stream is not None and self._shown:
            self._stream.write("\r\033[K")
            self._stream.flush()


def run_fleet(
    targets: Sequence[Target],
    action: Action[Any],
    *,
    parallel: int = 10,
    view: FleetView | None = None,
    connector: Connector | None = None,
) -> FleetResult:
    """Run ``action`` on every target, at most ``parallel`` at once; never stop on a failure."""
    shown: FleetView = view or NullView()
    connect = connector or connect_target
    started = time.monotonic()
    cancel = threading.Event()
    if not targets:
        return FleetResult(outcomes=(), seconds=0.0)
    from concurrent.futures import ThreadPoolExecutor

    workers = max(1, min(parallel, len(targets)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fleet") as ex:
        futures = [ex.submit(_run_one, t, action, connect, shown, cancel) for t in targets]
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
    target: Target,
    action: Action[Any],
    connect: Connector,
    view: FleetView,
    cancel: threading.Event,
) -> HostOutcome:
    from provisioner.lifecycle.progress import QuietReporter

    t0 = time.monotonic()
    if cancel.is_set():
        return HostOutcome(target.name, "failed", 0.0, "queued", "interrupted before it started")
    view.started(target.name)
    view.step(target.name, "connecting")
    engine: Engine | None = None
    ctx: TargetContext | None = None

    def done(status: Status, message: str, result: Done[Any] | None = None,
             code: int = 0) -> HostOutcome:
        last = ctx.current_step if ctx is not None else "connecting"
        outcome = HostOutcome(target.name, status, time.monotonic() - t0, last, message,
                              result, code)
        view.finished(outcome)
        return outcome

    try:
        try:
            engine = connect(target)
        except LabupError as e:
            return done("unreachable", _host_message(e), code=e.exit_code)
        except Exception as e:  # a transport error nobody wrapped: this host only, never the run
            return done("unreachable", f"cannot connect: {type(e).__name__}: {e}",
                        code=EXIT_FAILED)
        ctx = TargetContext(target=target, engine=engine, reporter=QuietReporter(),
                            _report=lambda s: view.step(target.name, s), cancel=cancel)
        ctx.reporter = step_reporter(ctx.step)
        view.step(target.name, "connected")
        try:
            result = action(ctx)
        except HostSkipped as e:
            return done("skipped", _host_message(e))
        except EngineUnreachable as e:
            return done("unreachable", _host_message(e), code=e.exit_code)
        except ActionFailed as e:  # what was done rides along (``--json``, reports)
            return done("failed", _host_message(e), e.partial, e.exit_code)
        except LabupError as e:
            return done("failed", _host_message(e), code=e.exit_code)
        except Exception as e:  # a bug or an SDK error nobody wrapped: this host only
            return done("failed", f"unexpected {type(e).__name__}: {e}", code=EXIT_FAILED)
        return done("ok", result.summary, result)
    finally:
        if engine is not None:
            # closing a dead connection must not hide the outcome
            with contextlib.suppress(Exception):
                engine.close()


def step_reporter(step: Callable[[str], None]) -> Reporter:
    """A lifecycle reporter whose events become the host's current step in the live view."""
    from provisioner.lifecycle.progress import CallbackReporter, Event

    def show(event: Event) -> None:
        if event.kind == "message":
            step(str(event.detail or event.action))
        elif event.kind == "progress":
            step(f"{event.name}: {event.action}")
        else:
            step(event.text())

    return CallbackReporter(show)


def _host_message(e: LabupError) -> str:
    """The error for a host's line: its first line carries the hint (the live line and the
    summary show that one), the message's other lines follow (``--json``, reports)."""
    first, *rest = e.message.splitlines() or [""]
    if e.hint:
        first = f"{first} (hint: {e.hint})"
    return "\n".join([first, *rest])
