"""``http``: a request from the host (to a published port) or from inside a container.

```yaml
http: {to: web, port: 80, path: /health, status: 200, body_regex: ok}          # from the host
http: {from: client, to: api, port: 8000, method: POST, data: "{}", status: [200, 201]}
```
From the host, ``port`` is the container port of ``to`` (its published host port is looked
up); without ``to`` it is a host port. Only 127.0.0.1 is contacted from the host.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provisioner.checks.context import CheckContext, regex, shorten
from provisioner.checks.net import (
    HttpResponse,
    http_argv,
    parse_http_response,
    probe_cause,
    probes_at,
    resolve_endpoint,
    run_probe_at,
)
from provisioner.checks.netns import CLOSED, HttpFailed
from provisioner.checks.results import Outcome, failed, passed


def check_http(ctx: CheckContext, spec: Mapping[str, Any]) -> Outcome:
    endpoint = resolve_endpoint(ctx, spec, default_port=80)
    method = str(spec.get("method", "GET")).upper()
    path = str(spec.get("path", "/"))
    if not path.startswith("/"):
        path = "/" + path
    data = str(spec.get("data", ""))
    url = f"{method} http://{endpoint.address}:{endpoint.port}{path}"
    where = f" from {endpoint.source}" if endpoint.source else ""
    ns = probes_at(ctx, endpoint)
    if ns is not None:
        try:
            status, reason, headers, body = ns.http(
                method, endpoint.address, endpoint.port, path, data, ctx.timeout)
        except HttpFailed as e:
            return failed(f"{url}{where}: {e}")
        resp = HttpResponse(status, reason, headers, body)
    else:
        argv = http_argv(endpoint.address, endpoint.port, method, path, data, ctx.timeout)
        result = run_probe_at(ctx, endpoint, argv)
        if not result.stdout.strip():
            why = (
                CLOSED
                if result.rc == 0 and not result.stderr.strip()
                else probe_cause(result, endpoint.address, endpoint.port)
            )
            return failed(f"{url}{where}: {why}")
        resp = parse_http_response(result.stdout)
    return _judge(spec, f"{url}{where}", resp)


def _judge(spec: Mapping[str, Any], url: str, resp: HttpResponse) -> Outcome:
    want = spec.get("status", 200)
    wanted = [int(s) for s in want] if isinstance(want, list) else [int(want)]
    if resp.status not in wanted:
        shown = wanted[0] if len(wanted) == 1 else wanted
        return failed(f"{url} -> {resp.status} {resp.reason}, expected {shown}")
    facts = [f"{resp.status}"]
    if "body_regex" in spec:
        pattern = regex(str(spec["body_regex"]), "body_regex")
        if not pattern.search(resp.body):
            return failed(
                f"{url} -> {resp.status}, body does not match /{pattern.pattern}/: "
                f"{shorten(resp.body, 100)!r}"
            )
        facts.append(f"body matches /{pattern.pattern}/")
    if "body" in spec:
        if resp.body.rstrip("\r\n") != str(spec["body"]).rstrip("\r\n"):
            return failed(f"{url} -> body {shorten(resp.body, 100)!r}, expected {spec['body']!r}")
        facts.append("body equal")
    headers = spec.get("headers") or {}
    for name, pattern_text in headers.items():
        value = resp.headers.get(str(name).lower())
        if value is None:
            return failed(f"{url} -> no {name} header")
        pattern = regex(str(pattern_text), f"headers.{name}")
        if not pattern.search(value):
            return failed(f"{url} -> {name}: {value!r} does not match /{pattern.pattern}/")
        facts.append(f"{name} ok")
    return passed(f"{url} -> " + ", ".join(facts))
