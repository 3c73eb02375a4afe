"""The Lab and Inventory models: frozen dataclasses, no Docker anywhere.

``labspec.load_lab`` builds these from YAML after rendering templates, validating the
schema and checking the semantic rules, so code that receives a :class:`Lab` may rely on
every reference resolving. Durations are seconds (float); sizes are bytes (int).
Mappings are plain dicts by convention: treat them as read-only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

ParamType = Literal["string", "integer", "boolean", "enum"]
ParamValue = str | int | bool


def lab_key(lab_id: int | None, name: str) -> str:
    """The one rule for a lab's key (resource names, labels): ``lab5``, or the slug."""
    return f"lab{lab_id}" if lab_id is not None else name


@dataclass(frozen=True)
class RandomSpec:
    """A param drawn per learner (``random:``): one of ``choices``, or an integer in
    ``[minimum, maximum]``; seeded by the learner's identity and the lab (labspec/variants.py)."""

    choices: tuple[ParamValue, ...] = ()
    minimum: int | None = None
    maximum: int | None = None


@dataclass(frozen=True)
class Param:
    name: str
    type: ParamType
    default: ParamValue | None
    description: str = ""
    choices: tuple[str, ...] = ()  # for type "enum"
    secret: bool = False  # never shown: replaced by *** in output and reports
    random: RandomSpec | None = None  # a value of its own for every learner


@dataclass(frozen=True)
class BuildSpec:
    context: Path  # absolute, inside the lab folder
    dockerfile: str = "Dockerfile"  # relative to context
    args: Mapping[str, str] = field(default_factory=dict)
    target: str | None = None


@dataclass(frozen=True)
class Image:
    """An image the lab needs: pulled by ``ref``, or built from ``build`` and tagged ``ref``."""

    name: str  # key in the spec's ``images`` mapping
    ref: str  # e.g. "python:3.11-slim", or for builds the tag to give it
    build: BuildSpec | None = None
    pull: Literal["missing", "always", "never"] = "missing"


@dataclass(frozen=True)
class Network:
    name: str
    driver: str = "bridge"
    internal: bool = False
    subnet: str | None = None
    gateway: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Volume:
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Port:
    container: int
    host: int | None = None  # None: the engine picks a free port
    host_ip: str = "127.0.0.1"
    protocol: Literal["tcp", "udp"] = "tcp"


@dataclass(frozen=True)
class NetworkAttachment:
    network: str  # key in the lab's networks
    aliases: tuple[str, ...] = ()
    ipv4_address: str | None = None


@dataclass(frozen=True)
class Mount:
    type: Literal["volume", "bind", "tmpfs"]
    target: str
    source: str | None = None  # volume key, or absolute host path for binds
    read_only: bool = False
    size: int | None = None  # tmpfs size in bytes


@dataclass(frozen=True)
class Resources:
    cpus: float | None = None
    memory: int | None = None  # bytes
    pids: int | None = None


@dataclass(frozen=True)
class GpuRequest:
    count: int | Literal["all"] = 1
    capabilities: tuple[str, ...] = ("gpu",)
    optional: bool = False


@dataclass(frozen=True)
class Healthcheck:
    test: tuple[str, ...]  # Docker form: ("CMD", ...) / ("CMD-SHELL", "...") / ("NONE",)
    interval: float = 5.0
    timeout: float = 5.0
    retries: int = 3
    start_period: float = 0.0


DependencyCondition = Literal["started", "healthy", "completed"]


@dataclass(frozen=True)
class Dependency:
    container: str
    condition: DependencyCondition = "started"


@dataclass(frozen=True)
class Container:
    name: str  # key in the spec's containers mapping
    image: str  # a docker reference, resolved from an ``images`` key when it names one
    image_key: str | None = None  # the ``images`` key it came from, if any
    command: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    working_dir: str | None = None
    hostname: str | None = None
    ports: tuple[Port, ...] = ()
    networks: tuple[NetworkAttachment, ...] = ()
    network_mode: str | None = None  # "host" / "none" (host needs the unsafe flag)
    mounts: tuple[Mount, ...] = ()
    resources: Resources = field(default_factory=Resources)
    gpus: GpuRequest | None = None
    healthcheck: Healthcheck | None = None
    depends_on: tuple[Dependency, ...] = ()
    user: str | None = None
    read_only: bool = False
    privileged: bool = False
    init: bool = False
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    restart: str = "no"  # "no" | "always" | "unless-stopped" | "on-failure[:N]"
    labels: Mapping[str, str] = field(default_factory=dict)
    stop_timeout: float | None = None
    secret_env: tuple[str, ...] = ()  # names in ``env`` whose values are secrets


CheckStage = Literal["env", "task"]


