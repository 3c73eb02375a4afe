"""Where a network check connects from and to, and the probe commands that do it.

Three vantage points:
- from the host, engine local: Python sockets to 127.0.0.1 and the published host port;
- from the host, engine remote: a probe on the engine host's network (``network_mode=host``)
  connecting to 127.0.0.1 there;
- from a container (``from: client``): a probe joined to that container's network
  namespace, reaching the target by alias or Docker name (``to``) on the container port.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from provisioner.checks.context import (
    CheckContext,
    CheckError,
    NetProbes,
    as_int,
    shorten,
    target_address,
)
from provisioner.checks.netns import here, unresolved
from provisioner.engine.protocol import CommandResult

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Endpoint:
    mode: str  # "local" | "remote-host" | "container"
    address: str
    port: int
    source: str | None = None  # container key for mode "container"
    target: str | None = None  # from the host: the container (key) whose published port it is

    def describe(self) -> str:
        where = f"from {self.source}" if self.source else "from the host"
        return f"{self.address}:{self.port} {where}"


def resolve_endpoint(ctx: CheckContext, spec: Mapping[str, Any], *, default_port: int) -> Endpoint:
    """Turn ``from`` / ``to`` / ``alias`` / ``port`` into where to connect."""
    port = as_int(spec.get("port", default_port), "port")
    source = spec.get("from")
    if source:
        return Endpoint("container", target_address(ctx, spec), port, str(source))
    to = spec.get("to")
    if to:
        port = ctx.published_port(str(to), port, "tcp")
    mode = "local" if ctx.is_local else "remote-host"
    return Endpoint(mode, LOOPBACK, port, target=str(to) if to else None)


def container_addresses(data: Mapping[str, Any]) -> list[str]:
    """The container's IPv4 addresses on its networks (what the engine's port proxy dials)."""
    settings = data.get("NetworkSettings") or {}
    found = [str(n.get("IPAddress")) for n in (settings.get("Networks") or {}).values()
             if n.get("IPAddress")]
    if settings.get("IPAddress") and settings["IPAddress"] not in found:
        found.append(str(settings["IPAddress"]))
    return found or [LOOPBACK]


def alias_owner(ctx: CheckContext, alias: str) -> str | None:
    """The container of the lab a name or network alias belongs to: by the spec, else by
    the aliases its endpoints carry on the engine now (a learner may add one with
    ``docker network connect --alias``). None: no container of the lab has it."""
    keys = [*(c.name for c in ctx.lab.containers), *ctx.lab.learner_containers]
    for c in ctx.lab.containers:
        if alias in (c.name, ctx.name(c.name)) or any(alias in a.aliases for a in c.networks):
            return c.name
    for key in keys:
        if alias in (key, ctx.name(key)):
            return key
    for key in keys:
        data = ctx.engine.inspect_container(ctx.name(key)) or {}
        networks = (data.get("NetworkSettings") or {}).get("Networks") or {}
        if any(alias in (n.get("Aliases") or []) for n in networks.values()):
            return key
    return None


def prove_target(ctx: CheckContext, spec: Mapping[str, Any]) -> str:
    """A negative check ("cannot reach", "closed") proves something only about a target that
    is there: the container (``to``, or the one ``alias`` belongs to) must exist, be the lab's
    own and run. Otherwise :class:`CheckBlocked`, never a pass (a learner cannot "isolate" a
    database by deleting or stopping it). Returns the target's Docker name."""
    from provisioner.checks.context import CheckBlocked

    to = spec.get("to")
    key = str(to) if to else alias_owner(ctx, str(spec.get("alias", "")))
    if key is None:
        raise CheckBlocked(
            f"{spec.get('alias')!r} names no container of the lab: a negative check cannot "
            "prove anything about it"
        )
    try:
        ctx.running_container(key)
    except CheckBlocked:
        raise
    except CheckError as e:
        raise CheckBlocked(f"{e.message}: a negative check needs its target running, or "
                           "it proves nothing") from None
    return ctx.name(key)


def listens_inside(ctx: CheckContext, key: str, port: int) -> tuple[bool, str]:
    """Whether container ``key`` answers on ``port`` from its own network namespace, on the
    address the engine's port proxy connects to."""
    from provisioner.checks.tcp import probe_tcp

    data = ctx.running_container(key)
    address = container_addresses(data)[0]
    return probe_tcp(ctx, Endpoint("container", address, port, key))


