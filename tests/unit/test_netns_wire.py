"""The small pieces of in-process probing that need no engine: DNS on the wire, hosts and
resolv.conf files, the ICMP checksum, and the switch that turns it off."""

from __future__ import annotations

import os
import socket
import struct
from pathlib import Path

import pytest

from provisioner.checks import netns


def _response(query: bytes, *, rcode: int = 0, answers: list[tuple[int, bytes]]) -> bytes:
    query_id = query[:2]
    question = query[12:]
    header = query_id + struct.pack(">HHHHH", 0x8180 | rcode, 1, len(answers), 0, 0)
    body = b""
    for rtype, rdata in answers:  # each answer names the question by a compression pointer
        body += b"\xc0\x0c" + struct.pack(">HHIH", rtype, 1, 600, len(rdata)) + rdata
    return header + question + body


def test_dns_query_asks_for_an_a_record_with_recursion() -> None:
    q = netns._dns_query(0x1234, "lab5-web.example")
    assert q[:2] == b"\x12\x34"
    assert struct.unpack(">HHHHH", q[2:12]) == (0x0100, 1, 0, 0, 0)
    assert q[12:] == b"\x08lab5-web\x07example\x00\x00\x01\x00\x01"


def test_dns_answer_skips_a_cname_and_takes_the_address() -> None:
    q = netns._dns_query(7, "www")
    cname = b"\x03web\x00"
    data = _response(q, answers=[(5, cname), (1, socket.inet_aton("172.18.0.4"))])
    assert netns._dns_answer(data) == "172.18.0.4"


@pytest.mark.parametrize("rcode", [2, 3, 5])
def test_dns_errors_and_nxdomain_resolve_nothing(rcode: int) -> None:
    q = netns._dns_query(7, "ghost")
    assert netns._dns_answer(_response(q, rcode=rcode, answers=[])) is None


def test_dns_answer_without_an_address_or_truncated() -> None:
    q = netns._dns_query(7, "www")
    assert netns._dns_answer(_response(q, answers=[])) is None
    assert netns._dns_answer(b"\x00\x07") is None
    full = _response(q, answers=[(1, socket.inet_aton("10.0.0.1"))])
    assert netns._dns_answer(full[:-6]) is None


def test_hosts_file_lookup_is_case_insensitive_and_ipv4_only() -> None:
    text = (
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n"
        "172.18.0.3\tabc123 Lab5-Web  # the container itself\n"
        "fe80::1 v6only\n"
    )
    assert netns._hosts_lookup(text, "lab5-web") == "172.18.0.3"
    assert netns._hosts_lookup(text, "localhost") == "127.0.0.1"
    assert netns._hosts_lookup(text, "v6only") is None
    assert netns._hosts_lookup(text, "the") is None  # words after # are a comment


def test_resolv_conf_servers_and_search() -> None:
    text = "# Docker\nnameserver 127.0.0.11\nsearch corp.example lab\noptions ndots:0\n"
    assert netns._resolv_conf(text) == (["127.0.0.11"], ["corp.example", "lab"])


def test_icmp_echo_checksum_verifies() -> None:
    packet = netns._icmp_echo(0xBEEF, 1, b"labup-probe-ping!")  # odd length is padded
    assert packet[0] == 8 and struct.unpack(">H", packet[4:6])[0] == 0xBEEF
    assert netns._checksum(packet) == 0


def test_sidecar_mode_turns_in_process_probes_off(monkeypatch: pytest.MonkeyPatch) -> None:
    data = {"Id": "abc", "State": {"Pid": 1}, "HostsPath": "", "ResolvConfPath": ""}
    monkeypatch.setenv(netns.ENV_MODE, "sidecar")
    assert netns.for_container(data) is None


def test_a_process_that_is_not_the_container_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(netns.ENV_MODE, raising=False)
    monkeypatch.setattr(netns, "_usable", True)
    # pid 1 of this machine is no container with this id: never enter its namespace
    data = {"Id": "0" * 64, "State": {"Pid": 1}, "HostsPath": "", "ResolvConfPath": ""}
    assert netns.for_container(data) is None


def test_a_namespace_that_cannot_be_entered_never_reads_as_closed(tmp_path: Path) -> None:
    # a descriptor that is no network namespace: setns refuses it (as it would refuse a
    # namespace labup has no rights to); the probe must raise, never answer "closed"
    not_a_namespace = tmp_path / "plain-file"
    not_a_namespace.write_text("x")
    fd = os.open(not_a_namespace, os.O_RDONLY)
    ns = netns.Netns(fd, "", "")
    with pytest.raises(netns.NamespaceError):
        ns.tcp("10.0.0.1", 80, 1.0)
    with pytest.raises(netns.NamespaceError):
        ns.ping("10.0.0.1", 1.0)
    with pytest.raises(netns.NamespaceError):
        ns.resolve("lab5-web", 1.0)
