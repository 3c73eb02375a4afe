"""DockerEngine: the Engine protocol on the Docker Engine API (local socket, tcp://, ssh://).

The lifecycle's calls (list, inspect, create, connect, start, remove) are plain JSON requests
sent through a :class:`Transport`: on ``unix://`` and plain ``tcp://`` a tiny standard-library
HTTP client (:class:`RawApi`), otherwise the docker SDK's own session (so ``ssh://`` clients
work unchanged). ``docker`` is imported only for what needs the SDK (exec, logs, pull, build,
probes, or an injected client): a no-op ``labup up`` and a ``labup down`` never import it.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from labspec.errors import EngineError, EngineUnreachable
from labspec.model import Container
from provisioner.engine.protocol import CommandResult

ENGINE_HINT = "start one with `bash scripts/engine.sh` (or start Docker Desktop), or pass --host"
DEFAULT_URL = "unix:///var/run/docker.sock"
DEFAULT_PARALLEL = 16  # engine calls in flight at once (measured: 16 beats 8 for down, ties up)


@dataclass(frozen=True)
class Observed:
    """A labelled resource as the engine lists it (no inspect needed)."""

    kind: str  # "container" | "network" | "volume"
    name: str
    id: str
    labels: Mapping[str, str] = field(default_factory=dict)
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


class Transport(Protocol):
    """Send one JSON request to the Engine API (unversioned path: the engine's own version)."""

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        timeout: float | None = None,
    ) -> Any:
        """The decoded JSON answer (None when empty); ApiError on an HTTP error,
        EngineUnreachable when nothing answers."""
        ...

    def close(self) -> None: ...


class _Connection:
    """One HTTP/1.1 connection to the engine (unix socket or TCP), kept alive between calls.

    A few dozen lines instead of ``http.client``: that module pulls in ``email`` and ``ssl``
    and parses headers slowly, and every labup command pays for it at startup."""

    def __init__(self, url: str, timeout: float) -> None:
        self.url = url
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self.rfile: Any = None
        self.last_headers: dict[str, str] = {}  # of the last answer (lower-cased names)

    def open(self) -> None:
        if self.url.startswith("unix://"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self.timeout)
            sock.connect(self.url[len("unix://") :])
        else:
            parsed = urllib.parse.urlparse(self.url.replace("tcp://", "http://", 1))
            sock = socket.create_connection(
                (parsed.hostname or "localhost", parsed.port or 2375), timeout=self.timeout
            )
        self.sock = sock
        self.rfile = sock.makefile("rb")

    def close(self) -> None:
        if self.rfile is not None:
            self.rfile.close()
        if self.sock is not None:
            self.sock.close()
        self.sock = self.rfile = None

    def exchange(
        self, method: str, target: str, data: bytes | None, timeout: float
    ) -> tuple[int, bytes]:
        if self.sock is None:
            self.open()
        assert self.sock is not None
        self.sock.settimeout(timeout)
        head = f"{method} {target} HTTP/1.1\r\nHost: docker\r\nUser-Agent: labup\r\n"
        if data is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
        elif method in ("POST", "PUT"):
            head += "Content-Length: 0\r\n"
        self.sock.sendall(head.encode() + b"\r\n" + (data or b""))
        status_line = self.rfile.readline(65537)
        if not status_line:
            raise ConnectionResetError("the engine closed the connection")
        status = int(status_line.split(None, 2)[1])
        headers: dict[str, str] = {}
        while True:
            line = self.rfile.readline(65537)
            if line in (b"\r\n", b"\n", b""):
                break
            key, _, value = line.decode("latin-1").partition(":")
            headers[key.strip().lower()] = value.strip()
        self.last_headers = headers
        if status in (204, 304) or status < 200 or method == "HEAD":
            body = b""
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = self._chunked()
        elif "content-length" in headers:
            body = self._exactly(int(headers["content-length"]))
        else:
            body = self.rfile.read()
            self.close()
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, body

    def _chunked(self) -> bytes:
        out = bytearray()
        while True:
            size = int(self.rfile.readline(65537).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return bytes(out)
            out += self._exactly(size)
            self.rfile.readline(65537)  # the CRLF after each chunk

    def _exactly(self, size: int) -> bytes:
        data = self.rfile.read(size)
        if len(data) < size:
            raise ConnectionResetError("the engine closed the connection mid-answer")
        return bytes(data)


class RawApi:
    """The Engine API over the standard library (unix:// or plain tcp://), one kept-alive
    connection per thread."""

    def __init__(self, url: str, timeout: float = 60.0) -> None:
        self.url = url
        self.timeout = timeout
        self._local = threading.local()
        self._all: list[_Connection] = []
        self._lock = threading.Lock()

    @staticmethod
    def supports(url: str) -> bool:
        return url.startswith(("unix://", "tcp://", "http://"))

    def _connection(self) -> _Connection:
        conn: _Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = _Connection(self.url, self.timeout)
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def ping(self, timeout: float | None = None) -> None:
        """Raise EngineUnreachable unless ``/_ping`` answers."""
        self.request("GET", "/_ping", raw=True, timeout=timeout)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        timeout: float | None = None,
        raw: bool = False,
    ) -> Any:
        query = "?" + urllib.parse.urlencode(params) if params else ""
        data = json.dumps(body).encode() if body is not None else None
        for attempt in (1, 2):
            conn = self._connection()
            fresh = conn.sock is None
            try:
                status, payload = conn.exchange(method, path + query, data,
                                                timeout if timeout is not None else self.timeout)
            except (OSError, ValueError, IndexError) as e:
                conn.close()
                # a kept-alive connection the engine had closed is retried once on a new one;
                # a timeout is not (the engine may be doing it)
                retry = attempt == 1 and not fresh and not isinstance(e, TimeoutError)
                if not retry:
                    raise EngineUnreachable(
                        f"no Docker engine answers at {self.url} ({e.__class__.__name__}: {e})",
                        hint=ENGINE_HINT,
                    ) from e
                continue
            if status >= 400:
                raise ApiError(status, _message(payload))
            if raw:
                return payload
            return json.loads(payload) if payload else None
        return None  # pragma: no cover

    def head(self, path: str, params: Mapping[str, str] | None = None) -> dict[str, str] | None:
        """HEAD: the answer's headers (lower-cased names); None on 404."""
        try:
            self.request("HEAD", path, params=params, raw=True)
        except ApiError as e:
            if e.status == 404:
                return None
            raise
        return dict(self._connection().last_headers)

    def get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        """GET a JSON document; None on 404."""
        try:
            return self.request("GET", path, params=params)
        except ApiError as e:
            if e.status == 404:
                return None
            raise

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()
        self._local = threading.local()


