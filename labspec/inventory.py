"""The classroom inventory: hosts reached over SSH, groups, defaults, per-host variables.

Same pipeline and error format as a lab spec: YAML with positions, the JSON Schema, then the
rules the schema cannot say (group members exist, ``ssh:`` URLs parse and do not fight
``address``/``user``/``port``, no two hosts at one address), and every connection field by the
rules ``--host`` follows (:mod:`labspec.hosts`: no password in a URL, plain user and address,
``docker_host`` a unix or tcp URL). Nothing is rendered here: the
host's ``vars`` are rendered into the lab spec's templates as ``host.vars``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from labspec import validate
from labspec.document import Document, JsonPath
from labspec.errors import Problem, SpecError
from labspec.hosts import (
    BadHost,
    address_problem,
    docker_host_problem,
    parse_ssh_url,
    user_problem,
)
from labspec.loader import load_file
from labspec.model import Host, Inventory

_CONNECTION = ("address", "user", "port")


def load_inventory(path: str | Path) -> Inventory:
    """Read, validate and build an inventory; SpecError lists every problem."""
    doc, problems = load_file(path)
    problems = problems or validate.check(doc, "inventory")
    if problems:
        raise SpecError(problems)
    folder = Path(path).resolve().parent
    data: dict[str, Any] = doc.data
    defaults: dict[str, Any] = data.get("defaults") or {}
    if "ssh" in defaults:
        problems.append(
            doc.problem(
                ("defaults", "ssh"),
                "an ssh URL names one host; defaults cannot have one",
                hint="set user or port in defaults, and ssh per host",
                key=True,
            )
        )
    groups_raw: dict[str, list[str]] = data.get("groups") or {}
    hosts_raw: dict[str, Any] = data["hosts"]
    hosts: list[Host] = []
    seen: dict[tuple[str, int], str] = {}
    for name, fields in hosts_raw.items():
        host = _host(doc, name, fields or {}, defaults, folder, groups_raw, problems)
        if host is None:
            continue
        where = (host.address, host.port)
        if where in seen:
            problems.append(
                doc.problem(
                    ("hosts", name),
                    f"host {name!r} has the same address as {seen[where]!r} "
                    f"({host.address}:{host.port})",
                    hint="each host is one machine: remove the copy or fix the address",
                    key=True,
                )
            )
        seen.setdefault(where, name)
        hosts.append(host)
    for group, members in groups_raw.items():
        if group in hosts_raw:
            problems.append(
                doc.problem(
                    ("groups", group),
                    f"group {group!r} has the name of a host",
                    hint="give groups and hosts different names, so --limit is not ambiguous",
                    key=True,
                )
            )
        for i, member in enumerate(members):
            if member not in hosts_raw:
                problems.append(
                    doc.problem(
                        ("groups", group, i),
                        f"unknown host {member!r}",
                        hint=f"hosts: {', '.join(hosts_raw)}",
                    )
                )
    if problems:
        raise SpecError(problems)
    return Inventory(
        path=Path(path).resolve(),
        hosts=tuple(hosts),
        groups={g: tuple(m) for g, m in groups_raw.items()},
        parallelism=int(data.get("parallelism", 10)),
    )


def _host(
    doc: Document,
    name: str,
    fields: Mapping[str, Any],
    defaults: Mapping[str, Any],
    folder: Path,
    groups: Mapping[str, list[str]],
    problems: list[Problem],
) -> Host | None:
    path: JsonPath = ("hosts", name)
    merged: dict[str, Any] = {k: v for k, v in defaults.items() if k != "ssh"}
    merged.update(fields)
    merged["vars"] = {**(defaults.get("vars") or {}), **(fields.get("vars") or {})}
    merged["labels"] = {**(defaults.get("labels") or {}), **(fields.get("labels") or {})}
    if "ssh" in fields:
        clash = [k for k in _CONNECTION if k in fields]
        if clash:
            problems.append(
                doc.problem(
                    (*path, clash[0]),
                    f"{clash[0]} is also set by the ssh URL",
                    hint="give either ssh: ssh://user@host:port, or address/user/port",
                    key=True,
                )
            )
            return None
        try:
            url = parse_ssh_url(str(fields["ssh"]))
        except BadHost as e:
            problems.append(doc.problem((*path, "ssh"), e.message, hint=e.hint))
            return None
        merged["address"] = url.address
        if url.user:
            merged["user"] = url.user
        if url.port is not None:
            merged["port"] = url.port
    if not _fields_ok(doc, path, fields, defaults, problems):
        return None
    return Host(
        name=name,
        address=str(merged.get("address", name)),
        user=str(merged.get("user", "root")),
        port=int(merged.get("port", 22)),
        key=_file(folder, merged.get("key")),
        known_hosts=_file(folder, merged.get("known_hosts")),
        docker_host=merged.get("docker_host"),
        proxy_jump=merged.get("proxy_jump"),
        ssh_config=_file(folder, merged.get("ssh_config")),
        vars=merged["vars"],
        gpus=merged.get("gpus"),
        labels={
            k: str(v).lower() if isinstance(v, bool) else str(v)
            for k, v in merged["labels"].items()
        },
        groups=tuple(g for g, members in groups.items() if name in members),
    )


def _fields_ok(
    doc: Document,
    path: JsonPath,
    fields: Mapping[str, Any],
    defaults: Mapping[str, Any],
    problems: list[Problem],
) -> bool:
    """Every connection field by the rules ``--host`` follows (:mod:`labspec.hosts`), each
    problem located where the value is written (the host, or ``defaults``); a bare host's
    name is its address."""
    found = len(problems)
    written = [(("defaults",), defaults), (path, fields)]
    if "ssh" not in fields and "address" not in fields and "address" not in defaults:
        why = address_problem(str(path[-1]))
        if why is not None:
            problems.append(doc.problem(path, why, key=True))
    for where, values in written:
        for name, rule in _RULES.items():
            if name in values and values[name] is not None:
                why = rule(str(values[name]))
                if why is not None:
                    problems.append(doc.problem((*where, name), why))
    return len(problems) == found


def _path_problem(value: str) -> str | None:
    if not value.strip() or any(c in value for c in "\0\n\r"):
        return f"{value!r} is not a file path"
    return None


_RULES: dict[str, Callable[[str], str | None]] = {
    "address": address_problem,
    "user": user_problem,
    "docker_host": docker_host_problem,
    "key": _path_problem,
    "known_hosts": _path_problem,
}


def _file(folder: Path, value: Any) -> Path | None:
    """A path from the inventory: ``~`` expanded, relative to the inventory's folder."""
    if value is None:
        return None
    return folder / os.path.expanduser(str(value))
