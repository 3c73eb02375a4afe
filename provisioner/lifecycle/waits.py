"""The waits of ``up``: a container's health, a job's completion, and the error that says why.

A wait stops at once, saying so, when the container it waits on is removed (a ``labup down``
meanwhile) or replaced by another run: a missing container is never read as "not ready yet"
until ``--timeout``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from labspec.errors import EngineError
from labspec.model import Container
from provisioner.engine import labels as L

if TYPE_CHECKING:
    from provisioner.lifecycle.apply import ApplyContext

LOG_TAIL = 15


def wait_healthy(ctx: ApplyContext, c: Container) -> None:
    assert c.healthcheck is not None
    name = ctx.name("container", c.name)
    t0 = time.monotonic()
    deadline = t0 + ctx.timeout
    last_output = ""
    while True:
        ctx.check_cancel()
        info = _still_ours(ctx, name, "become healthy")
        state = info.get("State") or {}
        health = state.get("Health") or {}
        log = health.get("Log") or []
        if log:
            last_output = str(log[-1].get("Output", "")).strip()
        status = health.get("Status")
        if status == "healthy":
            ctx.reporter.resource("container", name, "healthy", time.monotonic() - t0)
            return
        if state.get("Status") in ("exited", "dead"):
            _gone_meanwhile(ctx, name, "become healthy")
            raise container_error(ctx, name, f"exited (code {state.get('ExitCode')}) before "
                                   "its healthcheck passed", last_output)
        if status == "unhealthy":
            _gone_meanwhile(ctx, name, "become healthy")
            raise container_error(ctx, name, "is unhealthy: its healthcheck keeps failing",
                                   last_output)
        if time.monotonic() > deadline:
            raise container_error(ctx, name, f"not healthy after {ctx.timeout:g}s", last_output)
        time.sleep(0.2)


def wait_completed(ctx: ApplyContext, c: Container) -> None:
    name = ctx.name("container", c.name)
    t0 = time.monotonic()
    deadline = t0 + ctx.timeout
    while True:
        ctx.check_cancel()
        state = _still_ours(ctx, name, "complete").get("State") or {}
        if state.get("Status") in ("exited", "dead"):
            code = state.get("ExitCode")
            if code == 0:
                ctx.reporter.resource("container", name, "completed", time.monotonic() - t0)
                return
            _gone_meanwhile(ctx, name, "complete")
            raise container_error(ctx, name, f"exited with code {code} (others wait for it "
                                   "to complete successfully)")
        if time.monotonic() > deadline:
            raise container_error(ctx, name, f"did not complete within {ctx.timeout:g}s")
        time.sleep(0.2)


def _still_ours(ctx: ApplyContext, name: str, waiting_for: str) -> dict[str, Any]:
    """The container up waits on; gone (a `labup down` meanwhile) or replaced by another run,
    the wait stops at once and says so, instead of reading "not ready yet" until --timeout."""
    info = ctx.engine.inspect_container(name)
    if info is None:
        raise EngineError(
            f"was removed while up waited for it to {waiting_for} (by `labup down`, or "
            "someone else): stopping", resource=name)
    run = ((info.get("Config") or {}).get("Labels") or {}).get(L.RUN_ID)
    if run != ctx.run_id and name in {d.name for d in ctx.plan.desired.values()
                                      if d.kind == "container" and d.key in ctx.started_at}:
        raise EngineError(
            f"was replaced (by another run, {run or 'not labup'}) while up waited for it to "
            f"{waiting_for}: stopping", resource=name)
    return info


def _gone_meanwhile(ctx: ApplyContext, name: str, waiting_for: str) -> None:
    """Before a wait reports a failure: a container being removed by a `labup down` is first
    killed (it exits, its health turns unhealthy) and removed a moment later. Look again for
    a second; when it is gone, say that (else the caller reports the failure with its logs)."""
    for _ in range(10):
        time.sleep(0.1)
        if ctx.engine.inspect_container(name) is None:
            _still_ours(ctx, name, waiting_for)  # raises: "was removed while up waited..."


def container_error(ctx: ApplyContext, name: str, what: str, health: str = "") -> EngineError:
    parts = [what]
    if health:
        parts.append("last healthcheck output:\n" + _indent(health[-1500:]))
    logs = ctx.engine.logs_tail(name, LOG_TAIL)
    parts.append(f"last {LOG_TAIL} log lines:\n" + (_indent(logs) if logs else "    (no output)"))
    from labspec.redact import redactor

    return EngineError(redactor(ctx.lab)("\n  ".join(parts)), resource=name)  # logs may echo one


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