class SdkTransport:
    """The same requests through a docker SDK client's session (any transport, ssh:// too)."""

    def __init__(self, api: Any) -> None:
        self.api = api

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        timeout: float | None = None,
    ) -> Any:
        url = f"{self.api.base_url}/v{self.api._version}{path}"
        kwargs: dict[str, Any] = {"params": dict(params or {})}
        if timeout is not None:
            kwargs["timeout"] = timeout
        if body is not None:
            kwargs["data"] = json.dumps(body)
            kwargs["headers"] = {"Content-Type": "application/json"}
        try:
            resp = getattr(self.api, f"_{method.lower()}")(url, **kwargs)
        except Exception as e:
            raise EngineUnreachable(f"lost the engine at {self.api.base_url} ({e})") from e
        if resp.status_code >= 400:
            raise ApiError(resp.status_code, _message(resp.content))
        return resp.json() if resp.content else None

    def close(self) -> None:
        """The client belongs to whoever made it."""


def _message(payload: bytes) -> str:
    text = payload.decode(errors="replace").strip()
    try:
        doc = json.loads(text)
    except ValueError:
        return text
    return str(doc.get("message", text)) if isinstance(doc, dict) else text


def label_filter(labels: Mapping[str, str]) -> str:
    return json.dumps({"label": [f"{k}={v}" for k, v in labels.items()]})


def api_error_text(e: Exception) -> str:
    """The engine's own words for an SDK or API error."""
    explanation = getattr(e, "explanation", None)
    if explanation:
        return str(explanation.decode() if isinstance(explanation, bytes) else explanation)
    return str(e)


def _q(name: str) -> str:
    return urllib.parse.quote(name, safe="")


