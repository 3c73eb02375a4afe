"""The dashboard's one worker: rounds of checks on a schedule and on demand, and resets.

Everything that touches a learner's machine runs here, one job at a time, through the one
runner (:func:`provisioner.targets.runner.run_fleet`, bounded by ``--parallel``): a round of
the whole class, a re-check of one learner, a reset of one learner's lab (the ``reset``
action, then a re-check). So there are never two rounds at once, and a reset never races a
check of the same machine. Requests that arrive while a job runs wait in a short queue, and
a request already queued is not queued twice.

Each host's outcome reaches the page as soon as that host is done (the runner's live view is
the dashboard's :class:`StateView`), not at the end of the round.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import NamedTuple

from provisioner.catalog.lab_source import LabSource
from provisioner.serve.state import ClassState, ContainerView, Observed
from provisioner.targets.check_action import CheckOptions, check_action
from provisioner.targets.outcome import Done, HostOutcome
from provisioner.targets.runner import Action, Connector, TargetContext, run_fleet
from provisioner.targets.select import Targets
from provisioner.targets.target import Target

MAX_QUEUED = 64


class Job(NamedTuple):
    kind: str  # "round" (every learner), "check" or "reset" (one learner)
    host: str | None = None

    @property
    def label(self) -> str:
        return self.kind if self.host is None else f"{self.kind} {self.host}"


def observe_action(opts: CheckOptions) -> Action[Observed]:
    """The ``check`` action, plus the lab's containers and their states on that engine."""
    check = check_action(opts)

    def action(ctx: TargetContext) -> Done[Observed]:
        from provisioner.lifecycle.instances import status

        done = check(ctx)
        graded = done.value
        ctx.step("listing containers")
        found = status(ctx.engine, graded.lab.key, opts.source.instance)
        containers = tuple(
            ContainerView(c.key or c.name, c.state, c.health, c.status)
            for s in found for c in s.containers
        )
        return Done(Observed(graded.run, containers, graded.not_up), done.summary,
                    done.document)

    return action


class StateView:
    """The runner's live view, feeding the class state: a host is checking, then its result."""

    def __init__(self, state: ClassState, busy: str = "checking") -> None:
        self._state = state
        self._busy = busy

    def started(self, host: str) -> None:
        self._state.busy(host, self._busy)

    def step(self, host: str, text: str) -> None:
        pass

    def finished(self, outcome: HostOutcome) -> None:
        if self._busy == "checking":
            self._state.record(outcome)


class Worker:
    """Runs the jobs, one at a time, on a thread of its own; a round every ``every`` seconds
    (0: only on demand), the first one at once."""

    def __init__(
        self,
        state: ClassState,
        targets: Targets,
        source: LabSource,
        *,
        every: float,
        check_jobs: int = 16,
        connector: Connector | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.state = state
        self.targets = targets
        self.source = source
        self.every = every
        self._by_host = {t.name: t for t in targets.items}
        self._check = observe_action(CheckOptions(source, workers=check_jobs))
        self._connector = connector
        self._log = log or (lambda text: print(f"labup serve: {text}", file=sys.stderr))
        self._queue: list[Job] = [Job("round")]
        self._next_at: float | None = None
        self._cond = threading.Condition()
        self._stop = False
        self._thread: threading.Thread | None = None

    # -- requests (from the web app's threads) ----------------------------------------------
    def has_host(self, host: str) -> bool:
        return host in self._by_host

    def request(self, job: Job) -> bool:
        """Queue a job; False when the same job (or a round, for a check) already waits."""
        if job.host is not None and job.host not in self._by_host:
            raise KeyError(job.host)
        with self._cond:
            if job in self._queue or (job.kind == "check" and Job("round") in self._queue):
                return False
            if len(self._queue) >= MAX_QUEUED:
                return False
            if job.kind == "round":  # covers the checks that wait
                self._queue = [j for j in self._queue if j.kind != "check"]
            self._queue.append(job)
            self._cond.notify()
        if job.kind != "reset":  # the page shows the learners waiting for a check
            for host in [job.host] if job.host else list(self._by_host):
                self.state.busy(host, "queued", only_if_idle=True)
        return True

    # -- the thread --------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="labup-serve-worker",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 60.0) -> bool:
        """Stop after the job in progress (a reset is never cut in half); True when done."""
        with self._cond:
            self._stop = True
            self._cond.notify()
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _take(self) -> Job | None:
        with self._cond:
            while not self._stop:
                if self._queue:
                    return self._queue.pop(0)
                if self._next_at is None:
                    self._cond.wait()
                    continue
                wait = self._next_at - time.time()
                if wait <= 0:
                    return Job("round")
                self._cond.wait(wait)
            return None

    def _loop(self) -> None:
        while True:
            job = self._take()
            if job is None:
                return
            t0 = time.monotonic()
            self.state.started(job.label)
            try:
                self._run(job)
            except Exception as e:  # a bug must not end the dashboard: say it, go on
                self._log(f"{job.label} failed: {type(e).__name__}: {e}")
                self.state.notice(f"{job.label} failed: {type(e).__name__}: {e}",
                                  level="error")
            seconds = time.monotonic() - t0
            with self._cond:
                if job.kind == "round" or self._next_at is None:
                    self._next_at = time.time() + self.every if self.every > 0 else None
                next_at = self._next_at
            self.state.finished(full=job.kind == "round", seconds=seconds, next_at=next_at)

    def _run(self, job: Job) -> None:
        if job.kind == "round":
            self._fleet(self.targets.items, self._check, StateView(self.state))
        elif job.kind == "check" and job.host is not None:
            self._fleet([self._by_host[job.host]], self._check, StateView(self.state))
        elif job.kind == "reset" and job.host is not None:
            self._reset(self._by_host[job.host])

    def _fleet(self, targets: list[Target] | tuple[Target, ...], action: Action[object],
               view: StateView) -> tuple[HostOutcome, ...]:
        result = run_fleet(targets, action, parallel=self.targets.parallel, view=view,
                           connector=self._connector)
        return result.outcomes

    def _reset(self, target: Target) -> None:
        from provisioner.targets.actions import UpOptions, up_action

        learner = self.state.learners[target.name].learner
        self.state.notice(f"resetting the lab of {learner} ({target.name})")
        (outcome,) = self._fleet([target], up_action(UpOptions(self.source, reset=True)),
                                 StateView(self.state, busy="resetting"))
        self.state.forget_passes(target.name)
        if outcome.ok:
            self.state.notice(f"{learner}'s lab is reset ({outcome.seconds:.1f}s)")
        else:
            first = outcome.message.strip().splitlines()
            text = first[0] if first else outcome.status
            self.state.notice(f"reset of {learner}'s lab failed: {text}", level="error")
            self._log(f"reset of {target.name} failed: {text}")
        self._fleet([target], self._check, StateView(self.state))
