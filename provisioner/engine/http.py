"""The Engine API over HTTP: a small standard-library client, and the SDK's session.

The lifecycle's calls (list, inspect, create, connect, start, remove) are plain JSON requests
sent through a :class:`Transport`: on ``unix://`` and plain ``tcp://`` a tiny standard-library
HTTP client (:class:`RawApi`), otherwise the docker SDK's own session (:class:`SdkTransport`,
so ``ssh://`` clients work unchanged). ``http.client`` is not used: it pulls in ``email`` and
``ssl`` and every labup command would pay for them at startup.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import urllib.parse
from collections.abc import Iterator, Mapping
from typing import Any, Protocol

from labspec.errors import EngineUnreachable
from provisioner.engine.protocol import ApiError

ENGINE_HINT = "start one with `bash scripts/engine.sh` (or start Docker Desktop), or pass --host"
DEFAULT_URL = "unix:///var/run/docker.sock"


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
        status, headers = self.read_head()
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

    def read_head(self) -> tuple[int, dict[str, str]]:
        """The status line and headers of an answer (lower-cased names)."""
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
        return status, headers

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


class JsonStream:
    """A streaming GET of newline-delimited JSON (``/events``) on a connection of its own.

    Iterating yields each object as it arrives and ends when the engine closes the stream, or
    after ``idle`` seconds without one (the caller opens a new stream, with ``since``, so
    nothing is missed). :meth:`close`, from any thread, ends a blocked iteration at once."""

    def __init__(self, url: str, path: str, params: Mapping[str, str], *,
                 idle: float = 300.0) -> None:
        self._conn = _Connection(url, timeout=10.0)
        self._closed = False
        query = "?" + urllib.parse.urlencode(params) if params else ""
        try:
            self._conn.open()
            assert self._conn.sock is not None
            self._conn.sock.sendall(
                f"GET {path}{query} HTTP/1.1\r\nHost: docker\r\nUser-Agent: labup\r\n\r\n"
                .encode())
            status, headers = self._conn.read_head()
            if status >= 400:
                body = self._conn.rfile.read(int(headers.get("content-length", "0") or 0))
                self._conn.close()
                raise ApiError(status, _message(body))
            self._conn.sock.settimeout(idle)
        except OSError as e:
            self._conn.close()
            raise EngineUnreachable(
                f"no Docker engine answers at {url} ({e.__class__.__name__}: {e})",
                hint=ENGINE_HINT) from e
        self._chunked = headers.get("transfer-encoding", "").lower() == "chunked"

    def __iter__(self) -> Iterator[Any]:
        buffer = b""
        try:
            while not self._closed:
                data = self._read()
                if not data:
                    return
                buffer += data
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        yield json.loads(line)
        except (OSError, ValueError, AttributeError):
            return  # closed, timed out, or the engine went away: the stream ends

    def _read(self) -> bytes:
        rfile = self._conn.rfile
        if not self._chunked:
            return bytes(rfile.read1(65536))
        size_line = rfile.readline(65537)
        if not size_line:
            return b""
        size = int(size_line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            return b""
        data = bytes(rfile.read(size))
        rfile.readline(65537)  # the CRLF after each chunk
        return data

    def close(self) -> None:
        self._closed = True
        sock = self._conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in recv
        self._conn.close()


class SdkTransport:
    """The same requests through a docker SDK client's session (any transport, ssh:// too).

    It uses APIClient internals (``_version``, ``_get``...) of docker-py 7, pinned ``docker<8``
    and guarded by ``tests/unit/test_engine_protocol.py``."""

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
        send = {"GET": self.api._get, "POST": self.api._post, "PUT": self.api._put,
                "DELETE": self.api._delete, "HEAD": self.api.head}[method]
        try:
            resp = send(url, **kwargs)
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
