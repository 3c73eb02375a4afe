"""The ``POST /containers/create`` body for a model container (Engine API 1.41 and newer)."""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from labspec.model import Container
from provisioner.engine.protocol import Endpoint


def _endpoint(aliases: Sequence[str], ip: str | None) -> dict[str, Any]:
    endpoint: dict[str, Any] = {}
    if aliases:
        endpoint["Aliases"] = list(aliases)
    if ip:
        endpoint["IPAMConfig"] = {"IPv4Address": ip}
    return endpoint


def container_body(
    c: Container,
    *,
    networks: Sequence[Endpoint],
    at_create: Sequence[Endpoint],
    volume_names: Mapping[str, str],
    labels: Mapping[str, str],
    use_gpu: bool,
) -> dict[str, Any]:
    """The ``POST /containers/create`` body for a model container (Engine API 1.41+)."""
    mounts: list[dict[str, Any]] = []
    for m in c.mounts:
        mount: dict[str, Any] = {"Target": m.target, "Type": m.type, "ReadOnly": m.read_only}
        if m.type == "tmpfs":
            if m.size:
                mount["TmpfsOptions"] = {"SizeBytes": m.size}
        elif m.type == "volume":
            mount["Source"] = volume_names.get(m.source or "", m.source)
        else:
            mount["Source"] = m.source
        mounts.append(mount)
    host: dict[str, Any] = {
        "Mounts": mounts,
        "ReadonlyRootfs": c.read_only,
        "Privileged": c.privileged,
        "CapAdd": list(c.cap_add) or None,
        "CapDrop": list(c.cap_drop) or None,
    }
    if c.init:
        host["Init"] = True
    if c.ports:
        bindings: dict[str, list[dict[str, str]]] = {}
        for p in c.ports:
            bindings.setdefault(f"{p.container}/{p.protocol}", []).append(
                {"HostIp": p.host_ip, "HostPort": str(p.host) if p.host else ""}
            )
        host["PortBindings"] = bindings
    if c.restart and c.restart != "no":
        policy, _, count = c.restart.partition(":")
        host["RestartPolicy"] = {"Name": policy, "MaximumRetryCount": int(count or 0)}
    if c.resources.cpus:
        host["NanoCpus"] = int(c.resources.cpus * 1e9)
    if c.resources.memory:
        host["Memory"] = c.resources.memory
    if c.resources.pids:
        host["PidsLimit"] = c.resources.pids
    if c.gpus is not None and use_gpu:
        gpu_count = -1 if c.gpus.count == "all" else int(c.gpus.count)
        host["DeviceRequests"] = [{"Driver": "", "Count": gpu_count, "DeviceIDs": None,
                                   "Capabilities": [list(c.gpus.capabilities)], "Options": {}}]
    if c.network_mode is not None:
        host["NetworkMode"] = c.network_mode
    elif networks:
        host["NetworkMode"] = networks[0][0]
    body: dict[str, Any] = {
        "Image": c.image,
        "Labels": dict(labels),
        "Env": [f"{k}={v}" for k, v in c.env.items()],
        "HostConfig": host,
    }
    if c.command is not None:
        body["Cmd"] = list(c.command)
    if c.entrypoint is not None:
        body["Entrypoint"] = list(c.entrypoint)
    for key, value in (("WorkingDir", c.working_dir), ("Hostname", c.hostname),
                       ("User", c.user)):
        if value:
            body[key] = value
    if c.ports:
        body["ExposedPorts"] = {f"{p.container}/{p.protocol}": {} for p in c.ports}
    if c.stop_timeout is not None:
        body["StopTimeout"] = int(c.stop_timeout)
    if c.healthcheck is not None:
        h = c.healthcheck
        body["Healthcheck"] = {
            "Test": list(h.test), "Interval": _ns(h.interval), "Timeout": _ns(h.timeout),
            "Retries": h.retries, "StartPeriod": _ns(h.start_period),
        }
    if at_create:
        body["NetworkingConfig"] = {
            "EndpointsConfig": {net: _endpoint(aliases, ip) for net, aliases, ip in at_create}
        }
    return body


def for_podman(body: dict[str, Any]) -> dict[str, Any]:
    """The same body as Podman 4.3's Docker API reads it right. It splits every word of an
    exec-form healthcheck (``["CMD", "python", "-c", "import a; b()"]``) again on spaces, so
    one with spaces in a word goes as the shell form, each word quoted for ``/bin/sh``."""
    check = body.get("Healthcheck")
    if check and check["Test"][:1] == ["CMD"] and any(
        not word or any(ch.isspace() for ch in word) for word in check["Test"][1:]
    ):
        body["Healthcheck"] = {**check, "Test": ["CMD-SHELL", shlex.join(check["Test"][1:])]}
    return body


def _ns(seconds: float) -> int:
    return int(seconds * 1_000_000_000)
