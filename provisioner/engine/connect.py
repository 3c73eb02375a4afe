"""Turn an engine URL (``--host``, ``DOCKER_HOST``, an inventory host) into a live engine."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from labspec.errors import EngineUnreachable, UserInputError
from provisioner.engine.docker_base import close_when_started
from provisioner.engine.docker_engine import DockerEngine
from provisioner.engine.http import DEFAULT_URL, ENGINE_HINT, api_error_text, call_timeout

SCHEMES = ("unix://", "tcp://", "http://", "ssh://")
WARM_CHANNELS = 2  # API channels opened ahead for a check run over SSH (6 at most in all)


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
    probes: bool = False,
) -> DockerEngine:
    """Connect to the engine at ``url`` (or DOCKER_HOST, or the local socket) and check it answers.

    ``ssh://`` URLs go through :func:`provisioner.engine.ssh_docker.docker_client_over_ssh` (host
    keys checked against known_hosts; ``docker_host`` is the far side's DOCKER_HOST when not the
    default). ``probes``: the caller will run probe checks, so over SSH the probe agent
    starts as soon as the connection is up, while the Docker client is made. Raises
    :class:`EngineUnreachable` with the URL and what to do.
    """
    chosen = engine_url(url)
    label = host_label or default_label(chosen)
    if chosen.startswith("ssh://"):
        return _over_ssh(chosen, label, key=key, known_hosts=known_hosts, timeout=timeout,
                         docker_host=docker_host, proxy_jump=proxy_jump,
                         ssh_config=ssh_config, probes=probes)
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


def _over_ssh(
    url: str,
    label: str,
    *,
    key: Path | None,
    known_hosts: Path | None,
    timeout: float,
    docker_host: str | None,
    proxy_jump: str | None,
    ssh_config: Path | None,
    probes: bool,
) -> DockerEngine:
    """The engine behind ``url``. The docker SDK (a tenth of a second to import) loads on a
    thread while the SSH handshake waits on the network; with ``probes`` the probe agent
    starts on the new connection while the client asks the engine's version."""
    import threading

    from provisioner.engine.ssh import open_session  # paramiko, as the SDK must see it

    loader = threading.Thread(target=_import_quietly, args=("provisioner.engine.ssh_docker",),
                              name="labup-import", daemon=True)
    loader.start()
    session = open_session(url, key=key, known_hosts=known_hosts, timeout=timeout,
                           proxy_jump=proxy_jump, ssh_config=ssh_config)
    agent = None
    try:
        from provisioner.checks.netns import sidecars_only

        if probes and not sidecars_only():
            from provisioner.engine.probe_agent import ProbeAgent

            agent = ProbeAgent.start_soon(session.open_stream, label)
        loader.join()
        from provisioner.engine.ssh_docker import client_over_session

        client = client_over_session(session, api_timeout=call_timeout(),
                                     docker_host=docker_host)
    except BaseException:
        if agent is not None:
            agent.add_done_callback(close_when_started)
        session.close()
        raise
    if probes:  # the checks' inspections go out in parallel: their channels open now
        for _ in range(WARM_CHANNELS):
            threading.Thread(target=_ping_quietly, args=(client,), name="labup-warm",
                             daemon=True).start()
    return DockerEngine(client, url=url, host_label=label, ssh=session, agent_starting=agent)


def _ping_quietly(client: Any) -> None:
    """One API call, so that one more dial-stdio channel is open when the checks start
    (spawning ``docker system dial-stdio`` on the host is most of a first call's time)."""
    with contextlib.suppress(Exception):  # a failure shows in the real call that follows
        client.api.ping()


def _import_quietly(name: str) -> None:
    """Import ``name`` ahead of need; a failure shows where the module is really imported."""
    import importlib

    try:
        importlib.import_module(name)
    except Exception:  # the real import raises it again, in the caller's thread
        return