class DockerEngine:
    """One Docker engine. Build it from a URL (requests go through the standard library where
    the URL allows, the SDK client is created on first need) or from an existing
    ``docker.DockerClient`` (e.g. one that talks over SSH)."""

    def __init__(
        self,
        client: Any | None = None,
        *,
        url: str | None = None,
        host_label: str = "local",
        timeout: float = 60.0,
        pool_size: int = 16,
        transport: Transport | None = None,
    ) -> None:
        if client is None and url is None:
            url = DEFAULT_URL
        self._client = client
        self._url = url or str(getattr(getattr(client, "api", None), "base_url", "") or "docker")
        self._host_label = host_label
        self._timeout = timeout
        self._pool_size = pool_size
        self._info: dict[str, Any] | None = None
        self._api_version: str | None = None
        self._lock = threading.Lock()
        self._version_lock = threading.Lock()
        self.raw: RawApi | None = (
            RawApi(self._url, timeout) if client is None and RawApi.supports(self._url) else None
        )
        self._transport: Transport | None = transport or self.raw

    # -- identity ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return self._url

    @property
    def host_label(self) -> str:
        return self._host_label

    def __repr__(self) -> str:
        return f"DockerEngine({self._url!r}, host_label={self._host_label!r})"

    @property
    def client(self) -> Any:
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
        return self.client.api

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
            self.client.ping()
        except Exception as e:
            raise EngineUnreachable(
                f"no Docker engine answers at {self._url} ({api_error_text(e)})", hint=ENGINE_HINT
            ) from e

    @property
    def api_version(self) -> str:
        """The engine's API version (``/version``), asked once."""
        with self._version_lock:  # asked once, even when many threads create at once
            if self._api_version is None:
                answer = self.call("GET", "/version") or {}
                self._api_version = str(answer.get("ApiVersion", "1.41"))
            return self._api_version

    def endpoints_at_create(self) -> bool:
        """Engines with API >= 1.44 take every network endpoint at create; older ones take one."""
        major, minor = (int(x) for x in self.api_version.split(".")[:2])
        return (major, minor) >= (1, 44)

    # -- the narrow door used by checks -------------------------------------------------------
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
        try:
            exec_id = self.api.exec_create(
                container,
                list(argv),
                user=user or "",
                workdir=workdir,
                environment=dict(env) if env else None,
                stdout=True,
                stderr=True,
            )["Id"]
        except Exception as e:
            raise self._fail(e, f"run {list(argv)!r}", container) from e
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                box["out"] = self.api.exec_start(exec_id, demux=True)
            except Exception as e:  # reported to the caller below
                box["err"] = e

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        thread.join(timeout)
        if thread.is_alive():
            return CommandResult(rc=124, stdout="", stderr=f"timed out after {timeout:g}s")
        if "err" in box:
            raise self._fail(box["err"], f"run {list(argv)!r}", container) from box["err"]
        out, err = box["out"] or (None, None)
        rc = self.api.exec_inspect(exec_id).get("ExitCode")
        return CommandResult(
            rc=int(rc) if rc is not None else -1,
            stdout=(out or b"").decode(errors="replace"),
            stderr=(err or b"").decode(errors="replace"),
        )

    def _inspect(self, path: str, what: str) -> dict[str, Any] | None:
        try:
            result = self.call("GET", path)
        except ApiError as e:
            if e.status == 404:
                return None
            raise self._fail(e, f"inspect {what}") from e
        return dict(result) if result is not None else None

    def inspect_container(self, name: str) -> dict[str, Any] | None:
        return self._inspect(f"/containers/{_q(name)}/json", f"container {name}")

    def stat_path(self, container: str, path: str) -> dict[str, Any] | None:
        try:
            if self.raw is not None:
                found = self.raw.head(f"/containers/{_q(container)}/archive", {"path": path})
                header = None if found is None else found.get("x-docker-container-path-stat")
            else:  # over SSH: the docker SDK's transport
                resp = self.api.head(
                    self.api._url("/containers/{0}/archive", container), params={"path": path}
                )
                found = None if resp.status_code == 404 else {}
                header = resp.headers.get("X-Docker-Container-Path-Stat")
        except Exception as e:
            raise self._fail(e, f"look at {path}", container) from e
        if found is None:
            return None
        if not header:
            raise EngineError(
                f"could not look at {path}: the engine sent no stat", resource=container
            )
        stat = json.loads(base64.b64decode(header))
        return dict(stat) if isinstance(stat, dict) else None

    def inspect_image(self, ref: str) -> dict[str, Any] | None:
        return self._inspect(f"/images/{_q(ref)}/json", f"image {ref}")

    def inspect_volume(self, name: str) -> dict[str, Any] | None:
        return self._inspect(f"/volumes/{_q(name)}", f"volume {name}")

    def inspect_network(self, name: str) -> dict[str, Any] | None:
        return self._inspect(f"/networks/{_q(name)}", f"network {name}")

    def run_probe(
        self,
        argv: Sequence[str],
        *,
        network_mode: str | None = None,
        mounts: Sequence[Mapping[str, Any]] = (),
        timeout: float | None = None,
    ) -> CommandResult:
        from provisioner.engine.probe import (  # type: ignore[import-not-found,unused-ignore]
            run_probe,  # the checks engineer's module
        )

        result: CommandResult = run_probe(
            self.client, argv, network_mode=network_mode, mounts=mounts, timeout=timeout
        )
        return result

    def info(self) -> dict[str, Any]:
        if self._info is None:
            try:
                self._info = dict(self.call("GET", "/info") or {})
            except ApiError as e:
                raise self._fail(e, "read docker info") from e
        return self._info

    def close(self) -> None:
        if self.raw is not None:
            self.raw.close()
        if self._client is not None:
            self._client.close()

    # -- listing (one call per kind, label filters, no inspect) -------------------------------
    def list_resources(self, kind: str, labels: Mapping[str, str]) -> list[Observed]:
        flt = {"filters": label_filter(labels)}
        try:
            if kind == "container":
                items = self.call("GET", "/containers/json", params={"all": "1", **flt}) or []
                return [_observed_container(i) for i in items]
            if kind == "network":
                items = self.call("GET", "/networks", params=flt) or []
                return [
                    Observed("network", i["Name"], i["Id"], i.get("Labels") or {}) for i in items
                ]
            if kind == "volume":
                items = (self.call("GET", "/volumes", params=flt) or {}).get("Volumes") or []
                return [
                    Observed("volume", i["Name"], i["Name"], i.get("Labels") or {}) for i in items
                ]
        except ApiError as e:
            raise self._fail(e, f"list {kind}s") from e
        raise ValueError(kind)

    # -- networks and volumes ------------------------------------------------------------------
    def create_network(
        self,
        name: str,
        *,
        driver: str,
        internal: bool,
        subnet: str | None,
        gateway: str | None,
        labels: Mapping[str, str],
    ) -> str:
        body: dict[str, Any] = {
            "Name": name,
            "Driver": driver,
            "Internal": internal,
            "Labels": dict(labels),
            "CheckDuplicate": True,
        }
        if subnet or gateway:
            pool = {k: v for k, v in (("Subnet", subnet), ("Gateway", gateway)) if v}
            body["IPAM"] = {"Driver": "default", "Config": [pool]}
        try:
            result = self.call("POST", "/networks/create", body=body)
        except ApiError as e:
            raise self._fail(e, "create network", name) from e
        return str(result["Id"])

    def remove_network(self, name: str, *, attempts: int = 4) -> str | None:
        """Remove a network; on dockerd's stuck "active endpoints", force-disconnect and retry.
        Returns None when removed (or already gone), else the engine's last words."""
        last = ""
        for attempt in range(attempts):
            try:
                self.call("DELETE", f"/networks/{_q(name)}")
                return None
            except ApiError as e:
                if e.status == 404:
                    return None
                last = e.explanation
                if "active endpoints" not in last:
                    return last
            self._disconnect_all(name)
            time.sleep(0.2 * attempt)
        return last

    def _disconnect_all(self, network: str) -> None:
        info = self.inspect_network(network) or {}
        for endpoint_id, endpoint in (info.get("Containers") or {}).items():
            self.disconnect(network, endpoint.get("Name") or endpoint_id)

    def disconnect(self, network: str, container: str) -> str | None:
        """Force-disconnect a container from a network; None when done (or nothing to do)."""
        try:
            self.call("POST", f"/networks/{_q(network)}/disconnect",
                      body={"Container": container, "Force": True})
        except ApiError as e:
            return None if e.status == 404 else e.explanation
        return None

    def create_volume(self, name: str, *, labels: Mapping[str, str]) -> None:
        try:
            self.call("POST", "/volumes/create", body={"Name": name, "Labels": dict(labels)})
        except ApiError as e:
            raise self._fail(e, "create volume", name) from e

    def remove_volume(self, name: str) -> str | None:
        try:
            self.call("DELETE", f"/volumes/{_q(name)}", params={"force": "1"})
        except ApiError as e:
            return None if e.status == 404 else e.explanation
        return None

    # -- containers ------------------------------------------------------------------------------
    def create_container(
        self,
        name: str,
        c: Container,
        *,
        networks: Sequence[tuple[str, Sequence[str], str | None]],
        volume_names: Mapping[str, str],
        labels: Mapping[str, str],
        use_gpu: bool,
    ) -> str:
        """Create a container from the model; connect every network before it starts.

        ``networks`` are (docker network name, aliases, ipv4 address). API 1.41 attaches one
        network at create, so the others are connected right after; API >= 1.44 takes them all.
        """
        at_create = list(networks) if self.endpoints_at_create() else list(networks[:1])
        body = container_body(c, networks=networks, at_create=at_create,
                              volume_names=volume_names, labels=labels, use_gpu=use_gpu)
        try:
            created = self.call("POST", "/containers/create", params={"name": name}, body=body)
        except ApiError as e:
            raise self._fail(e, "create the container", name) from e
        cid = str(created["Id"])
        for net, aliases, ip in networks[len(at_create):]:
            try:
                self.call("POST", f"/networks/{_q(net)}/connect",
                          body={"Container": cid, "EndpointConfig": _endpoint(aliases, ip)})
            except ApiError as e:
                raise self._fail(e, f"connect it to network {net}", name) from e
        return cid

    def start_container(self, name: str) -> None:
        try:
            self.call("POST", f"/containers/{_q(name)}/start")
        except ApiError as e:
            raise self._fail(e, "start", name) from e

    def kill_container(self, name: str) -> None:
        """SIGKILL a running container (no error when it is not running)."""
        try:
            self.call("POST", f"/containers/{_q(name)}/kill")
        except ApiError as e:
            if e.status not in (404, 409):
                raise self._fail(e, "stop", name) from e

    def rename_container(self, name: str, new_name: str) -> None:
        try:
            self.call("POST", f"/containers/{_q(name)}/rename", params={"name": new_name})
        except ApiError as e:
            raise self._fail(e, f"rename it to {new_name}", name) from e

    def remove_container(self, name: str, *, force: bool = True) -> str | None:
        """Remove a container (and its anonymous volumes); None when gone, else the error."""
        params = {"force": "1" if force else "0", "v": "1"}
        try:
            self.call("DELETE", f"/containers/{_q(name)}", params=params)
        except ApiError as e:
            if e.status == 404 or "is already in progress" in e.explanation:
                return None
            return e.explanation
        return None

    def logs_tail(self, name: str, lines: int = 20) -> str:
        try:
            data = self.api.logs(name, stdout=True, stderr=True, tail=lines)
        except Exception as e:
            return f"(logs unavailable: {api_error_text(e)})"
        return bytes(data).decode(errors="replace").rstrip()

    # -- images --------------------------------------------------------------------------------
    def pull_image(self, ref: str, progress: Any = None) -> None:
        """Pull ``ref``; ``progress(text)`` gets the status lines."""
        repo, tag = _split_ref(ref)
        try:
            for event in self.api.pull(repo, tag=tag, stream=True, decode=True):
                if "error" in event:
                    raise EngineError(f"could not pull: {event['error']}", resource=f"image {ref}")
                if progress is not None and event.get("status"):
                    progress(str(event["status"]))
        except EngineError:
            raise
        except Exception as e:
            raise self._fail(e, "pull", f"image {ref}") from e

    def build_image(
        self,
        *,
        context: str,
        dockerfile: str,
        tag: str,
        buildargs: Mapping[str, str],
        target: str | None,
        labels: Mapping[str, str],
    ) -> Iterator[dict[str, Any]]:
        """Stream the build's JSON events (``stream``, ``error``, ``aux``)."""
        try:
            yield from self.api.build(
                path=context,
                dockerfile=dockerfile,
                tag=tag,
                buildargs=dict(buildargs) or None,
                target=target,
                labels=dict(labels),
                rm=True,
                forcerm=True,
                decode=True,
            )
        except Exception as e:
            raise self._fail(e, "build", f"image {tag}") from e


