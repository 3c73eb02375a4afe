"""Every engine call has a deadline: an engine that accepts and never answers, or answers one
byte at a time, fails the command in bounded time, with one line naming the call."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

LABUP = str(Path(sys.executable).parent / "labup")


def _serve(path: Path, mode: str) -> Iterator[None]:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(8)
    stop = threading.Event()

    def handle(conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                if mode == "trickle":  # a valid answer, one byte every 0.3 s
                    for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK":
                        if stop.is_set():
                            return
                        conn.sendall(bytes([byte]))
                        time.sleep(0.3)
                else:
                    stop.wait(30)
            except OSError:
                return

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield
    finally:
        stop.set()
        server.close()


@pytest.fixture(params=["silent", "trickle"])
def stuck_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    path = tmp_path / "docker.sock"
    yield from (f"unix://{path}" for _ in _serve(path, str(request.param)))


def test_a_stuck_engine_fails_the_command_in_bounded_time(stuck_engine: str) -> None:
    t0 = time.monotonic()
    done = subprocess.run(
        [LABUP, "status", "--host", stuck_engine], capture_output=True, text=True, timeout=60,
        env={**os.environ, "LABUP_CALL_TIMEOUT": "2"},
    )
    took = time.monotonic() - t0
    assert done.returncode == 3, done.stderr
    assert "did not finish its answer to GET /_ping within 2 s" in done.stderr
    assert "Traceback" not in done.stderr
    assert took < 20  # bounded: the deadline, not the engine's pace
