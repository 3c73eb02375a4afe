"""``reachable``: container A can (or can NOT) reach container B by name or alias.

```yaml
reachable: {from: web, to: api, port: 8000}                     # by B's Docker name
reachable: {from: web, alias: db, port: 5432, reachable: false}  # isolation objective
reachable: {from: web, to: api}                                  # no port: ping
```
The probe joins A's network namespace, so it sees exactly A's networks and DNS. The negative
form passes only when the probe ran and could not connect (name not resolved, refused,
timed out); a probe that could not run at all is a failure, never a pass. It first proves
its target is there: the container (``to``, or the one ``alias`` belongs to) exists, is the
lab's own and runs; else it is blocked (a learner cannot "isolate" a database by deleting or
stopping it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provisioner.checks.context import CheckContext, CheckError, as_int, shorten, target_address
from provisioner.checks.net import Endpoint, probe_cause, prove_target
from provisioner.checks.results import Outcome, failed, passed
from provisioner.checks.tcp import probe_tcp


def _ping(ctx: CheckContext, source: str, address: str) -> tuple[bool, str]:
    ns = ctx.netns(source)
    if ns is not None:
        return ns.ping(address, ctx.timeout)
    seconds = str(max(1, round(ctx.timeout)))
    result = ctx.probe_from(source, ["ping", "-c", "1", "-W", seconds, address])
    if result.rc == 0:
        return True, "answers ping"
    if result.rc == 1 or result.rc == 2:
        return False, probe_cause(result, address)
    raise CheckError(f"probe failed (exit {result.rc}): {shorten(result.stderr)}")


def check_reachable(ctx: CheckContext, spec: Mapping[str, Any]) -> Outcome:
    source = str(spec["from"])
    address = target_address(ctx, spec)
    want = spec.get("reachable", True) is not False
    if not want:  # isolation is proven only of a target that is there and answers itself
        prove_target(ctx, spec)
    if "port" in spec:
        port = as_int(spec["port"], "port")
        ok, why = probe_tcp(ctx, Endpoint("container", address, port, source))
        target = f"{address}:{port}"
    else:
        ok, why = _ping(ctx, source, address)
        target = address
    src = ctx.name(source)
    if ok and want:
        return passed(f"{src} reaches {target} ({why})")
    if not ok and not want:
        return passed(f"{src} cannot reach {target}, as expected ({why})")
    if ok:
        return failed(f"{src} reaches {target}, but it must not")
    return failed(f"{src} cannot reach {target}: {why}")
