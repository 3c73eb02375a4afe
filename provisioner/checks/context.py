"""What a check type sees: the engine (through the narrow door), the lab and helpers.

Check types never talk to Docker directly: they call ``engine.exec``, ``engine.inspect_*``,
``engine.run_probe`` and ``engine.info`` through this context, so a check runs the same on
the local socket and over SSH.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from labspec.catalog import origin_of
from labspec.errors import LabupError
from labspec.model import Lab
from provisioner.checks import netns
from provisioner.checks.netns import Answer
from provisioner.engine import labels as L
from provisioner.engine.labels import resource_name
from provisioner.engine.protocol import CheckEngine, CommandResult

# Exit codes of the probe's `timeout` wrapper and of a probe that ran out of time.
TIMED_OUT_CODES = (124, 143)


class CheckError(LabupError):
    """A check cannot even look at what it should (no such container, port not published):
    the runner reports it as a failure with this message."""


class CheckBlocked(CheckError):
    """The check cannot grade: what it must look at is not the lab's own (replaced by a
    container labup did not create), or a negative check's target is not there. The runner
    reports it as ``blocked``, never a pass."""


class NetProbes(Protocol):
    """Probes from inside one network namespace: a local :class:`~provisioner.checks.netns.
    Netns`, or one on an SSH engine's host through its probe agent."""

    def tcp(self, address: str, port: int, timeout: float) -> tuple[bool, str]: ...

    def ping(self, address: str, timeout: float) -> tuple[bool, str]: ...

    def http(
        self, method: str, address: str, port: int, path: str, data: str, timeout: float
    ) -> Answer: ...


