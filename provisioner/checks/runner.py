"""Run a lab's checks: stages, ``needs``, retries until a deadline, a bounded thread pool.

Semantics (documented in docs/checks.md):
- ``wait``: a failing check is retried with backoff (0.25 s doubling to 2 s) until ``wait``
  seconds have passed since its first attempt; ``timeout`` bounds one attempt.
- ``needs``: a check starts only when every check it needs has finished; if one of them
  failed or was blocked, the check is ``blocked``; if one was skipped, it is ``skipped``.
  Needs outside the selected stages / ``only`` are pulled into the run.
- Checks run in parallel (``parallel`` workers), so the total is close to the slowest one.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import replace
from datetime import UTC, datetime

from labspec.errors import LabupError, UserInputError
from labspec.model import Check, Lab
from labspec.redact import Redactor, redactor
from provisioner.checks.context import CheckBlocked, CheckContext, shorten
from provisioner.checks.registry import get_check
from provisioner.checks.results import CheckResult, CheckRun, Outcome, blocked, failed
from provisioner.engine.labels import DEFAULT_INSTANCE
from provisioner.engine.protocol import CheckEngine

FIRST_DELAY = 0.25
MAX_DELAY = 2.0
PROBE_TYPES = frozenset({"tcp", "http", "reachable"})  # those that probe a network


def _start_agent(engine: CheckEngine) -> None:
    with contextlib.suppress(LabupError):  # a check that needs it says why, if it fails
        engine.probe_agent()


def select_checks(
    lab: Lab, *, stages: Sequence[str] = ("env", "task"), only: Sequence[str] = ()
) -> list[Check]:
    """The checks to run, in spec order: by stage and id, plus everything they need."""
    by_id = {c.id: c for c in lab.checks}
    unknown = [i for i in only if i not in by_id]
    if unknown:
        raise UserInputError(
            f"no check {', '.join(repr(i) for i in unknown)} in {lab.key}",
            hint="checks of this lab: " + (", ".join(by_id) or "none"),
        )
    wanted = {c.id for c in lab.checks if c.stage in stages and (not only or c.id in only)}
    todo = list(wanted)
    while todo:
        for need in by_id[todo.pop()].needs:
            if need in by_id and need not in wanted:
                wanted.add(need)
                todo.append(need)
    return [c for c in lab.checks if c.id in wanted]


def run_one(engine: CheckEngine, lab: Lab, check: Check, *, instance: str) -> CheckResult:
    """Run one check with its retries; never raises for a failing check."""
    ctx = CheckContext(engine, lab, instance, check.id, check.timeout)
    start = time.monotonic()
    deadline = start + max(check.wait, 0.0)
    delay = FIRST_DELAY
    attempts = 0
    while True:
        attempts += 1
        outcome = _attempt(ctx, check)
        if outcome.status not in ("fail", "blocked") or time.monotonic() + delay > deadline:
            break
        time.sleep(delay)
        delay = min(delay * 2, MAX_DELAY)
    duration = time.monotonic() - start
    message = outcome.message
    if outcome.status in ("fail", "blocked") and attempts > 1:
        message += f" (after {attempts} attempts over {duration:.1f}s)"
    secret = redactor(lab)  # command output may echo a secret: never in a result
    return CheckResult(
        id=check.id,
        type=check.type,
        stage=check.stage,
        status=outcome.status,
        message=secret(message),
        hint=secret(check.hint),
        description=secret(check.description),
        points=check.points,
        earned=check.points if outcome.status == "pass" else 0.0,
        duration=duration,
        attempts=attempts,
    )


def _attempt(ctx: CheckContext, check: Check) -> Outcome:
    try:
        func = get_check(check.type)
        return func(ctx, check.spec)
    except CheckBlocked as err:
        return blocked(shorten(str(err), 400))
    except LabupError as err:
        return failed(shorten(str(err), 400))
    except Exception as err:  # a bug in a check type must not sink the other checks
        return failed(f"internal error in check type {check.type!r}: {err!r}")


def _not_run(check: Check, status: str, message: str) -> CheckResult:
    return CheckResult(
        id=check.id,
        type=check.type,
        stage=check.stage,
        status="blocked" if status == "blocked" else "skipped",
        message=message,
        hint=check.hint,
        description=check.description,
        points=check.points,
    )


def run_checks(
    engine: CheckEngine,
    lab: Lab,
    *,
    instance: str = DEFAULT_INSTANCE,
    stages: Iterable[str] = ("env", "task"),
    parallel: int = 8,
    only: Sequence[str] = (),
) -> CheckRun:
    """Run the lab's checks of ``stages`` (or just ``only``) on ``engine`` in parallel."""
    selected = select_checks(lab, stages=tuple(stages), only=only)
    run = CheckRun(
        lab=lab.key,
        title=redactor(lab)(lab.title),
        host=engine.host_label,
        instance=instance,
        started=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    start = time.monotonic()
    done: dict[str, CheckResult] = {}
    if any(c.type in PROBE_TYPES for c in selected) and not engine.is_local:
        # the probe agent on an SSH engine's host starts while the first checks inspect
        threading.Thread(target=_start_agent, args=(engine,), daemon=True).start()
    # Start the slow checks first (those that need a probe or an exec), so the longest
    # ones are not queued behind quick inspections; results keep the spec's order.
    pending = {c.id: c for c in sorted(selected, key=lambda c: -_cost(c))}
    ids = set(pending)
    with ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="check") as pool:
        running: dict[Future[CheckResult], str] = {}
        while pending or running:
            _schedule(pending, done, ids, running, pool, engine, lab, instance)
            if not running:
                for check in pending.values():  # only a cycle of needs gets here
                    done[check.id] = _not_run(check, "blocked", "its needs form a cycle")
                pending.clear()
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                result = future.result()
                done[running.pop(future)] = result
    secret = redactor(lab)
    run.results = [_redacted(done[c.id], secret) for c in selected]
    run.duration = time.monotonic() - start
    return run


