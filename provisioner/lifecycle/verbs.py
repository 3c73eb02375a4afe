"""The lifecycle of a lab instance on one engine: plan, up, down, reset, status.

Each function takes the engine (dependency injection: the same code runs on a remote host) and a
reporter, and returns a result object with ``as_dict()`` for ``--json``. The steps of each
command are named sequences (``UP_STEPS`` in :mod:`provisioner.lifecycle.apply`); cleanup runs in
``finally``. The fleet calls these per host.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING, Any

from labspec.errors import EngineError, LabupError
from labspec.model import Lab
from provisioner.engine import labels as L
from provisioner.engine.protocol import DEFAULT_PARALLEL
from provisioner.lifecycle.planner import Plan, PlanEngine, make_plan
from provisioner.lifecycle.progress import Reporter

if TYPE_CHECKING:  # imported where used: a no-op up never loads apply, destroy or threads
    from provisioner.checks.results import CheckRun
    from provisioner.engine.protocol import Engine
    from provisioner.lifecycle.destroy import DownResult
    from provisioner.lifecycle.instances import InstanceStatus

def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%S") + "-" + os.urandom(3).hex()


@dataclass
class UpResult:
    lab: str
    instance: str
    run_id: str
    plan: Plan
    ok: bool = True
    noop: bool = False
    seconds: float = 0.0
    error: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    checks: CheckRun | None = None  # when env checks ran
    cleaned_up: DownResult | None = None

    def as_dict(self) -> dict[str, Any]:
        checks = self.checks.to_dict() if self.checks is not None else None
        return {
            "lab": self.lab,
            "instance": self.instance,
            "run_id": self.run_id,
            "ok": self.ok,
            "noop": self.noop,
            "seconds": round(self.seconds, 3),
            "error": self.error,
            "plan": self.plan.as_dict(),
            "events": self.events,
            "warnings": self.warnings,
            "checks": checks,
            "cleaned_up": self.cleaned_up.as_dict() if self.cleaned_up else None,
        }


class UpFailed(LabupError):
    """``up`` failed; carries the result (what was cleaned up) for --json."""

    def __init__(self, cause: LabupError, result: UpResult) -> None:
        self.cause = cause
        self.result = result
        self.exit_code = cause.exit_code
        super().__init__(cause.message, hint=cause.hint)


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt (main thread only), so cleanup runs for both."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def plan(engine: PlanEngine, lab: Lab, *, instance: str = L.DEFAULT_INSTANCE) -> Plan:
    """What ``up`` would do, without changing anything."""
    return make_plan(engine, lab, instance=instance)


def up(
    engine: Engine,
    lab: Lab,
    *,
    instance: str = L.DEFAULT_INSTANCE,
    reporter: Reporter,
    keep_on_failure: bool = False,
    parallel: int = DEFAULT_PARALLEL,
    timeout: float = 120.0,
    checks: bool = True,
    settle: float = 0.1,
    interrupt: threading.Event | None = None,
) -> UpResult:
    """Converge the lab instance to its spec; on failure remove what this run created.

    Raises :class:`UpFailed` (a LabupError) when anything fails, after cleaning up, unless
    ``keep_on_failure``. A second call with nothing changed does nothing and says so.
    ``settle``: a container of this run that is not running this long after the last start
    fails the run (it "exited at once"). ``interrupt``: set by the caller on Ctrl-C (a
    fleet's, for every host): the run stops at its next step or wait and cleans up.
    """
    t0 = time.monotonic()
    run_id = new_run_id()
    the_plan = make_plan(engine, lab, instance=instance)
    result = UpResult(lab.key, instance, run_id, the_plan)
    if the_plan.is_noop:
        result.noop = True
        where = lab.key if instance == L.DEFAULT_INSTANCE else f"{lab.key} (instance {instance})"
        reporter.info(f"{where}: up to date, nothing to do")
    else:
        from provisioner.lifecycle.apply import UP_STEPS, ApplyContext, Cancelled, restore_parked
        from provisioner.lifecycle.destroy import rollback

        for change in the_plan.changes:
            if change.action in ("replace", "remove"):
                reporter.info(change.text().replace("  ", " ").strip())
        ctx = ApplyContext(engine, lab, the_plan, instance, reporter, run_id,
                           parallel=parallel, timeout=timeout, settle=settle,
                           interrupt=interrupt)
        failure: BaseException | None = None
        try:
            with sigterm_as_interrupt():
                for _name, step in UP_STEPS:
                    step(ctx)
        except KeyboardInterrupt as e:
            ctx.cancel.set()
            failure = e
        except LabupError as e:
            ctx.cancel.set()
            failure = e
        finally:
            if failure is not None and not keep_on_failure:
                result.cleaned_up = rollback(engine, lab.key, instance, run_id, reporter=reporter)
                restore_parked(ctx)
                if result.cleaned_up.removed or result.cleaned_up.left:
                    reporter.warn("up failed: removed what this run created ("
                                  + _count(result.cleaned_up.removed) + ")")
        if failure is not None:
            cause = failure if isinstance(failure, LabupError) else Cancelled("interrupted")
            _redact(cause, lab)
            result.ok = False
            result.error = str(cause)
            _finish(result, reporter, t0)
            if keep_on_failure:
                reporter.warn("--keep-on-failure: what this run created is left for inspection")
            raise UpFailed(cause, result) from failure
    if checks:
        result.checks = run_env_checks(engine, lab, instance=instance)
        if result.checks is not None and not result.checks.ok:
            result.ok = False
            result.error = "environment checks failed"
    _finish(result, reporter, t0)
    return result


def _redact(error: LabupError, lab: Lab) -> None:
    """An engine's error may quote what it was given (an env value): no secret in it."""
    from labspec.redact import redactor

    secret = redactor(lab)
    if secret:
        error.message = secret(error.message)
        error.hint = secret(error.hint) if error.hint else error.hint
        error.args = (secret(str(error.args[0])),) if error.args else error.args
        if isinstance(error, EngineError):
            error.detail = secret(error.detail)


def _count(resources: list[tuple[str, str]]) -> str:
    """``2 containers, 1 network`` for a list of (kind, name)."""
    kinds = Counter(kind for kind, _ in resources)
    return ", ".join(f"{n} {kind}{'' if n == 1 else 's'}" for kind, n in kinds.items()) or "nothing"


def _finish(result: UpResult, reporter: Reporter, t0: float) -> None:
    result.seconds = time.monotonic() - t0
    result.events = [e.as_dict() for e in reporter.events]
    result.warnings = [text for level, text in reporter.messages if level == "warning"]


def run_env_checks(engine: Engine, lab: Lab, *, instance: str) -> CheckRun | None:
    """Run the lab's ``stage: env`` checks; None when the lab has none."""
    if not any(c.stage == "env" for c in lab.checks):
        return None
    from provisioner.checks import run_checks

    return run_checks(engine, lab, instance=instance, stages=("env",), parallel=8)


def down(
    engine: Engine,
    lab_key: str,
    instance: str | None = L.DEFAULT_INSTANCE,
    *,
    volumes: bool = False,
    reporter: Reporter,
    parallel: int = DEFAULT_PARALLEL,
    origin: str | None = None,
) -> DownResult:
    """Remove the instance's containers and networks (and volumes with ``volumes=True``).
    ``origin``: the spec's (see :mod:`provisioner.lifecycle.identity`); another spec's
    resources under the same key are then refused, not removed."""
    from provisioner.lifecycle.destroy import down as _down

    with sigterm_as_interrupt():
        return _down(engine, lab_key, instance, volumes=volumes, reporter=reporter,
                     parallel=parallel, origin=origin)


def reset(
    engine: Engine,
    lab: Lab,
    *,
    instance: str = L.DEFAULT_INSTANCE,
    reporter: Reporter,
    keep_on_failure: bool = False,
    parallel: int = DEFAULT_PARALLEL,
    timeout: float = 120.0,
    checks: bool = True,
    prepare: Callable[[], Lab] | None = None,
    interrupt: threading.Event | None = None,
) -> tuple[DownResult, UpResult]:
    """Back to the clean state of a fresh ``up``: down with volumes, then up. ``prepare``
    runs between the two, once the lab's containers are gone, and gives the lab to bring up
    (over SSH: the learner's copy of the lab folder made the lab's again, read-write folders
    included, which no container can race while none runs)."""
    from provisioner.lifecycle.identity import origin_of

    removed = down(engine, lab.key, instance, volumes=True, reporter=reporter, parallel=parallel,
                   origin=origin_of(lab))
    if not removed.ok:
        names = ", ".join(n for _, n, _ in removed.left)
        raise LabupError(f"reset could not remove {names}; not bringing the lab up again")
    if prepare is not None:
        lab = prepare()
    if interrupt is not None and interrupt.is_set():
        from provisioner.lifecycle.apply import Cancelled

        raise Cancelled("interrupted")
    result = up(engine, lab, instance=instance, reporter=reporter,
                keep_on_failure=keep_on_failure, parallel=parallel, timeout=timeout,
                checks=checks, interrupt=interrupt)
    return removed, result


def status(
    engine: PlanEngine, lab_key: str | None = None, instance: str | None = None
) -> list[InstanceStatus]:
    """Lab instances on the engine, each container's state and health."""
    from provisioner.lifecycle.instances import status as _status

    return _status(engine, lab_key, instance)