@dataclass(frozen=True)
class CheckContext:
    engine: CheckEngine
    lab: Lab
    instance: str
    check_id: str
    timeout: float  # seconds one attempt may take

    # -- names ---------------------------------------------------------------------------
    def name(self, key: str) -> str:
        """Docker name of a lab resource (container or volume) by its spec key."""
        return resource_name(self.lab.key, self.instance, key)

    @property
    def is_local(self) -> bool:
        """True when the engine runs on this machine, so "from the host" means 127.0.0.1 here."""
        return self.engine.is_local

    # -- inspections ---------------------------------------------------------------------
    def lookup(self, key: str) -> dict[str, Any] | None:
        """Inspect of container ``key``, None when no container has its name. A container of
        the lab's own must carry the lab's labels (lab, instance, resource, origin): one with
        the name that does not was put there by someone else, and :class:`CheckBlocked` says
        so. Containers the learner creates (``learner_containers``) are found by name."""
        name = self.name(key)
        data = self.engine.inspect_container(name)
        if data is None or not any(c.name == key for c in self.lab.containers):
            return data
        labels = (data.get("Config") or {}).get("Labels") or {}
        owner = labels.get(L.LAB), labels.get(L.INSTANCE), labels.get(L.RESOURCE)
        origin = labels.get(L.ORIGIN)
        if labels.get(L.MANAGED) != "true":
            raise CheckBlocked(
                f"{name} is not the lab's own container: it carries no labup labels, so it "
                "was replaced by one labup did not create; checks grade only the lab's own "
                f"(`labup up {self.lab.key}` puts it back)"
            )
        if owner != (self.lab.key, self.instance, key) or (origin and origin != origin_of(
                self.lab)):
            raise CheckBlocked(
                f"{name} is not this lab's container: its labels say lab {owner[0]}, instance "
                f"{owner[1]}, resource {owner[2]} ({origin or 'no origin'}); checks grade only "
                "the lab's own"
            )
        return data

    def container(self, key: str) -> dict[str, Any]:
        """Inspect of the lab's container ``key``; CheckError when it does not exist."""
        data = self.lookup(key)
        if data is None:
            raise CheckError(f"container {self.name(key)} does not exist")
        return data

    def running_container(self, key: str) -> dict[str, Any]:
        data = self.container(key)
        state = data.get("State") or {}
        if not state.get("Running"):
            raise CheckError(
                f"container {self.name(key)} is not running (status {state.get('Status', '?')})"
            )
        return data

    def container_id(self, key: str) -> str:
        """The ID of the running container ``key``, checked to be the lab's own: every engine
        call that follows names this exact container, not whatever has the name by then."""
        data = self.running_container(key)
        return str(data.get("Id") or self.name(key))

    def published_port(self, key: str, port: int, protocol: str = "tcp") -> int:
        """The host port that container port ``port`` of ``key`` is published on."""
        data = self.container(key)
        ports = (data.get("NetworkSettings") or {}).get("Ports") or {}
        bindings = ports.get(f"{port}/{protocol}") or []
        for binding in bindings:
            host_port = str(binding.get("HostPort") or "")
            if host_port.isdigit():
                return int(host_port)
        raise CheckError(f"port {port}/{protocol} of container {self.name(key)} is not published")

    # -- running things ------------------------------------------------------------------
    def exec(
        self,
        key: str,
        argv: Sequence[str],
        *,
        user: str | None = None,
        workdir: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> CommandResult:
        return self.engine.exec(
            self.container_id(key), list(argv), user=user, workdir=workdir, env=env,
            timeout=self.timeout,
        )

    def probe_from(self, key: str, argv: Sequence[str]) -> CommandResult:
        """Run argv in a probe joined to the network namespace of container ``key``."""
        return self.engine.run_probe(
            list(argv), network_mode=f"container:{self.container_id(key)}",
            timeout=self.timeout + 5,
        )

    def netns(self, key: str) -> NetProbes | None:
        """Container ``key``'s network namespace, when labup can probe from inside it itself:
        here (root on the engine's host, see :mod:`provisioner.checks.netns`), or through the
        probe agent on an SSH engine's host; else None, and the check runs its probe in a
        sidecar."""
        if self.is_local:
            if not netns.enabled():  # no inspect for the sidecar path
                return None
            return netns.for_container(self.running_container(key))
        agent = self.engine.probe_agent()
        if agent is None:
            return None
        return agent.netns(self.running_container(key), self.timeout)

    def host_netns(self, key: str | None) -> NetProbes | None:
        """The engine host's own network, for checks "from the host" on a remote engine, as
        container ``key`` (else any running container of the lab) has it, through the probe
        agent there; else None (a probe sidecar on the host's network does the work)."""
        if self.is_local:
            return None
        agent = self.engine.probe_agent()
        if agent is None:
            return None
        keys = [key] if key else [c.name for c in self.lab.containers]
        for k in keys:
            data = self.lookup(k)
            if data is not None and (data.get("State") or {}).get("Running"):
                return agent.host(data, self.timeout)
        return None

    def probe_host(self, argv: Sequence[str]) -> CommandResult:
        """Run argv in a probe on the engine host's network (for remote engines)."""
        return self.engine.run_probe(list(argv), network_mode="host", timeout=self.timeout + 5)

    def probe_volume(
        self, volume_key: str, argv: Sequence[str], *, read_only: bool
    ) -> CommandResult:
        """Run argv in a probe with the lab's volume ``volume_key`` mounted at /labup-volume."""
        name = self.name(volume_key)
        if self.engine.inspect_volume(name) is None:
            raise CheckError(f"volume {name} does not exist")
        mount = {"type": "volume", "source": name, "target": VOLUME_MOUNT, "read_only": read_only}
        return self.engine.run_probe(list(argv), mounts=[mount], timeout=self.timeout + 5)


VOLUME_MOUNT = "/labup-volume"


# -- small helpers shared by check types -------------------------------------------------
def as_int(value: Any, what: str) -> int:
    """Ports and codes may arrive as strings after params are rendered."""
    if isinstance(value, bool):
        raise CheckError(f"{what}: expected a number, got {value!r}")
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if text.isdigit():
        return int(text)
    raise CheckError(f"{what}: expected a number, got {value!r}")


def regex(pattern: str, what: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern, re.MULTILINE)
    except re.error as e:
        raise CheckError(f"{what}: invalid regex {pattern!r}: {e}") from e


def shorten(text: str, limit: int = 160) -> str:
    """One line, at most ``limit`` characters, for messages."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def target_address(ctx: CheckContext, spec: Mapping[str, Any]) -> str:
    """The name a probe inside the lab uses for the target: ``alias``, else the Docker name
    of ``to`` (resolvable by every container on a shared user-defined network)."""
    alias = spec.get("alias")
    if alias:
        return str(alias)
    to = spec.get("to")
    if not to:
        raise CheckError("from a container, give `to` (a container) or `alias` (a name)")
    return ctx.name(str(to))


def parse_size(value: Any) -> int:
    """Bytes from an integer or a string such as ``200MB``, ``64m``, ``1.5g`` (binary units)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([bkmgtBKMGT]?)(?:i?[bB])?\s*", str(value))
    if not m:
        raise CheckError(f"not a size: {value!r} (use bytes, or 512k, 200MB, 1g)")
    factor = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
    return int(float(m.group(1)) * factor[m.group(2).lower()])


def human_size(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"