@dataclass(frozen=True)
class Check:
    """A declarative check. ``type`` names the check kind (the one type key present in the
    spec, such as ``http``); ``spec`` is that key's mapping, already schema-validated."""

    id: str
    type: str
    spec: Mapping[str, Any]
    description: str = ""
    hint: str = ""
    points: float = 1.0
    stage: CheckStage = "task"
    wait: float = 0.0  # retry until this many seconds have passed
    timeout: float = 10.0  # one attempt
    needs: tuple[str, ...] = ()
    # Hints in levels, from a nudge to the full command (``hint`` is the first); what each
    # level costs when the check passes (``points: {value, hint_cost}``), level by level.
    hints: tuple[str, ...] = ()
    hint_cost: tuple[float, ...] = ()


@dataclass(frozen=True)
class SolutionStep:
    """One step of a solution in steps: the checks it makes pass, and what to run."""

    checks: tuple[str, ...]
    script: Path | None = None  # a script in the lab folder, or
    argv: tuple[str, ...] = ()  # a command, run on the host with the lab folder as cwd


@dataclass(frozen=True)
class Solution:
    script: Path | None = None  # run on the host with the lab folder as cwd
    steps: tuple[tuple[str, ...], ...] = ()  # argv lists run on the host, in order
    keyed: tuple[SolutionStep, ...] = ()  # ``solution:`` as a list of {check, run} steps


@dataclass(frozen=True)
class Lab:
    api_version: str
    id: int | None  # catalog number, None for labs outside the catalog
    name: str  # slug, used in resource names: lab{id} or the slug
    title: str
    description: str
    path: Path  # the spec file (absolute)
    folder: Path  # the lab folder (absolute); binds and builds resolve against it
    params: tuple[Param, ...] = ()
    values: Mapping[str, ParamValue] = field(default_factory=dict)  # rendered param values
    images: tuple[Image, ...] = ()
    networks: tuple[Network, ...] = ()
    volumes: tuple[Volume, ...] = ()
    containers: tuple[Container, ...] = ()
    checks: tuple[Check, ...] = ()
    instructions: Path | None = None
    solution: Solution | None = None
    # host tools the lab needs besides the engine, e.g. "docker-compose"
    requires: tuple[str, ...] = ()
    # Containers the learner creates (named like the lab's own, ``lab1-web``): checks may name
    # them; ``up`` does not create them.
    learner_containers: tuple[str, ...] = ()
    # where the spec came from, the other half of the lab's identity on an engine
    # (``labspec.catalog.lab_origin``); "" until the loader of the provisioner sets it
    origin: str = ""

    # Who the lab was rendered for (seeds ``random`` params): ``--learner``, the inventory's
    # ``learner`` var, or the user name; "" when nobody said.
    learner: str = ""

    @property
    def variant(self) -> dict[str, ParamValue]:
        """The values of the ``random`` params: this learner's own lab."""
        return {p.name: self.values[p.name] for p in self.params
                if p.random is not None and p.name in self.values}

    @property
    def key(self) -> str:
        """The short name used in resource names and labels: ``lab5`` or the slug."""
        return lab_key(self.id, self.name)

    @property
    def secret_values(self) -> tuple[str, ...]:
        """The values of the secret params and secret env entries (``labspec.redact``)."""
        found = [str(value) for p in self.params if p.secret
                 for value in (self.values.get(p.name),) if value is not None
                 and not isinstance(value, bool)]
        found += [c.env[k] for c in self.containers for k in c.secret_env if k in c.env]
        return tuple(v for v in dict.fromkeys(found) if v)

    def container(self, name: str) -> Container:
        for c in self.containers:
            if c.name == name:
                return c
        raise KeyError(name)


@dataclass(frozen=True)
class Host:
    name: str
    address: str  # hostname or IP
    user: str = "root"
    port: int = 22
    key: Path | None = None  # private key file; never printed
    known_hosts: Path | None = None
    docker_host: str | None = None  # DOCKER_HOST on the far side, when not the default
    proxy_jump: str | None = None  # jump hosts, as ssh -J takes them ("gw" or "u@gw:22,gw2")
    ssh_config: Path | None = None  # an ssh_config file to read the host (an alias) from
    vars: Mapping[str, Any] = field(default_factory=dict)
    gpus: int | None = None  # None: probe
    labels: Mapping[str, str] = field(default_factory=dict)
    groups: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        address = f"[{self.address}]" if ":" in self.address else self.address  # IPv6
        return f"ssh://{self.user}@{address}:{self.port}"


@dataclass(frozen=True)
class Inventory:
    path: Path
    hosts: tuple[Host, ...]
    groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    parallelism: int = 10
