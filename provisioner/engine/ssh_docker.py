"""Docker engines over SSH: a ``docker.DockerClient`` whose requests ride one SSH connection.

:func:`docker_client_over_ssh` returns a client whose HTTP requests travel over
``docker system dial-stdio`` channels of ONE :class:`~provisioner.engine.ssh.SshSession`. The
channels are pooled and bounded (at most ``pool_size`` API channels, beside the session's exec
and SFTP channels). docker-py's own ssh adapter opens an unbounded number of channels under
load and only knows ``~/.ssh/known_hosts``; this one takes the key and known_hosts of a host.
"""

from __future__ import annotations

import queue
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# first: the docker SDK imports paramiko, which must come without invoke (see ssh_lib)
from provisioner.engine import ssh_lib  # noqa: F401

# isort: split
import docker
import requests.adapters
import urllib3
import urllib3.connection
import urllib3.connectionpool

from labspec.errors import EngineError, EngineUnreachable
from provisioner.engine.ssh import SshSession, open_session

DEFAULT_POOL_SIZE = 6  # API channels; + EXEC_CHANNELS + 1 SFTP stays within MaxSessions 10
DIAL_STDIO = ("docker", "system", "dial-stdio")


class _ChannelConnection(urllib3.connection.HTTPConnection):
    def __init__(self, session: SshSession, dial: Sequence[str], timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._session = session
        self._dial = tuple(dial)
        self._channel_timeout = timeout

    def connect(self) -> None:
        self.sock = self._session.open_channel(self._dial, timeout=self._channel_timeout)


class _ChannelPool(urllib3.connectionpool.HTTPConnectionPool):
    """A blocking, bounded pool: never more than ``maxsize`` dial-stdio channels at once."""

    scheme = "ssh"

    def __init__(
        self, session: SshSession, dial: Sequence[str], timeout: float, maxsize: int
    ) -> None:
        super().__init__("localhost", timeout=timeout, maxsize=maxsize, block=True)
        self._session = session
        self._dial = tuple(dial)
        self._channel_timeout = timeout
        self._size = maxsize

    def _new_conn(self) -> _ChannelConnection:
        return _ChannelConnection(self._session, self._dial, self._channel_timeout)

    def _get_conn(self, timeout: float | None = None) -> Any:
        if self.pool is None:
            raise urllib3.exceptions.ClosedPoolError(self, "Pool is closed.")
        try:
            conn = self.pool.get(block=True, timeout=self._channel_timeout)
        except queue.Empty:
            raise urllib3.exceptions.EmptyPoolError(
                self,
                f"all {self._size} API channels to {self._session.target.label} stayed busy "
                f"for {self._channel_timeout:g} s",
            ) from None
        if conn is not None and conn.sock is not None:
            chan = conn.sock
            if chan.closed or chan.exit_status_ready():  # dial-stdio ended: open a new one
                conn.close()
        return conn or self._new_conn()


class SshDockerAdapter(requests.adapters.HTTPAdapter):
    """requests adapter sending every Docker API call over the host's one SSH connection."""

    def __init__(
        self,
        session: SshSession,
        *,
        timeout: float,
        pool_size: int = DEFAULT_POOL_SIZE,
        docker_host: str | None = None,
    ) -> None:
        self.session = session
        dial: tuple[str, ...] = DIAL_STDIO
        if docker_host:
            dial = ("env", f"DOCKER_HOST={docker_host}", *DIAL_STDIO)
        self._pool = _ChannelPool(session, dial, timeout, pool_size)
        super().__init__(pool_connections=1, pool_maxsize=pool_size)

    def get_connection(self, url: Any, proxies: Any = None) -> Any:
        return self._pool

    def get_connection_with_tls_context(
        self, request: Any, verify: Any, proxies: Any = None, cert: Any = None
    ) -> Any:
        return self._pool

    def close(self) -> None:
        super().close()
        self._pool.close()
        self.session.close()


_SESSIONS: weakref.WeakKeyDictionary[Any, SshSession] = weakref.WeakKeyDictionary()


def ssh_session_of(client: Any) -> SshSession | None:
    """The SSH connection behind a client made by :func:`docker_client_over_ssh`, if any."""
    return _SESSIONS.get(client)


def docker_client_over_ssh(
    url: str,
    *,
    key: Path | str | None = None,
    known_hosts: Path | str | None = None,
    timeout: float = 10.0,
    api_timeout: float = 120.0,
    pool_size: int = DEFAULT_POOL_SIZE,
    docker_host: str | None = None,
    proxy_jump: str | None = None,
    ssh_config: Path | None = None,
) -> docker.DockerClient:
    """A docker SDK client for the engine behind ``ssh://user@host:port``.

    ``timeout`` bounds connecting (TCP, handshake, auth, per hop); ``api_timeout`` each API
    call. The host may be an alias of the ssh_config (``ssh_config``, else
    ``LABUP_SSH_CONFIG``, else ``~/.ssh/config``), reached through its ProxyJump hosts or
    ``proxy_jump``. The key defaults to ``LABUP_SSH_KEY``, else the config's IdentityFile,
    ssh-agent and ``~/.ssh/id_*``; host keys are checked against ``known_hosts`` (default
    ``LABUP_KNOWN_HOSTS``, else the config's UserKnownHostsFile, else ``~/.ssh/known_hosts``).
    Raises :class:`HostKeyError`, :class:`SshAuthError` or ``EngineUnreachable`` (no sshd, or
    no Docker engine answering on the far side), each one line with a hint.
    """
    session = open_session(url, key=key, known_hosts=known_hosts, timeout=timeout,
                           proxy_jump=proxy_jump, ssh_config=ssh_config)
    try:
        return client_over_session(session, api_timeout=api_timeout, pool_size=pool_size,
                                   docker_host=docker_host)
    except BaseException:
        session.close()
        raise


def client_over_session(
    session: SshSession,
    *,
    api_timeout: float = 120.0,
    pool_size: int = DEFAULT_POOL_SIZE,
    docker_host: str | None = None,
) -> docker.DockerClient:
    """A docker SDK client over an open ``session`` (the caller closes the session when this
    raises); :func:`ssh_session_of` finds the session again from the client."""
    client = _client_over(session, api_timeout=api_timeout, pool_size=pool_size,
                          docker_host=docker_host)
    _SESSIONS[client] = session
    return client


def _client_over(
    session: SshSession, *, api_timeout: float, pool_size: int, docker_host: str | None
) -> docker.DockerClient:
    """A docker SDK client whose every request travels over ``session`` (see the module doc).

    It relies on three internals of docker-py 7 (pinned ``docker<8``; the unit test
    ``test_docker_sdk_internals`` fails first if they move): ``APIClient.mount`` of a custom
    adapter, ``base_url`` and ``_version``."""
    adapter = SshDockerAdapter(
        session, timeout=api_timeout, pool_size=pool_size, docker_host=docker_host
    )
    # A placeholder base URL and version keep the constructor from calling the engine
    # before our adapter is mounted; the real version is asked right after.
    client = docker.DockerClient(
        base_url="tcp://127.0.0.1:9", version="1.24", timeout=int(api_timeout)
    )
    api = client.api
    api.mount("http+docker://ssh", adapter)
    for proto in ("http://", "https://"):
        api.adapters.pop(proto, None)
    api.base_url = "http+docker://ssh"
    try:
        api._version = str(  # type: ignore[attr-defined]
            api.version(api_version=False)["ApiVersion"])
    except (docker.errors.DockerException, requests.exceptions.RequestException,
            urllib3.exceptions.HTTPError, KeyError, OSError) as e:
        raise _no_engine_error(session, docker_host) from e
    return client


def _no_engine_error(session: SshSession, docker_host: str | None) -> EngineUnreachable:
    """Explain why no engine answered over SSH, from the far side's own words."""
    argv = ["docker", "version", "--format", "{{.Server.Version}}"]
    if docker_host:
        argv = ["env", f"DOCKER_HOST={docker_host}", *argv]
    try:
        probe = session.run(argv, timeout=15)
        said = (probe.stderr or probe.stdout).strip().splitlines()
        detail = said[-1] if said else f"exit code {probe.rc}"
    except EngineError as e:
        detail = e.message
    return EngineUnreachable(
        f"SSH works, but no Docker engine answers there: {detail}",
        host=session.target.label,
        hint="install and start Docker on that machine (and put `docker` on PATH for sessions), "
        "or set the host's docker_host in the inventory",
    )
