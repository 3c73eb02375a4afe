"""The Engine API over HTTP: a small standard-library client, and the SDK's session.

The lifecycle's calls (list, inspect, create, connect, start, remove) are plain JSON requests
sent through a :class:`Transport`: on ``unix://`` and plain ``tcp://`` a tiny standard-library
HTTP client (:class:`RawApi`), otherwise the docker SDK's own session (:class:`SdkTransport`,
so ``ssh://`` clients work unchanged). ``http.client`` is not used: it pulls in ``email`` and
``ssl`` and every labup command would pay for them at startup.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import urllib.parse
from collections.abc import Mapping
from typing import Any, Protocol

from labspec.errors import EngineUnreachable
from provisioner.engine.protocol import ApiError

CONNECT_TIMEOUT = 10.0  # seconds to open a connection to the engine


def call_timeout() -> float:
    """The deadline of one engine call, whole answer included: ``LABUP_CALL_TIMEOUT`` (s), 60."""
    try:
        value = float(os.environ.get("LABUP_CALL_TIMEOUT", "60"))
    except ValueError:
        return 60.0
    return value if value > 0 else 60.0


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


class CallTimeout(TimeoutError):
    """The engine did not finish an answer within the call's deadline."""


class _Connection:
    """One HTTP/1.1 connection to the engine (unix socket or TCP), kept alive between calls.

    A few dozen lines instead of ``http.client``: that module pulls in ``email`` and ``ssl``
    and parses headers slowly, and every labup command pays for it at startup. Every call has
    one deadline for the whole answer (an engine that sends a byte now and then never keeps a
    call alive past it), and connecting has its own, shorter one."""

    def __init__(self, url: str, timeout: float) -> None:
        self.url = url
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self.buf = bytearray()
        self.deadline: float | None = 0.0
        self.last_headers: dict[str, str] = {}  # of the last answer (lower-cased names)

    def open(self) -> None:
        connect_timeout = min(self.timeout, CONNECT_TIMEOUT)
        if self.url.startswith("unix://"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(connect_timeout)
            try:
                sock.connect(self.url[len("unix://") :])
            except BaseException:
                sock.close()
                raise
        else:
            parsed = urllib.parse.urlparse(self.url.replace("tcp://", "http://", 1))
            sock = socket.create_connection(
                (parsed.hostname or "localhost", parsed.port or 2375), timeout=connect_timeout
            )
        self.sock = sock
        self.buf = bytearray()

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock = None
        self.buf = bytearray()

    def _fill(self) -> bool:
        """Read what the engine sent next, within the call's deadline; False at end of stream."""
        assert self.sock is not None
        if self.deadline is not None:  # None: a stream, read with the socket's own timeout
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise CallTimeout("the engine did not finish its answer in time")
            self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except TimeoutError as e:
            if self.deadline is None:
                raise
            raise CallTimeout("the engine did not finish its answer in time") from e
        if not chunk:
            return False
        self.buf += chunk
        return True

    def readline(self, limit: int = 65537) -> bytes:
        while b"\n" not in self.buf and len(self.buf) < limit:
            if not self._fill():
                break
        end = self.buf.find(b"\n")
        cut = end + 1 if end >= 0 else min(len(self.buf), limit)
        line = bytes(self.buf[:cut])
        del self.buf[:cut]
        return line

    def read(self, size: int | None = None) -> bytes:
        while size is None or len(self.buf) < size:
            if not self._fill():
                break
        cut = len(self.buf) if size is None else min(size, len(self.buf))
        data = bytes(self.buf[:cut])
        del self.buf[:cut]
        return data

    def exchange(
        self, method: str, target: str, data: bytes | None, timeout: float
    ) -> tuple[int, bytes]:
        if self.sock is None:
            self.open()
        assert self.sock is not None
        self.deadline = time.monotonic() + timeout
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
            body = self.read()
            self.close()
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, body

    def read_head(self) -> tuple[int, dict[str, str]]:
        """The status line and headers of an answer (lower-cased names)."""
        status_line = self.readline()
        if not status_line:
            raise ConnectionResetError("the engine closed the connection")
        status = int(status_line.split(None, 2)[1])
        headers: dict[str, str] = {}
        while True:
            line = self.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            key, _, value = line.decode("latin-1").partition(":")
            headers[key.strip().lower()] = value.strip()
        self.last_headers = headers
        return status, headers

    def read_some(self) -> bytes:
        """What has arrived (waiting for the next bytes if nothing has); b"" at the end."""
        if not self.buf and not self._fill():
            return b""
        data = bytes(self.buf)
        self.buf = bytearray()
        return data

    def _chunked(self) -> bytes:
        out = bytearray()
        while True:
            size = int(self.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return bytes(out)
            out += self._exactly(size)
            self.readline()  # the CRLF after each chunk

    def _exactly(self, size: int) -> bytes:
        data = self.read(size)
        if len(data) < size:
            raise ConnectionResetError("the engine closed the connection mid-answer")
        return data


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
                if retry:
                    continue
                limit = timeout if timeout is not None else self.timeout
                if isinstance(e, CallTimeout):
                    raise EngineUnreachable(
                        f"the Docker engine at {self.url} did not finish its answer to "
                        f"{method} {path} within {limit:g} s",
                        hint="the engine is overloaded or stuck; LABUP_CALL_TIMEOUT sets the "
                        "deadline of each engine call (seconds)",
                    ) from e
                if isinstance(e, TimeoutError):
                    raise EngineUnreachable(
                        f"the Docker engine at {self.url} did not accept a connection within "
                        f"{min(limit, CONNECT_TIMEOUT):g} s ({method} {path})", hint=ENGINE_HINT,
                    ) from e
                raise EngineUnreachable(
                    f"no Docker engine answers at {self.url} ({e.__class__.__name__}: {e})",
                    hint=ENGINE_HINT,
                ) from e
            if status >= 400:
                raise ApiError(status, _message(payload))
            if raw:
                return payload
            return decode_answer(payload)
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
        return decode_answer(resp.content)

    def close(self) -> None:
        """The client belongs to whoever made it."""


def decode_answer(payload: bytes) -> Any:
    """A successful answer's JSON; None when it is empty or not JSON (Podman answers a
    network connect or disconnect with a plain ``OK``)."""
    if not payload:
        return None
    try:
        return json.loads(payload)
    except ValueError:
        return None


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
