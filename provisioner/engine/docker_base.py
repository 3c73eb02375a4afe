"""The connection to one Docker engine: identity, the transport its requests take, errors.

:class:`DockerConnection` is the base of :class:`~provisioner.engine.docker_engine.DockerEngine`:
requests go through the standard library where the URL allows (``unix://``, ``tcp://``), the
docker SDK client is made on first need (and over SSH, given). The checks' narrow door is in
:mod:`provisioner.engine.docker_checks`, the lifecycle's calls in ``docker_engine``.
"""

from __future__ import annotations

import contextlib
import threading
import urllib.parse
from collections.abc import Mapping
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from labspec.errors import EngineError, EngineUnreachable
from provisioner.engine.http import (
    DEFAULT_URL,
    ENGINE_HINT,
    RawApi,
    SdkTransport,
    Transport,
    api_error_text,
    call_timeout,
)
from provisioner.engine.protocol import ApiError

if TYPE_CHECKING:
    from provisioner.engine.capabilities import Capabilities
    from provisioner.engine.protocol import HostShell


_AGENT_WAIT = 15.0  # seconds an early agent start may still take (its hello is bounded at 10)


def close_when_started(started: Future[Any]) -> None:
    """A done-callback for an agent started early: close it (the engine no longer wants it)."""
    with contextlib.suppress(Exception):
        agent = started.result()
        if agent is not None:
            agent.close()


def _q(name: str) -> str:
    return urllib.parse.quote(name, safe="")


class DockerConnection:
    """Identity and transport of one engine (see the module docstring)."""

    def __init__(
        self,
        client: Any | None = None,
        *,
        url: str | None = None,
        host_label: str = "local",
        timeout: float | None = None,
        pool_size: int = 16,
        transport: Transport | None = None,
        ssh: HostShell | None = None,
        agent_starting: Future[Any] | None = None,
    ) -> None:
        if client is not None and url is None:
            raise ValueError("DockerEngine(client) needs the url the client talks to")
        self._client = client
        self._url = url or DEFAULT_URL
        self._ssh = ssh
        self._agent: Any = None  # the probe agent there: None not tried yet, False unusable
        self._agent_starting = agent_starting  # an agent connect() began to start already
        self._agent_lock = threading.Lock()
        self._host_label = host_label
        self._timeout = timeout if timeout is not None else call_timeout()
        self._pool_size = pool_size
        self._info: dict[str, Any] | None = None
        self._version: dict[str, Any] | None = None
        self._capabilities: Capabilities | None = None
        self._lock = threading.Lock()
        self._version_lock = threading.Lock()
        plain = client is None and RawApi.supports(self._url)
        self.raw: RawApi | None = RawApi(self._url, self._timeout) if plain else None
        self._transport: Transport | None = transport or self.raw

    # -- identity ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return self._url

    @property
    def host_label(self) -> str:
        return self._host_label

    @property
    def is_local(self) -> bool:
        return self._url.startswith("unix://")

    def __repr__(self) -> str:
        return f"DockerEngine({self._url!r}, host_label={self._host_label!r})"

    def ssh_session(self) -> HostShell | None:
        return self._ssh

    def sdk_client(self) -> Any:
        """The docker SDK client, created (and docker imported) on first use."""
        with self._lock:
            if self._client is None:
                try:
                    import docker
                except ImportError as e:  # pragma: no cover - docker is a dependency
                    raise EngineError("the docker Python package is not installed") from e
                try:
                    self._client = docker.DockerClient(
                        base_url=self._url,
                        timeout=int(self._timeout),
                        max_pool_size=self._pool_size,
                    )
                except docker.errors.DockerException as e:
                    raise EngineUnreachable(
                        f"no Docker engine answers at {self._url} ({api_error_text(e)})",
                        hint=ENGINE_HINT,
                    ) from e
            return self._client

    @property
    def api(self) -> Any:
        """The SDK's low-level APIClient (imports docker)."""
        return self.sdk_client().api

    @property
    def transport(self) -> Transport:
        if self._transport is None:
            self._transport = SdkTransport(self.api)
        return self._transport

    def call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        timeout: float | None = None,
    ) -> Any:
        return self.transport.request(method, path, params=params, body=body, timeout=timeout)

    def _fail(self, e: Exception, what: str, resource: str | None = None) -> EngineError:
        if isinstance(e, EngineUnreachable):
            return e
        name = type(e).__name__
        if name in ("ConnectionError", "ConnectTimeout") or isinstance(e, ConnectionError):
            return EngineUnreachable(
                f"lost the Docker engine at {self._url} while trying to {what} ({e})",
                host=self._host_label if self._host_label != "local" else None,
                hint=ENGINE_HINT,
            )
        return EngineError(
            f"could not {what}: {api_error_text(e)}",
            host=self._host_label if self._host_label != "local" else None,
            resource=resource,
        )

    def ping(self, timeout: float | None = None) -> None:
        """Raise EngineUnreachable unless the engine answers."""
        if self.raw is not None:
            self.raw.ping(timeout)
            return
        try:
            self.sdk_client().ping()
        except Exception as e:
            raise EngineUnreachable(
                f"no Docker engine answers at {self._url} ({api_error_text(e)})", hint=ENGINE_HINT
            ) from e

    def version(self) -> dict[str, Any]:
        """The engine's ``/version`` answer, asked once (even when many threads ask at once)."""
        with self._version_lock:
            if self._version is None:
                try:
                    self._version = dict(self.call("GET", "/version") or {})
                except ApiError as e:
                    raise self._fail(e, "read the engine's version") from e
            return self._version

    @property
    def api_version(self) -> str:
        """The engine's API version (``/version``), asked once."""
        return str(self.version().get("ApiVersion") or "1.41")

    @property
    def is_podman(self) -> bool:
        """Podman's Docker-compatible service (from ``/version``, asked once)."""
        return any(c.get("Name") == "Podman Engine" for c in self.version().get("Components")
                   or () if isinstance(c, dict))

    def capabilities(self) -> Capabilities:
        """The engine's kind, version and what labup can do there (``/version``, ``/info``)."""
        if self._capabilities is None:
            from provisioner.engine.capabilities import from_answers

            self._capabilities = from_answers(self.version(), self.info())
        return self._capabilities

    def endpoints_at_create(self) -> bool:
        """Engines with API >= 1.44 take every network endpoint at create; older ones take one."""
        major, minor = (int(x) for x in self.api_version.split(".")[:2])
        return (major, minor) >= (1, 44)

    def info(self) -> dict[str, Any]:
        if self._info is None:
            try:
                self._info = dict(self.call("GET", "/info") or {})
            except ApiError as e:
                raise self._fail(e, "read docker info") from e
        return self._info

    def close(self) -> None:
        starting, self._agent_starting = self._agent_starting, None
        if starting is not None and self._agent is None:  # started early, never used: closed
            starting.add_done_callback(close_when_started)  # when it is up (now, if it is)
        if self._agent:
            self._agent.close()
        if self.raw is not None:
            self.raw.close()
        if self._client is not None:
            self._client.close()
