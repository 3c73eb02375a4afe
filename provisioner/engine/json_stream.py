"""The engine's event stream over the standard library: a streaming GET of newline-delimited
JSON (``/events``) on a connection of its own (``unix://``, ``tcp://``)."""

from __future__ import annotations

import contextlib
import json
import socket
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from typing import Any

from labspec.errors import EngineUnreachable
from provisioner.engine.http import ENGINE_HINT, _Connection, _message
from provisioner.engine.protocol import ApiError


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
            self._conn.deadline = time.monotonic() + 10.0  # the head, within a call's bound
            status, headers = self._conn.read_head()
            if status >= 400:
                body = self._conn.read(int(headers.get("content-length", "0") or 0))
                self._conn.close()
                raise ApiError(status, _message(body))
            self._conn.deadline = None  # the events: as long as they come, `idle` between
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
        conn = self._conn
        if not self._chunked:
            return conn.read_some()
        size_line = conn.readline()
        if not size_line:
            return b""
        size = int(size_line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            return b""
        data = conn.read(size)
        conn.readline()  # the CRLF after each chunk
        return data

    def close(self) -> None:
        self._closed = True
        sock = self._conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in recv
        self._conn.close()
