"""Hosts that accept TCP but never speak SSH, or send a banner and stall: one line for that host,
in bounded time, and the other hosts of the run unaffected."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from classroom import Classroom

from provisioner.cli.main import main

pytestmark = [pytest.mark.ssh, pytest.mark.fleet]


@pytest.fixture
def stalled_ports() -> Iterator[dict[str, int]]:
    """Two listeners on loopback: one silent, one that sends an SSH banner and stalls."""
    stop = threading.Event()
    servers: dict[str, socket.socket] = {}

    def serve(server: socket.socket, banner: bool) -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            if banner:
                conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
            threading.Thread(target=lambda c=conn: (stop.wait(60), c.close()), daemon=True).start()

    for name, banner in (("silent", False), ("banner", True)):
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        servers[name] = server
        threading.Thread(target=serve, args=(server, banner), daemon=True).start()
    yield {name: s.getsockname()[1] for name, s in servers.items()}
    stop.set()
    for s in servers.values():
        s.close()


def test_stalled_hosts_are_one_line_each_and_the_others_carry_on(
    classroom: Classroom, stalled_ports: dict[str, int], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    inventory = tmp_path / "class.yml"
    inventory.write_text(
        "apiVersion: labup/v1\nkind: Inventory\n"
        f"defaults: {{address: 127.0.0.1, user: root, key: {classroom.key}, "
        f"known_hosts: {classroom.known_hosts}}}\n"
        "hosts:\n"
        f"  h1: {{port: {classroom.host('h1').port}}}\n"
        f"  silent: {{port: {stalled_ports['silent']}}}\n"
        f"  banner: {{port: {stalled_ports['banner']}}}\n"
    )
    t0 = time.monotonic()
    with pytest.raises(SystemExit) as code:
        main(["status", "-i", str(inventory)])
    out, err = capsys.readouterr()
    assert code.value.code == 1
    assert time.monotonic() - t0 < 40  # each bounded by the SSH timeout, in parallel
    rows = {line.split()[0]: line for line in out.splitlines()
            if line.split() and line.split()[0] in ("h1", "silent", "banner")}
    assert rows["h1"].split()[1] == "ok"
    assert "no SSH server speaks there" in rows["silent"]
    assert "SSH-2.0-OpenSSH_9.2 answered, then the SSH key exchange stalled" in rows["banner"]
    assert "Traceback" not in out + err
