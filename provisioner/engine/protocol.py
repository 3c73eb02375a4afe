"""The seam between labup and a Docker engine: two protocols and the values that cross them.

:class:`CheckEngine` is the narrow door the checks use (``exec``, inspections, ``stat_path``,
``run_probe``, ``info``), so a check runs the same locally and over SSH. :class:`Engine`
extends it with what the lifecycle needs (list by label, create, start, remove, pull, build)
and two explicit ways out for the few steps that need more: :meth:`Engine.sdk_client` (the
docker SDK client: image save/load streams, offline image builds) and
:meth:`Engine.ssh_session` (the :class:`HostShell` of a remote engine: SFTP, commands on
the host).
``DockerEngine`` in :mod:`provisioner.engine.docker_engine` implements both for ``unix://``,
``tcp://`` and ``ssh://``; the unit tests' fake engine satisfies them too
(``tests/unit/test_engine_protocol.py`` proves both with mypy).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

from labspec.errors import EngineError
from labspec.model import Container

if TYPE_CHECKING:
    from paramiko import SFTPClient

    from provisioner.engine.capabilities import Capabilities
    from provisioner.engine.probe_agent import ProbeAgent

DEFAULT_PARALLEL = 16  # engine calls in flight at once (measured: 16 beats 8 for down, ties up)

# (docker network name, aliases, IPv4 address) of one endpoint of a container
Endpoint = tuple[str, Sequence[str], str | None]


class CommandResult(NamedTuple):
    """What a command printed and how it exited (in a container, a probe, or on a host)."""

    rc: int
    stdout: str
    stderr: str = ""


class Observed(NamedTuple):
    """A labelled resource as the engine lists it (no inspect needed)."""

    kind: str  # "container" | "network" | "volume"
    name: str
    id: str
    labels: Mapping[str, str] = MappingProxyType({})
    state: str = ""  # containers: running / exited / created / restarting / paused / dead
    status: str = ""  # containers: "Up 3 seconds (healthy)", "Exited (1) 2 seconds ago"
    networks: tuple[str, ...] = ()  # containers: names of the networks it is attached to

    @property
    def health(self) -> str | None:
        for marker, health in (("(healthy)", "healthy"), ("(unhealthy)", "unhealthy"),
                               ("(health: starting)", "starting")):
            if marker in self.status:
                return health
        return None

    @property
    def exit_code(self) -> int | None:
        if self.state != "exited" or "(" not in self.status:
            return None
        try:
            return int(self.status.split("(", 1)[1].split(")", 1)[0])
        except ValueError:
            return None


class ApiError(EngineError):
    """The engine answered with an HTTP error; ``status`` 404 means "no such thing"."""

    def __init__(self, status: int, explanation: str) -> None:
        self.status = status
        self.explanation = explanation
        super().__init__(explanation)


class EventStream(Protocol):
    """The engine's events as they happen: iterate for each event (the Engine API's JSON
    object: ``Type``, ``Action``, ``Actor.ID``, ``Actor.Attributes``, ``time``, ``timeNano``);
    :meth:`close` from another thread ends the iteration. The iteration also ends when the
    engine closes the stream, or after a long quiet spell: open another with ``since``."""

    def __iter__(self) -> Iterator[dict[str, Any]]: ...

    def close(self) -> None: ...


class HostShell(Protocol):
    """The machine behind a remote engine, over its SSH connection: commands run on the host
    (never in a container; argv lists, each word quoted for the far side's shell) and SFTP.
    :class:`provisioner.engine.ssh.SshSession` is the one implementation."""

    @property
    def label(self) -> str:
        """``user@host:port``, for messages."""
        ...

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None = 30.0,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> CommandResult:
        """Run argv on the host (in ``cwd``, with ``env`` added); raise EngineError when it
        cannot run or does not finish in time."""
        ...

    def sftp(self) -> SFTPClient:
        """The one SFTP channel of the connection."""
        ...

    def open_stream(self, argv: Sequence[str]) -> Any:
        """A channel running argv on the host that stays open: its stdin and stdout are the
        caller's (``sendall``, ``recv``, ``close``), as the probe agent uses them. It counts
        against the connection's channels until closed."""
        ...


@runtime_checkable
class CheckEngine(Protocol):
    """The narrow door: what a check may do to an engine (look, exec, probe)."""

    @property
    def url(self) -> str:
        """Where the engine is, for messages (``unix:///var/run/docker.sock``, ``ssh://...``)."""
        ...

    @property
    def host_label(self) -> str:
        """Short name of the host for messages and reports (``local``, or the inventory name)."""
        ...

    @property
    def is_local(self) -> bool:
        """The engine runs on this machine (a unix socket here), so "the host" is this one."""
        ...

    def exec(
        self,
        container: str,
        argv: Sequence[str],
        *,
        user: str | None = None,
        workdir: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> CommandResult:
        """Run argv inside a running container (by Docker name); never a shell string."""
        ...

    def inspect_container(self, name: str) -> dict[str, Any] | None:
        """``docker inspect`` of a container by name or id; None when it does not exist."""
        ...

    def stat_path(self, container: str, path: str) -> dict[str, Any] | None:
        """What the engine itself knows of ``path`` in a container, without running anything
        there (``HEAD /containers/{name}/archive``): ``name``, ``size``, ``mode`` (Go's
        ``os.FileMode`` bits), ``mtime``, ``linkTarget``. None when the path does not exist;
        a symbolic link is not followed."""
        ...

    def inspect_image(self, ref: str) -> dict[str, Any] | None:
        """``docker image inspect``; None when the image is not present."""
        ...

    def inspect_volume(self, name: str) -> dict[str, Any] | None: ...

    def inspect_network(self, name: str) -> dict[str, Any] | None: ...

    def probe_agent(self) -> ProbeAgent | None:
        """labup's probes running on the engine's host over SSH (see
        :mod:`provisioner.engine.probe_agent`); None where they cannot (a local engine, a host
        without python3 or root): the probes then run in sidecars."""
        ...

    def run_probe(
        self,
        argv: Sequence[str],
        *,
        network_mode: str | None = None,
        mounts: Sequence[Mapping[str, Any]] = (),
        timeout: float | None = None,
    ) -> CommandResult:
        """Run argv in a throwaway probe container (labup's small probe image), e.g. joined to a
        target's network namespace with ``network_mode="container:lab5-web"``; removed after."""
        ...

    def info(self) -> dict[str, Any]:
        """``docker info`` (cached per engine)."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class Engine(CheckEngine, Protocol):
    """Everything the lifecycle (plan, apply, destroy, status, doctor, bundles) needs."""

    @property
    def api_version(self) -> str:
        """The engine's API version (``1.41``), asked once."""
        ...

    def capabilities(self) -> Capabilities:
        """What the engine is (Docker or Podman, its version) and what labup can do there
        (network drivers, swarm), asked once (:mod:`provisioner.engine.capabilities`)."""
        ...

    def sdk_client(self) -> Any:
        """The docker SDK client for this engine (imports docker on first use). For the steps
        the plain API calls below do not cover: image save/load streams, offline builds."""
        ...

    def ssh_session(self) -> HostShell | None:
        """The SSH connection behind a remote engine (SFTP, commands on that host), or None."""
        ...

    # -- resources, found by label ----------------------------------------------------------
    def list_resources(self, kind: str, labels: Mapping[str, str]) -> list[Observed]:
        """Containers (all states), networks or volumes carrying every label in ``labels``."""
        ...

    def running_containers(self) -> list[dict[str, Any]]:
        """``GET /containers/json`` of every running container (doctor reads their ports)."""
        ...

    def create_network(
        self,
        name: str,
        *,
        driver: str,
        internal: bool,
        subnet: str | None,
        gateway: str | None,
        labels: Mapping[str, str],
    ) -> str: ...

    def remove_network(self, name: str, *, attempts: int = 4) -> str | None:
        """None when removed (or already gone), else the engine's last words."""
        ...

    def disconnect(self, network: str, container: str) -> str | None: ...

    def create_volume(self, name: str, *, labels: Mapping[str, str]) -> None: ...

    def remove_volume(self, name: str) -> str | None: ...

    def create_container(
        self,
        name: str,
        c: Container,
        *,
        networks: Sequence[Endpoint],
        volume_names: Mapping[str, str],
        labels: Mapping[str, str],
        use_gpu: bool,
    ) -> str:
        """Create a container from the model with every network connected; its id."""
        ...

    def start_container(self, name: str) -> None: ...

    def kill_container(self, name: str) -> None: ...

    def rename_container(self, name: str, new_name: str) -> None: ...

    def remove_container(self, name: str, *, force: bool = True) -> str | None: ...

    def logs_tail(self, name: str, lines: int = 20) -> str: ...

    # -- images ---------------------------------------------------------------------------
    def pull_image(self, ref: str, progress: Any = None) -> None: ...

    def build_image(
        self,
        *,
        context: str,
        dockerfile: str,
        tag: str,
        buildargs: Mapping[str, str],
        target: str | None,
        labels: Mapping[str, str],
    ) -> Iterator[dict[str, Any]]: ...

    def inspect_distribution(self, ref: str) -> dict[str, Any]:
        """Ask the registry about ``ref`` through the engine, without pulling; EngineError
        with the registry's own words when it cannot be pulled."""
        ...

    # -- events -----------------------------------------------------------------------------
    def events(
        self, filters: Mapping[str, Sequence[str]], *, since: float | None = None
    ) -> EventStream:
        """``GET /events``: what happens on the engine from now (or from ``since``, a Unix
        time, replayed from the engine's buffer). ``filters`` as the Engine API takes them
        (``{"type": ["container", "network"]}``): values of one key are ORed, keys ANDed."""
        ...
