"""The small HTTP/1.1 client of DockerEngine against a scripted server on a unix socket:
Content-Length and chunked bodies, 204, errors with the engine's message, kept-alive
connections, and one retry when the server had closed an idle connection."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from labspec.errors import EngineUnreachable
from provisioner.engine.http import RawApi
from provisioner.engine.protocol import ApiError


class Server:
    """Answers each request with the next scripted response; ``close_after`` closes the
    connection after that many answers on it."""

    def __init__(self, path: Path, answers: list[bytes], close_after: int = 0) -> None:
        self.answers = list(answers)
        self.requests: list[bytes] = []
        self.connections = 0
        self.close_after = close_after
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(4)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        served = 0
        rfile = conn.makefile("rb")
        while self.answers:
            head = b""
            while not head.endswith(b"\r\n\r\n"):
                line = rfile.readline()
                if not line:
                    conn.close()
                    return
                head += line
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            self.requests.append(head + rfile.read(length))
            conn.sendall(self.answers.pop(0))
            served += 1
            if self.close_after and served >= self.close_after:
                conn.close()
                return

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def sock_path(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "engine.sock"


def ok(body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


def test_content_length_chunked_and_no_content(sock_path: Path) -> None:
    chunked = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5\r\n[{\"a\"\r\n7;ext=1\r\n: 1}, 2\r\n1\r\n]\r\n0\r\n\r\n")
    server = Server(sock_path, [ok(b'{"Id": "x"}'), chunked,
                                b"HTTP/1.1 204 No Content\r\n\r\n", ok(b"OK")])
    api = RawApi(f"unix://{sock_path}")
    try:
        assert api.request("POST", "/containers/create", params={"name": "a b"},
                           body={"Image": "busybox"}) == {"Id": "x"}
        assert api.request("GET", "/containers/json") == [{"a": 1}, 2]
        assert api.request("POST", "/containers/x/start") is None
        api.ping()
        assert server.connections == 1  # one kept-alive connection for all four
        first = server.requests[0]
        assert first.startswith(b"POST /containers/create?name=a+b HTTP/1.1\r\n")
        assert first.endswith(b'{"Image": "busybox"}')
        assert b"Content-Length: 0" in server.requests[2]
    finally:
        api.close()
        server.close()


def test_http_errors_carry_the_engines_message_and_404_reads_as_none(sock_path: Path) -> None:
    body = b'{"message": "No such container: nope"}'
    not_found = b"HTTP/1.1 404 Not Found\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    conflict = b'{"message": "Conflict. The container name is already in use"}'
    server = Server(sock_path, [
        not_found,
        b"HTTP/1.1 409 Conflict\r\nContent-Length: %d\r\n\r\n%s" % (len(conflict), conflict),
    ])
    api = RawApi(f"unix://{sock_path}")
    try:
        assert api.get("/containers/nope/json") is None
        with pytest.raises(ApiError) as caught:
            api.request("POST", "/containers/create", body={})
        assert caught.value.status == 409 and "already in use" in caught.value.explanation
    finally:
        api.close()
        server.close()


def test_a_connection_closed_by_the_server_is_reopened_once(sock_path: Path) -> None:
    server = Server(sock_path, [ok(b"[]"), ok(b"[1]")], close_after=1)
    api = RawApi(f"unix://{sock_path}")
    try:
        assert api.request("GET", "/networks") == []
        assert api.request("GET", "/networks") == [1]  # first try hits the closed socket
        assert server.connections == 2
    finally:
        api.close()
        server.close()


def test_nothing_listening_is_engine_unreachable(sock_path: Path) -> None:
    api = RawApi(f"unix://{sock_path}")
    with pytest.raises(EngineUnreachable, match=f"no Docker engine answers at unix://{sock_path}"):
        api.ping()


def test_an_events_stream_yields_objects_across_chunks_and_closes_at_once(
    sock_path: Path,
) -> None:
    """The engine's /events answer: chunked, one JSON object per line, a line split over two
    chunks; then nothing, until close() from another thread ends the blocked iteration."""
    import time

    from provisioner.engine.json_stream import JsonStream

    stream_head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    one = b'{"Type": "network", "Action": "connect"}\n{"Type": "cont'
    two = b'ainer", "Action": "start"}\n'
    body = b"%x\r\n%s\r\n%x\r\n%s\r\n" % (len(one), one, len(two), two)
    server = Server(sock_path, [stream_head + body])
    stream = JsonStream(f"unix://{sock_path}", "/events", {"filters": '{"type":["network"]}'})
    seen: list[dict[str, str]] = []
    reader = threading.Thread(target=lambda: seen.extend(stream))
    reader.start()
    try:
        deadline = time.monotonic() + 5
        while len(seen) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert [e["Action"] for e in seen] == ["connect", "start"]
        assert server.requests[0].startswith(b"GET /events?filters=%7B%22type%22")
        started = time.monotonic()
        stream.close()
        reader.join(timeout=5)
        assert not reader.is_alive() and time.monotonic() - started < 1
    finally:
        stream.close()
        server.close()


def test_an_events_stream_the_engine_refuses_is_an_api_error(sock_path: Path) -> None:
    from provisioner.engine.json_stream import JsonStream

    body = b'{"message": "invalid filter \'nope\'"}'
    server = Server(sock_path, [b"HTTP/1.1 400 Bad Request\r\nContent-Length: %d\r\n\r\n%s"
                                % (len(body), body)])
    try:
        with pytest.raises(ApiError, match="invalid filter"):
            JsonStream(f"unix://{sock_path}", "/events", {"filters": '{"nope":["x"]}'})
    finally:
        server.close()
