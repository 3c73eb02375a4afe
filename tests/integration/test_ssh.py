"""Docker over SSH against the real test hosts (scripts/testhosts.sh): sshd + dockerd per host."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import pytest
from classroom import TEST_IMAGE, Classroom

from labspec.errors import EngineUnreachable
from provisioner.engine.ssh_docker import docker_client_over_ssh, ssh_session_of
from provisioner.engine.ssh_keys import HostKeyError, SshAuthError, parse_ssh_url

pytestmark = [pytest.mark.docker, pytest.mark.ssh]

KEEP = ["sh", "-c", "trap 'exit 0' TERM INT; sleep 3600 & wait"]


def _established_to(port: int) -> int:
    """TCP connections of THIS process to 127.0.0.1:port in state ESTABLISHED (other processes,
    e.g. other test runs, may use the same test host at the same time)."""
    mine = set()
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            mine.add(target[8:-1])
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        remote, state, inode = fields[2], fields[3], fields[9]
        if remote == f"0100007F:{port:04X}" and state == "01" and inode in mine:
            count += 1
    return count


def test_client_over_ssh_reaches_that_hosts_own_engine(classroom: Classroom) -> None:
    roots = {h.name: classroom.client(h.name).info()["DockerRootDir"] for h in classroom.good}
    for name, root in roots.items():
        assert root == str(classroom.state / name / "data")
    assert len(set(roots.values())) == len(roots)


def test_every_api_call_and_probe_shares_one_ssh_connection(classroom: Classroom) -> None:
    h = classroom.host("h3")
    before = _established_to(h.port)  # the classroom fixture keeps its own connection
    client = docker_client_over_ssh(h.url, key=h.key, known_hosts=h.known_hosts)
    session = ssh_session_of(client)
    assert session is not None
    errors: list[BaseException] = []
    most = 0

    def hammer() -> None:
        try:
            for _ in range(10):
                client.containers.list(all=True)
                client.version()
        except BaseException as e:
            errors.append(e)

    done = threading.Event()

    def sample() -> None:
        nonlocal most
        while not done.is_set():
            most = max(most, session.channel_count)
            time.sleep(0.001)

    try:
        sampler = threading.Thread(target=sample)
        sampler.start()
        threads = [threading.Thread(target=hammer) for _ in range(16)]
        for t in threads:
            t.start()
        probe = session.run(["sh", "-c", 'echo "$DOCKER_HOST"'])
        for t in threads:
            t.join()
        done.set()
        sampler.join()
        assert errors == []
        # MaxSessions is 10 per connection: the pool never goes past its bound
        assert 1 <= most <= 6 + 3 + 1
        assert _established_to(h.port) == before + 1
        assert probe.rc == 0
        assert probe.stdout.strip() == f"unix://{classroom.state}/h3/docker.sock"
    finally:
        client.close()
    deadline = time.monotonic() + 5
    while _established_to(h.port) > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _established_to(h.port) == before


def test_exec_in_a_container_over_ssh_many_times(classroom: Classroom, unique: str) -> None:
    client = classroom.client("h1")
    box = client.containers.run(TEST_IMAGE, KEEP, detach=True, name=f"labup-ssh-{unique}")
    try:
        for i in range(8):  # more than the channel pool: hijacked exec channels must be freed
            res = box.exec_run(["sh", "-c", f"echo out{i}; echo err >&2; exit 3"], demux=True)
            assert res.exit_code == 3
            assert res.output == (f"out{i}\n".encode(), b"err\n")
        session = ssh_session_of(client)
        assert session is not None
        assert session.channel_count <= 6 + 1
    finally:
        box.remove(force=True)


def test_unknown_host_key_is_refused_with_its_fingerprint(
    classroom: Classroom, tmp_path: Path
) -> None:
    h = classroom.host("h1")
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    expected = subprocess.run(
        ["ssh-keygen", "-lf", str(classroom.state / "h1" / "ssh_host_ed25519_key.pub")],
        capture_output=True, text=True, check=True,
    ).stdout.split()[1]
    with pytest.raises(HostKeyError) as info:
        docker_client_over_ssh(h.url, key=h.key, known_hosts=empty)
    text = str(info.value)
    assert "host key not known" in text
    assert expected in text  # the same SHA256 fingerprint OpenSSH shows
    assert f"ssh-keyscan -p {h.port} 127.0.0.1 >> {empty}" in text
    assert empty.read_text() == ""  # never added silently


def test_changed_host_key_is_refused_loudly(classroom: Classroom) -> None:
    h = classroom.host("hbadkey")
    with pytest.raises(HostKeyError) as info:
        docker_client_over_ssh(h.url, key=h.key, known_hosts=h.known_hosts)
    text = str(info.value)
    assert "REMOTE HOST KEY HAS CHANGED" in text
    assert "man-in-the-middle" in text
    assert f"-R '[127.0.0.1]:{h.port}'" in text


def test_down_host_is_one_clear_unreachable_error(classroom: Classroom) -> None:
    h = classroom.host("hdown")
    with pytest.raises(EngineUnreachable) as info:
        docker_client_over_ssh(h.url, key=h.key, known_hosts=h.known_hosts, timeout=3)
    assert "cannot reach the SSH server" in str(info.value)
    assert f"127.0.0.1:{h.port}" in str(info.value)


def test_wrong_user_is_refused_without_showing_the_key(classroom: Classroom) -> None:
    h = classroom.host("h1")
    with pytest.raises(SshAuthError) as info:
        docker_client_over_ssh(
            f"ssh://nobody@127.0.0.1:{h.port}", key=h.key, known_hosts=h.known_hosts
        )
    text = str(info.value)
    assert "refused user 'nobody'" in text
    secret = h.key.read_text() if h.key else ""
    body = "".join(secret.splitlines()[1:-1])
    assert body and body[:40] not in text


def test_host_without_docker_says_so(classroom: Classroom) -> None:
    h = classroom.host("hnodocker")
    with pytest.raises(EngineUnreachable) as info:
        docker_client_over_ssh(h.url, key=h.key, known_hosts=h.known_hosts)
    text = str(info.value)
    assert "SSH works, but no Docker engine answers there" in text
    assert "Cannot connect to the Docker daemon" in text


def test_ssh_url_without_user_or_port_gets_defaults() -> None:
    target = parse_ssh_url("ssh://example.test")
    assert (target.host, target.port) == ("example.test", 22)
    assert target.user
    assert parse_ssh_url("ssh://u@h:2222").known_hosts_name == "[h]:2222"


def test_inventory_docker_host_points_sessions_at_another_engine(classroom: Classroom) -> None:
    """hnodocker's sessions find no engine by default; its docker_host names h1's socket."""
    h = classroom.host("hnodocker")
    sock = f"unix://{classroom.state}/h1/docker.sock"
    client = docker_client_over_ssh(h.url, key=h.key, known_hosts=h.known_hosts, docker_host=sock)
    try:
        assert client.info()["DockerRootDir"] == str(classroom.state / "h1" / "data")
    finally:
        client.close()
