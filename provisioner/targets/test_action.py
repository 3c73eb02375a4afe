"""``labup test`` as an action on one engine: prove a lab end to end on a target.

One engine or a whole classroom: the self-test sequence of :mod:`provisioner.catalog.selftest`
runs on each target's engine; its narration goes to the console (one engine) or to the host's
line of the live view (a fleet).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from provisioner.catalog.lab_source import LabSource
from provisioner.catalog.selftest import SelfTestFailed, SelfTestResult, run_selftest
from provisioner.targets.runner import Action, ActionFailed, Done, TargetContext


@dataclass(frozen=True)
class TestOptions:
    source: LabSource
    keep_workspace: bool = False
    narrate: bool = True  # one engine, not --json: every step and check on stderr


def test_action(opts: TestOptions) -> Action[SelfTestResult]:
    def action(ctx: TargetContext) -> Done[SelfTestResult]:
        def say(text: str) -> None:
            if not ctx.target.from_inventory:
                if opts.narrate:
                    print(text, file=sys.stderr, flush=True)
            elif text.startswith("== "):
                ctx.step(text[3:])

        result = run_selftest(ctx.engine, opts.source, reporter=ctx.reporter, say=say,
                              keep_workspace=opts.keep_workspace, ssh_key=ctx.target.key,
                              known_hosts=ctx.target.known_hosts)
        verdict = "PASSED" if result.ok else "FAILED"
        done = Done(result, f"self-test {verdict} in {result.seconds:.1f}s", result.as_dict())
        if not result.ok:
            failed = SelfTestFailed(result)
            raise ActionFailed(failed, Done(result, failed.message.splitlines()[0]
                                            + ": " + "; ".join(result.problems[:2]),
                                            result.as_dict()))
        return done

    return action
