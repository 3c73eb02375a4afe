"""The one interface between the provisioner and a Docker engine.

Checks see the engine only through the narrow door at the top of :class:`Engine`
(``exec``, inspections, ``run_probe``) so a check runs the same locally and over SSH.
The lifecycle (plan/apply/destroy) uses the rest. ``DockerEngine`` in
``provisioner.engine.docker_engine`` implements it for a local socket, tcp:// and ssh://.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class CommandResult:
    rc: int
    stdout: str
    stderr: str = ""


@runtime_checkable
class Engine(Protocol):
    """A Docker engine: local socket, tcp://, or ssh:// (same class, another URL)."""

    @property
    def url(self) -> str:
        """Where the engine is, for messages (``unix:///var/run/docker.sock``, ``ssh://...``)."""
        ...

    @property
    def host_label(self) -> str:
        """Short name of the host for messages and reports (``local``, or the inventory name)."""
        ...

    # -- the narrow door used by checks --------------------------------------------------
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

    def inspect_volume(self, name: str) -> dict[str, Any] | None:
        ...

    def inspect_network(self, name: str) -> dict[str, Any] | None:
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

    def close(self) -> None:
        ...