def probes_at(ctx: CheckContext, endpoint: Endpoint) -> NetProbes | None:
    """labup's own probes at the endpoint's vantage point: this machine's network, a local
    container's namespace, or (through the probe agent) the SSH host's network or one of its
    containers'; None where they cannot run, and a probe command runs in a sidecar."""
    if endpoint.mode == "local":
        return here()
    if endpoint.mode == "container":
        assert endpoint.source is not None
        return ctx.netns(endpoint.source)
    return ctx.host_netns(endpoint.target)


def run_probe_at(ctx: CheckContext, endpoint: Endpoint, argv: list[str]) -> CommandResult:
    """Run a probe command from the endpoint's vantage point (never used for "local")."""
    if endpoint.mode == "container":
        assert endpoint.source is not None
        return ctx.probe_from(endpoint.source, argv)
    if endpoint.mode == "remote-host":
        return ctx.probe_host(argv)
    raise CheckError("internal: local endpoints use sockets, not probes")


def tcp_argv(address: str, port: int, timeout: float) -> list[str]:
    """Busybox nc: connect, then run `true` (exit 0); refused / timeout / bad name exit 1."""
    seconds = str(max(1, round(timeout)))
    return ["nc", "-w", seconds, address, str(port), "-e", "true"]


# The request line and headers come in as positional parameters: no input becomes shell code.
_HTTP_SCRIPT = (
    'printf "%s %s HTTP/1.0\\r\\nHost: %s\\r\\nUser-Agent: labup-probe\\r\\n'
    'Connection: close\\r\\nContent-Length: %s\\r\\n\\r\\n%s" '
    '"$3" "$4" "$1" "${#5}" "$5" | timeout "$6" nc -w "$6" "$1" "$2"'
)


def http_argv(
    address: str, port: int, method: str, path: str, data: str, timeout: float
) -> list[str]:
    seconds = str(max(1, round(timeout)))
    return ["sh", "-c", _HTTP_SCRIPT, "sh", address, str(port), method, path, data, seconds]


@dataclass(frozen=True)
class HttpResponse:
    status: int
    reason: str
    headers: dict[str, str]  # lower-cased names
    body: str


def parse_http_response(raw: str) -> HttpResponse:
    """Parse a raw HTTP/1.x response as printed by nc."""
    head, sep, body = raw.partition("\r\n\r\n")
    if not sep:
        head, sep, body = raw.partition("\n\n")
    lines = head.replace("\r\n", "\n").split("\n")
    status_line = lines[0].strip() if lines else ""
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise CheckError(f"no HTTP response (got {status_line[:80]!r})")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if colon:
            headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _dechunk(body)
    return HttpResponse(int(parts[1]), parts[2] if len(parts) > 2 else "", headers, body)


def _dechunk(body: str) -> str:
    out: list[str] = []
    rest = body
    while rest:
        size_line, _, rest = rest.partition("\r\n")
        try:
            size = int(size_line.split(";")[0].strip() or "0", 16)
        except ValueError:
            return body
        if size == 0:
            break
        out.append(rest[:size])
        rest = rest[size + 2 :]
    return "".join(out)


# -- one cause, one wording: what a sidecar's busybox says, in the words of the in-process probes
_BAD_ADDRESS = re.compile(r"bad address '([^']*)'")
_CANT_CONNECT = re.compile(r"can't connect to remote host \(([^)]*)\): (.+)")
_PING_TARGET = re.compile(r"^PING \S+ \(([^)]*)\)", re.M)


def probe_cause(result: CommandResult, address: str, port: int | None = None) -> str:
    """Why a probe's nc, wget or ping did not get through, worded as the in-process probes
    word it (:mod:`provisioner.checks.netns`), so a cause reads the same on every engine."""
    said = result.stderr.strip() or result.stdout.strip()
    bad = _BAD_ADDRESS.search(said)
    if bad:
        return unresolved(bad.group(1))
    where = f"{address}:{port}" if port is not None else address
    refused = _CANT_CONNECT.search(said)
    if refused and port is not None:
        return f"can't connect to {address} ({refused.group(1)}:{port}): {refused.group(2)}"
    if port is None and "packet loss" in said + result.stdout:
        ip = _PING_TARGET.search(result.stdout)
        return f"{address} ({ip.group(1) if ip else '?'}): no answer to ping"
    if result.rc in (124, 143) or "timed out" in said or not said:
        return f"can't connect to {where}: timed out"
    return shorten(said)
