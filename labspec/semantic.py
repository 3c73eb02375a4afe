"""Rules the schema cannot express, reported in the same located format.

They run on the built :class:`~labspec.model.Lab` (every value already has its final type)
and locate each problem through the :class:`~labspec.document.Document` it came from:

- references resolve: images, networks, volumes, containers (depends_on, checks), check ids;
- no cycles: depends_on and check ``needs`` (the cycle is named: ``a -> b -> a``);
- image references, subnets and addresses are well formed; subnets do not overlap;
- two containers do not publish the same host port (same address and protocol);
- binds stay inside the lab folder, a read-write bind holds no other bind's source or build
  context, and privileged, host-network and dangerous-capability containers are refused,
  unless the user passes ``--allow-unsafe`` (:mod:`labspec.semantic_host`);
- files the lab names (build contexts, Dockerfiles, binds, instructions, solution) exist;
- inside a check's type mapping, fields named ``container``/``from``/``to``/``volume`` name a
  container (or volume) of the lab, and fields ending in ``regex`` compile.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
from collections.abc import Mapping
from pathlib import Path

from labspec.document import Document, JsonPath
from labspec.errors import Problem
from labspec.model import Container, Lab, Port
from labspec.semantic_base import UNSAFE_HINT, find_cycle, suggest
from labspec.semantic_checks import CheckRules
from labspec.semantic_host import HostRules

# The Docker distribution reference grammar (distribution/reference/regexp.go): an optional
# domain (it has a dot or a port, or is localhost), lowercase path components, a tag, a digest.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = re.compile(rf"^(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$")
_REMAINDER = re.compile(
    rf"^{_COMPONENT}(?:/{_COMPONENT})*(?::[\w][\w.-]{{0,127}})?"
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$"
)


def valid_image_reference(ref: str) -> bool:
    """Whether ``ref`` is an image reference Docker accepts (``busybox``, ``ghcr.io/a/b:1``)."""
    first, slash, rest = ref.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return bool(_DOMAIN.match(first)) and bool(_REMAINDER.match(rest))
    return bool(_REMAINDER.match(ref))


_ALL_ADDRESSES = ("0.0.0.0", "::", "")  # noqa: S104 - compared, never bound


def check_params(doc: Document) -> list[Problem]:
    """Defaults fit their type; enums have choices and the default is one of them."""
    problems: list[Problem] = []
    params = doc.data.get("params") or {}
    for name, spec in params.items():
        path: JsonPath = ("params", name)
        kind = spec.get("type")
        default = spec.get("default")
        choices = spec.get("choices")
        if kind == "enum" and not choices:
            problems.append(doc.problem(path, "an enum param needs `choices`", key=True))
        if kind != "enum" and choices is not None:
            problems.append(
                doc.problem(
                    (*path, "choices"), f"`choices` only applies to enum params, not {kind}"
                )
            )
        if spec.get("secret") is True and kind not in ("string", "integer"):
            problems.append(doc.problem(
                (*path, "secret"), f"a {kind} param cannot be secret (its values are public)",
                hint="secret applies to string and integer params"))
        if default is None:
            continue
        wrong = (
            (kind == "integer" and (isinstance(default, bool) or not isinstance(default, int)))
            or (kind == "boolean" and not isinstance(default, bool))
            or (kind in ("string", "enum") and not isinstance(default, str))
        )
        if wrong:
            article = "an" if kind in ("integer", "enum") else "a"
            message = f"default {default!r} is not {article} {kind}"
            problems.append(doc.problem((*path, "default"), message))
        elif kind == "enum" and choices and default not in choices:
            problems.append(
                doc.problem(
                    (*path, "default"),
                    f"default {default!r} is not one of the choices {', '.join(map(str, choices))}",
                )
            )
    return problems


def check_lab(lab: Lab, doc: Document, *, allow_unsafe: bool = False) -> list[Problem]:
    """Every semantic problem of a built lab, sorted by position."""
    rules = _Rules(lab, doc, allow_unsafe)
    rules.images()
    rules.networks()
    for container in lab.containers:
        rules.container(container)
    rules.rw_binds()
    rules.ports()
    rules.depends_on()
    rules.checks()
    rules.files()
    rules.solution_steps()
    return sorted(rules.problems, key=lambda p: (p.line, p.column))


class _Rules(CheckRules, HostRules):
    # -- images -------------------------------------------------------------------
    def images(self) -> None:
        for image in self.lab.images:
            path: JsonPath = ("images", image.name)
            if not valid_image_reference(image.ref):
                where = (*path, "ref") if self.raw((*path, "ref")) else path
                self.add(where, f"{image.ref!r} is not a valid image reference", _REF_HINT)
            if image.build is None:
                continue
            build_path: JsonPath = (*path, "build", "context")
            context = image.build.context
            if not self.inside_folder(context):
                self.add(build_path, "the build context is outside the lab folder")
            elif not context.is_dir():
                shown = self.raw(build_path)
                self.add(build_path, f"build context {shown} is not a folder in the lab folder")
            else:
                self.dockerfile(path, build_path, context, image.build.dockerfile)

    def dockerfile(self, path: JsonPath, build_path: JsonPath, context: Path, name: str) -> None:
        """The Dockerfile exists and stays inside the lab folder: the SDK would otherwise send
        any file it names (a key, a password file) to the engine, which may be remote."""
        where = (*path, "build", "dockerfile")
        where = where if self.raw(where) else build_path
        dockerfile = (context / os.path.expanduser(name)).resolve()
        if not self.inside_folder(dockerfile):
            if not self.allow_unsafe:
                self.add(where, f"Dockerfile {name} is outside the lab folder", UNSAFE_HINT)
        elif not dockerfile.is_file():
            self.add(where, f"no {name} in the build context {self.raw(build_path)}")

    # -- networks -----------------------------------------------------------------
    def networks(self) -> None:
        seen: list[tuple[str, ipaddress.IPv4Network | ipaddress.IPv6Network]] = []
        for network in self.lab.networks:
            path: JsonPath = ("networks", network.name)
            if network.subnet is None:
                if network.gateway is not None:
                    self.add((*path, "gateway"), "a gateway needs a subnet")
                continue
            try:
                subnet = ipaddress.ip_network(network.subnet, strict=True)
            except ValueError as e:
                hint = None
                with contextlib.suppress(ValueError):
                    hint = f"did you mean {ipaddress.ip_network(network.subnet, strict=False)}?"
                self.add((*path, "subnet"), f"{network.subnet!r} is not a valid subnet: {e}", hint)
                continue
            for other, other_subnet in seen:
                if subnet.overlaps(other_subnet):
                    self.add(
                        (*path, "subnet"),
                        f"subnet {subnet} overlaps network {other!r} ({other_subnet})",
                        "Docker refuses overlapping address pools: pick disjoint subnets",
                    )
            seen.append((network.name, subnet))
            if network.gateway is not None:
                self.address_in((*path, "gateway"), network.gateway, subnet)

    def address_in(
        self,
        path: JsonPath,
        address: str,
        subnet: ipaddress.IPv4Network | ipaddress.IPv6Network,
    ) -> None:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            self.add(path, f"{address!r} is not an IP address")
            return
        if ip not in subnet:
            self.add(path, f"{address} is not inside the subnet {subnet}")

    # -- containers -----------------------------------------------------------------
    def container(self, c: Container) -> None:
        path: JsonPath = ("containers", c.name)
        if c.image_key is None and not valid_image_reference(c.image):
            hint = _REF_HINT
            if self.lab.images:
                hint = suggest(c.image, (i.name for i in self.lab.images), "images")
            self.add(
                (*path, "image"),
                f"{c.image!r} is neither an images key nor an image reference",
                hint,
            )
        self.attachments(c, path)
        if c.network_mode is not None:
            if c.networks:
                self.add(
                    (*path, "network_mode"),
                    "a container with network_mode cannot join networks",
                    "remove one of network_mode and networks",
                    key=True,
                )
            if c.network_mode in ("host", "none") and c.ports:
                self.add(
                    (*path, "ports"),
                    f"ports cannot be published with network_mode {c.network_mode}",
                    key=True,
                )
            if c.network_mode == "host" and not self.allow_unsafe:
                self.add(
                    (*path, "network_mode"),
                    "network_mode host shares the host's network with the container",
                    UNSAFE_HINT,
                )
        if c.privileged and not self.allow_unsafe:
            self.add(
                (*path, "privileged"),
                "a privileged container has full access to the host",
                UNSAFE_HINT,
            )
        self.capabilities(c, path)
        self.mounts(c, path)
        for i, port in enumerate(c.ports):
            for number, what in ((port.container, "container"), (port.host, "host")):
                if number is not None and not 1 <= number <= 65535:
                    self.add((*path, "ports", i), f"{what} port {number} is not in 1-65535")

    def attachments(self, c: Container, path: JsonPath) -> None:
        for i, att in enumerate(c.networks):
            where: JsonPath = (
                *path,
                "networks",
                i if isinstance(self.raw((*path, "networks")), list) else att.network,
            )
            if att.network not in self.network_names:
                self.add(
                    where,
                    f"unknown network {att.network!r}",
                    suggest(att.network, self.network_names, "networks"),
                    key=not isinstance(where[-1], int),
                )
                continue
            if att.ipv4_address is None:
                continue
            network = next(n for n in self.lab.networks if n.name == att.network)
            if network.subnet is None:
                self.add(
                    (*where, "ipv4_address"),
                    "a fixed address needs a network with a `subnet`",
                    f"give network {att.network!r} a subnet",
                )
                continue
            try:
                subnet = ipaddress.ip_network(network.subnet, strict=True)
            except ValueError:
                continue  # reported on the network
            self.address_in((*where, "ipv4_address"), att.ipv4_address, subnet)

    def ports(self) -> None:
        taken: dict[tuple[int, str, str], tuple[str, str, int]] = {}
        for c in self.lab.containers:
            for i, port in enumerate(c.ports):
                if port.host is None:
                    continue
                clash = self.clash(taken, port)
                if clash is not None:
                    other, ip, index = clash
                    who = f"container {other!r}" if other != c.name else "this container"
                    self.add(
                        ("containers", c.name, "ports", i),
                        f"host port {port.host}/{port.protocol} on {port.host_ip} is already "
                        f"published by {who} (ports[{index}] on {ip})",
                        "each host port can be published once; pick another, or make it a param",
                    )
                else:
                    taken[(port.host, port.protocol, port.host_ip)] = (c.name, port.host_ip, i)

    @staticmethod
    def clash(
        taken: Mapping[tuple[int, str, str], tuple[str, str, int]], port: Port
    ) -> tuple[str, str, int] | None:
        for (host, protocol, ip), owner in taken.items():
            if (
                host == port.host
                and protocol == port.protocol
                and (ip == port.host_ip or ip in _ALL_ADDRESSES or port.host_ip in _ALL_ADDRESSES)
            ):
                return owner
        return None

    def depends_on(self) -> None:
        graph: dict[str, list[str]] = {}
        for c in self.lab.containers:
            graph[c.name] = []
            raw = self.raw(("containers", c.name, "depends_on"))
            for i, dep in enumerate(c.depends_on):
                where: JsonPath = (
                    "containers",
                    c.name,
                    "depends_on",
                    i if isinstance(raw, list) else dep.container,
                )
                if dep.container == c.name:
                    self.add(
                        where,
                        f"container {c.name!r} depends on itself",
                        key=not isinstance(where[-1], int),
                    )
                elif dep.container not in self.container_names:
                    self.add(
                        where,
                        f"unknown container {dep.container!r}",
                        suggest(dep.container, self.container_names, "containers"),
                        key=not isinstance(where[-1], int),
                    )
                else:
                    graph[c.name].append(dep.container)
        cycle = find_cycle(graph)
        if cycle:
            self.add(
                ("containers", cycle[0], "depends_on"),
                "depends_on cycle: " + " -> ".join(cycle),
                "no container can start first: remove one of these dependencies",
                key=True,
            )

_REF_HINT = (
    "an image reference is lowercase, like `busybox`, `python:3.11-slim` or `ghcr.io/org/app:1.0`"
)
