"""Small pure helpers of the checks: HTTP parsing, sizes, probe command lines."""

from __future__ import annotations

import re

import pytest

from provisioner.checks.context import CheckError, parse_size
from provisioner.checks.file import facts_from_engine_stat
from provisioner.checks.net import http_argv, parse_http_response, tcp_argv
from provisioner.checks.registry import CHECK_TYPES, get_check, known_types


def test_parse_http_response_reads_status_headers_and_body() -> None:
    resp = parse_http_response(
        "HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nX-A: b:c\r\n\r\n<h1>nope</h1>\n"
    )
    assert (resp.status, resp.reason) == (404, "Not Found")
    assert resp.headers == {"content-type": "text/html", "x-a": "b:c"}
    assert resp.body == "<h1>nope</h1>\n"


def test_parse_http_response_decodes_chunked_bodies() -> None:
    raw = (
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    )
    assert parse_http_response(raw).body == "hello world"


def test_parse_http_response_rejects_what_is_not_http() -> None:
    with pytest.raises(CheckError, match=re.escape("no HTTP response (got 'SSH-2.0-OpenSSH_9.2')")):
        parse_http_response("SSH-2.0-OpenSSH_9.2\r\n")


@pytest.mark.parametrize(
    ("text", "size"),
    [
        (1024, 1024),
        ("512k", 512 * 1024),
        ("200MB", 200 * 1024**2),
        ("1.5g", int(1.5 * 1024**3)),
        ("64 MiB", 64 * 1024**2),
        ("10", 10),
    ],
)
def test_parse_size(text: object, size: int) -> None:
    assert parse_size(text) == size


def test_parse_size_rejects_nonsense() -> None:
    with pytest.raises(CheckError, match="not a size: 'lots'"):
        parse_size("lots")


def test_probe_commands_pass_input_as_arguments_never_as_shell_code() -> None:
    argv = http_argv("web; rm -rf /", 80, "GET", "/$(reboot)", "a'b", 3)
    assert argv[:2] == ["sh", "-c"]
    assert "web; rm -rf /" not in argv[2] and "$(reboot)" not in argv[2]
    assert argv[4:] == ["web; rm -rf /", "80", "GET", "/$(reboot)", "a'b", "3"]
    assert tcp_argv("db", 5432, 0.2) == ["nc", "-w", "1", "db", "5432", "-e", "true"]


def test_registry_knows_ten_types_and_loads_each() -> None:
    assert known_types() == tuple(sorted(CHECK_TYPES)) and len(CHECK_TYPES) == 10
    for name in CHECK_TYPES:
        assert callable(get_check(name))


def test_batch_script_refers_to_commands_only_by_position() -> None:
    from provisioner.engine.sidecars import _batch_argv

    argv = _batch_argv([["echo", "$(reboot)"], ["nc", "-w", "1", "db; rm -rf /", "5432"]], "B")
    script = argv[2]
    assert "reboot" not in script and "rm -rf /" not in script.replace('rm -rf "$d"', "")
    assert '"${2}" "${3}"' in script and '"${4}" "${5}" "${6}" "${7}" "${8}"' in script
    assert argv[4:] == ["B", "echo", "$(reboot)", "nc", "-w", "1", "db; rm -rf /", "5432"]


def test_batch_output_is_split_by_lengths_not_by_content() -> None:
    from provisioner.engine.sidecars import _split_batch

    raw = b"B 0 9 0\nB 1 2 3\nxB 3 1 3\n\nzz\xff"
    assert [(r.rc, r.stdout, r.stderr) for r in _split_batch(raw, "B", 2, "")] == [
        (0, "B 1 2 3\nx", ""),
        (3, "\n", "zz\ufffd"),
    ]


@pytest.mark.parametrize(
    ("mode", "size", "kind", "perm"),
    [
        (0o644, 12, "regular file", 0o644),
        (0o600, 0, "regular empty file", 0o600),
        ((1 << 31) | 0o755, 4096, "directory", 0o755),
        ((1 << 31) | (1 << 20) | 0o777, 4096, "directory", 0o1777),  # /tmp: sticky
        ((1 << 27) | 0o777, 12, "symbolic link", 0o777),
        ((1 << 23) | 0o755, 9, "regular file", 0o4755),  # setuid
        ((1 << 22) | 0o2755 & 0o777, 9, "regular file", 0o2755),  # setgid
        ((1 << 26) | (1 << 21) | 0o666, 0, "character special file", 0o666),
        ((1 << 26) | 0o660, 0, "block special file", 0o660),
        ((1 << 25) | 0o644, 0, "fifo", 0o644),
        ((1 << 24) | 0o755, 0, "socket", 0o755),
    ],
)
def test_engine_stat_modes_read_like_stat(mode: int, size: int, kind: str, perm: int) -> None:
    facts = facts_from_engine_stat({"name": "x", "size": size, "mode": mode})
    assert (facts.exists, facts.kind, facts.mode) == (True, kind, perm)