def _redacted(result: CheckResult, secret: Redactor) -> CheckResult:
    """Secret values never reach a result (hence no report, JUnit, HTML or --json)."""
    if not secret:
        return result
    return replace(result, message=secret(result.message), hint=secret(result.hint),
                   description=secret(result.description))


def _cost(check: Check) -> int:
    """A rough rank of how long a check takes: probes > execs > sockets > inspections."""
    spec = check.spec
    if check.type in ("http", "tcp", "reachable") and spec.get("from"):
        return 3
    if check.type == "file" and "volume" in spec:
        return 3
    if check.type in ("exec", "file", "volume", "gpu"):
        return 2
    if check.type in ("http", "tcp"):
        return 1
    return 0


def _schedule(
    pending: dict[str, Check],
    done: dict[str, CheckResult],
    ids: set[str],
    running: dict[Future[CheckResult], str],
    pool: ThreadPoolExecutor,
    engine: CheckEngine,
    lab: Lab,
    instance: str,
) -> None:
    """Start every pending check whose needs are done; block or skip those that cannot run."""
    changed = True
    while changed:
        changed = False
        for cid, check in list(pending.items()):
            needs = [n for n in check.needs if n in ids]
            missing = [n for n in check.needs if n not in ids]
            if not all(n in done for n in needs):
                continue
            del pending[cid]
            changed = True
            bad = [n for n in needs if done[n].status in ("fail", "blocked")]
            skipped = [n for n in needs if done[n].status == "skipped"]
            if missing:
                done[cid] = _not_run(check, "blocked", f"needs unknown check {missing[0]!r}")
            elif bad:
                done[cid] = _not_run(
                    check, "blocked", f"needs {', '.join(bad)}, which did not pass"
                )
            elif skipped:
                done[cid] = _not_run(check, "skipped", f"needs {', '.join(skipped)}, skipped")
            else:
                running[pool.submit(run_one, engine, lab, check, instance=instance)] = cid
