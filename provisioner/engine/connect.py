"""Turn an engine URL (``--host``, ``DOCKER_HOST``, an inventory host) into a live engine."""

from __future__ import annotations

import os
from pathlib import Path

from labspec.errors import EngineUnreachable, UserInputError
from provisioner.engine.docker_engine import DockerEngine
from provisioner.engine.http import DEFAULT_URL, ENGINE_HINT, api_error_text, call_timeout

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
    if chosen.startswith("ssh://"):
        from labspec.hosts import parse_ssh_url

        # the inventory's rules (a password, a user or address that is not a plain name, a
        # path, a bad port): refused before connecting
        parse_ssh_url(chosen)
    return chosen


def default_label(url: str) -> str:
    """How a target named only by its URL is called in messages: ``local`` for a socket here."""
    return url if url.startswith(("ssh://", "tcp://", "http://")) else "local"


def connect(
    url: str | None = None,
    *,
    host_label: str | None = None,
    key: Path | None = None,
    known_hosts: Path | None = None,
    docker_host: str | None = None,
    proxy_jump: str | None = None,
    ssh_config: Path | None = None,
    timeout: float = 10.0,
) -> DockerEngine:
    """Connect to the engine at ``url`` (or DOCKER_HOST, or the local socket) and check it answers.

    ``ssh://`` URLs go through :func:`provisioner.engine.ssh_docker.docker_client_over_ssh` (host
    keys checked against known_hosts; ``docker_host`` is the far side's DOCKER_HOST when not the
    default). Raises :class:`EngineUnreachable` with the URL and what to do.
    """
    chosen = engine_url(url)
    label = host_label or default_label(chosen)
    if chosen.startswith("ssh://"):
        from provisioner.engine.ssh_docker import docker_client_over_ssh, ssh_session_of

        client = docker_client_over_ssh(chosen, key=key, known_hosts=known_hosts,
                                        timeout=timeout, docker_host=docker_host,
                                        api_timeout=call_timeout(),
                                        proxy_jump=proxy_jump, ssh_config=ssh_config)
        return DockerEngine(client, url=chosen, host_label=label, ssh=ssh_session_of(client))
    engine = DockerEngine(url=chosen, host_label=label)
    if engine.raw is not None:
        engine.ping(min(timeout, call_timeout()))  # the error names the URL and what happened
        return engine
    try:
        engine.sdk_client().ping()
    except EngineUnreachable:
        raise
    except Exception as e:
        raise EngineUnreachable(
            f"no Docker engine answers at {chosen} ({api_error_text(e)})", hint=ENGINE_HINT
        ) from e
    return engine
