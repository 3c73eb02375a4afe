"""``tcp``: a port is open (or closed), from the host or from inside a container.

```yaml
tcp: {to: db, port: 5432, open: false}           # not published on the host
tcp: {from: web, to: db, port: 5432}             # open from inside web
```
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provisioner.checks.context import CheckContext, CheckError, as_int, shorten
from provisioner.checks.net import (
    Endpoint,
    listens_inside,
    probe_cause,
    probes_at,
    prove_target,
    resolve_endpoint,
    run_probe_at,
    tcp_argv,
)
from provisioner.checks.results import Outcome, failed, passed


def probe_tcp(ctx: CheckContext, endpoint: Endpoint) -> tuple[bool, str]:
    """(open?, why) for one endpoint; raises CheckError when the probe itself cannot run."""
    ns = probes_at(ctx, endpoint)
    if ns is not None:
        return ns.tcp(endpoint.address, endpoint.port, ctx.timeout)
    result = run_probe_at(ctx, endpoint, tcp_argv(endpoint.address, endpoint.port, ctx.timeout))
    if result.rc == 0:
        return True, "connected"
    if result.rc == 1 or result.rc in (124, 143):
        return False, probe_cause(result, endpoint.address, endpoint.port)
    raise CheckError(f"probe failed (exit {result.rc}): {shorten(result.stderr)}")


def check_tcp(ctx: CheckContext, spec: Mapping[str, Any]) -> Outcome:
    want_open = spec.get("open", True) is not False
    port = as_int(spec.get("port", 0), "port")
    if not want_open and (spec.get("to") or spec.get("alias")):
        prove_target(ctx, spec)  # "closed" proves nothing about a target that is not there
    try:
        endpoint = resolve_endpoint(ctx, spec, default_port=0)
    except CheckError as e:
        # A port that is not published is closed from the host: that is what `open: false` asks.
        if not want_open and "is not published" in e.message:
            return passed(f"{e.message}: closed from the host, as expected")
        raise
    is_open, why = probe_tcp(ctx, endpoint)
    if is_open and endpoint.mode != "container" and spec.get("to"):
        # the engine's port proxy accepts on a published port even when nothing listens in
        # the container: the container's own side must answer too
        inside, inner = listens_inside(ctx, str(spec["to"]), port)
        if not inside:
            is_open = False
            why = (f"the engine's port proxy accepted on {endpoint.port}, but nothing "
                   f"answers on {port} in {ctx.name(str(spec['to']))} ({inner})")
    label = endpoint.describe()
    if is_open == want_open:
        return passed(f"{label}: {'open' if is_open else 'closed'}, as expected ({why})")
    if is_open:
        return failed(f"{label}: open, expected closed")
    return failed(f"{label}: closed, expected open ({why})")
