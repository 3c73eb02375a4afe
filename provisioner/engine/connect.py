"""Turn ``--host`` / ``DOCKER_HOST`` into a live :class:`DockerEngine`, or one clear error."""

from __future__ import annotations

import os
from pathlib import Path

from labspec.errors import EngineUnreachable, UserInputError
from provisioner.engine.docker_engine import DEFAULT_URL, ENGINE_HINT, DockerEngine, api_error_text

SCHEMES = ("unix://", "tcp://", "http://", "ssh://")


def engine_url(url: str | None) -> str:
    """The URL to use: the argument, else DOCKER_HOST, else the local socket."""
    chosen = url or os.environ.get("DOCKER_HOST") or DEFAULT_URL
    if chosen.startswith("/"):
        chosen = "unix://" + chosen
    if not chosen.startswith(SCHEMES):
        raise UserInputError(
            f"engine URL {chosen!r} is not understood",
            hint="use unix:///path/docker.sock, tcp://host:port or ssh://user@host:port",
        )
    return chosen


def connect(
    url: str | None = None,
    *,
    host_label: str | None = None,
    key: Path | None = None,
    known_hosts: Path | None = None,
    timeout: float = 10.0,
) -> DockerEngine:
    """Connect to the engine at ``url`` (or DOCKER_HOST, or the local socket) and check it answers.

    ``ssh://`` URLs go through :func:`provisioner.engine.ssh.docker_client_over_ssh` (host keys
    checked against known_hosts). Raises :class:`EngineUnreachable` with the URL and what to do.
    """
    chosen = engine_url(url)
    label = host_label or ("local" if not chosen.startswith(("ssh://", "tcp://")) else chosen)
    if chosen.startswith("ssh://"):
        from provisioner.engine.ssh import docker_client_over_ssh

        client = docker_client_over_ssh(chosen, key=key, known_hosts=known_hosts, timeout=timeout)
        engine = DockerEngine(client, url=chosen, host_label=label)
    else:
        engine = DockerEngine(url=chosen, host_label=label)
    if engine.raw is not None:
        try:
            engine.ping(timeout)
        except EngineUnreachable as e:
            raise EngineUnreachable(
                f"no Docker engine answers at {chosen}", hint=ENGINE_HINT
            ) from e
    else:
        try:
            engine.client.ping()
        except EngineUnreachable:
            raise
        except Exception as e:
            raise EngineUnreachable(
                f"no Docker engine answers at {chosen} ({api_error_text(e)})", hint=ENGINE_HINT
            ) from e
    return engine