def _endpoint(aliases: Sequence[str], ip: str | None) -> dict[str, Any]:
    endpoint: dict[str, Any] = {}
    if aliases:
        endpoint["Aliases"] = list(aliases)
    if ip:
        endpoint["IPAMConfig"] = {"IPv4Address": ip}
    return endpoint


def container_body(
    c: Container,
    *,
    networks: Sequence[tuple[str, Sequence[str], str | None]],
    at_create: Sequence[tuple[str, Sequence[str], str | None]],
    volume_names: Mapping[str, str],
    labels: Mapping[str, str],
    use_gpu: bool,
) -> dict[str, Any]:
    """The ``POST /containers/create`` body for a model container (Engine API 1.41+)."""
    mounts: list[dict[str, Any]] = []
    for m in c.mounts:
        mount: dict[str, Any] = {"Target": m.target, "Type": m.type, "ReadOnly": m.read_only}
        if m.type == "tmpfs":
            if m.size:
                mount["TmpfsOptions"] = {"SizeBytes": m.size}
        elif m.type == "volume":
            mount["Source"] = volume_names.get(m.source or "", m.source)
        else:
            mount["Source"] = m.source
        mounts.append(mount)
    host: dict[str, Any] = {
        "Mounts": mounts,
        "ReadonlyRootfs": c.read_only,
        "Privileged": c.privileged,
        "CapAdd": list(c.cap_add) or None,
        "CapDrop": list(c.cap_drop) or None,
    }
    if c.init:
        host["Init"] = True
    if c.ports:
        bindings: dict[str, list[dict[str, str]]] = {}
        for p in c.ports:
            bindings.setdefault(f"{p.container}/{p.protocol}", []).append(
                {"HostIp": p.host_ip, "HostPort": str(p.host) if p.host else ""}
            )
        host["PortBindings"] = bindings
    if c.restart and c.restart != "no":
        policy, _, count = c.restart.partition(":")
        host["RestartPolicy"] = {"Name": policy, "MaximumRetryCount": int(count or 0)}
    if c.resources.cpus:
        host["NanoCpus"] = int(c.resources.cpus * 1e9)
    if c.resources.memory:
        host["Memory"] = c.resources.memory
    if c.resources.pids:
        host["PidsLimit"] = c.resources.pids
    if c.gpus is not None and use_gpu:
        gpu_count = -1 if c.gpus.count == "all" else int(c.gpus.count)
        host["DeviceRequests"] = [{"Driver": "", "Count": gpu_count, "DeviceIDs": None,
                                   "Capabilities": [list(c.gpus.capabilities)], "Options": {}}]
    if c.network_mode is not None:
        host["NetworkMode"] = c.network_mode
    elif networks:
        host["NetworkMode"] = networks[0][0]
    body: dict[str, Any] = {
        "Image": c.image,
        "Labels": dict(labels),
        "Env": [f"{k}={v}" for k, v in c.env.items()],
        "HostConfig": host,
    }
    if c.command is not None:
        body["Cmd"] = list(c.command)
    if c.entrypoint is not None:
        body["Entrypoint"] = list(c.entrypoint)
    for key, value in (("WorkingDir", c.working_dir), ("Hostname", c.hostname),
                       ("User", c.user)):
        if value:
            body[key] = value
    if c.ports:
        body["ExposedPorts"] = {f"{p.container}/{p.protocol}": {} for p in c.ports}
    if c.stop_timeout is not None:
        body["StopTimeout"] = int(c.stop_timeout)
    if c.healthcheck is not None:
        h = c.healthcheck
        body["Healthcheck"] = {
            "Test": list(h.test), "Interval": _ns(h.interval), "Timeout": _ns(h.timeout),
            "Retries": h.retries, "StartPeriod": _ns(h.start_period),
        }
    if at_create:
        body["NetworkingConfig"] = {
            "EndpointsConfig": {net: _endpoint(aliases, ip) for net, aliases, ip in at_create}
        }
    return body


def _ns(seconds: float) -> int:
    return int(seconds * 1_000_000_000)


def _split_ref(ref: str) -> tuple[str, str | None]:
    """``repo:tag`` or ``repo@digest`` -> (repo, tag or digest); default tag latest."""
    if "@" in ref:
        repo, digest = ref.split("@", 1)
        return repo, digest
    last = ref.rsplit("/", 1)[-1]
    if ":" in last:
        repo, tag = ref.rsplit(":", 1)
        return repo, tag
    return ref, "latest"


def _observed_container(item: Mapping[str, Any]) -> Observed:
    names = item.get("Names") or ["/" + str(item.get("Id", ""))[:12]]
    nets = tuple(sorted(((item.get("NetworkSettings") or {}).get("Networks") or {}).keys()))
    return Observed(
        kind="container",
        name=str(names[0]).lstrip("/"),
        id=str(item.get("Id", "")),
        labels=item.get("Labels") or {},
        state=str(item.get("State", "")),
        status=str(item.get("Status", "")),
        networks=nets,
    )
