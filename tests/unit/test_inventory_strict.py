"""An inventory is held to the rules ``--host`` follows, field by field (labspec.hosts):
what the command line refuses, an inventory refuses, located where it was written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import labspec
from labspec.errors import SpecError, UserInputError
from provisioner.engine.connect import engine_url

LABUP = str(Path(sys.executable).with_name("labup"))
HEAD = "apiVersion: labup/v1\nkind: Inventory\n"


def _problems(tmp_path: Path, body: str) -> list[str]:
    path = tmp_path / "inv.yml"
    path.write_text(HEAD + body)
    with pytest.raises(SpecError) as info:
        labspec.load_inventory(path)
    return [f"{p.path}: {p.message}" for p in info.value.problems]


URLS = [
    "ssh://user:password@host",
    "ssh://user:@host",
    "ssh://-oProxyCommand=touch%20x@host",
    "ssh://user@-oProxyCommand=x",
    "ssh://user@host/path",
    "ssh://user@host?x=1",
    "ssh://user@host#frag",
    "ssh://us%65r@host",
    "ssh://a@b@host",
    "ssh://user@host:0",
    "ssh://user@host:99999",
    "ssh://user@ho st",
    "ssh://",
]


@pytest.mark.parametrize("url", URLS)
def test_an_ssh_url_the_cli_refuses_the_inventory_refuses(tmp_path: Path, url: str) -> None:
    with pytest.raises(UserInputError) as cli:
        engine_url(url)
    found = _problems(tmp_path, f"hosts:\n  pc01: {{ssh: '{url}'}}\n")
    assert found == [f"$.hosts.pc01.ssh: {cli.value.message}"]


def test_a_password_in_an_inventory_url_is_refused_as_the_cli_refuses_it(tmp_path: Path) -> None:
    found = _problems(tmp_path, "hosts:\n  pc01: {ssh: 'ssh://root:hunter2@10.0.0.1'}\n")
    assert found == ["$.hosts.pc01.ssh: passwords in ssh:// URLs are not supported "
                     "(and would be shown in logs)"]
    assert "hunter2" not in "".join(found)


@pytest.mark.parametrize(
    ("body", "where", "why"),
    [
        ("hosts:\n  pc01: {address: '-oProxyCommand=x'}\n", "$.hosts.pc01.address",
         "is not a hostname"),
        ("hosts:\n  pc01: {address: 'a b'}\n", "$.hosts.pc01.address", "is not a hostname"),
        ("hosts:\n  pc01: {address: 'h\\n'}\n", "$.hosts.pc01.address", "is not a hostname"),
        ("hosts:\n  pc01: {user: '-l'}\n", "$.hosts.pc01.user", "is not a user name"),
        ("hosts:\n  pc01: {user: 'root;id'}\n", "$.hosts.pc01.user", "is not a user name"),
        ("defaults: {user: 'x y'}\nhosts:\n  pc01:\n", "$.defaults.user", "is not a user name"),
        ("hosts:\n  pc01: {docker_host: 'unix:///run/d.sock; rm -rf /'}\n",
         "$.hosts.pc01.docker_host", "is not unix:///PATH or tcp://HOST:PORT"),
        ("hosts:\n  pc01: {docker_host: 'ssh://elsewhere'}\n", "$.hosts.pc01.docker_host",
         "is not unix:///PATH"),
        ("hosts:\n  pc01: {docker_host: 'tcp://h:99999'}\n", "$.hosts.pc01.docker_host",
         "is not unix:///PATH"),
        ("hosts:\n  pc01: {key: \"a\\nb\"}\n", "$.hosts.pc01.key", "is not a file path"),
        ("hosts:\n  pc01: {known_hosts: ' '}\n", "$.hosts.pc01.known_hosts", "is not a file path"),
        ("hosts:\n  pc01: {ssh: 'ssh://ok@host', user: x}\n", "$.hosts.pc01.user",
         "user is also set by the ssh URL"),
    ],
)
def test_every_connection_field_is_checked_where_it_is_written(
    tmp_path: Path, body: str, where: str, why: str
) -> None:
    found = _problems(tmp_path, body)
    assert any(p.startswith(where + ": ") and why in p for p in found), found


def test_good_fields_still_load(tmp_path: Path) -> None:
    path = tmp_path / "inv.yml"
    path.write_text(HEAD + "defaults: {user: student, key: keys/id_ed25519}\nhosts:\n"
                    "  pc01: {address: 10.0.0.1, docker_host: 'unix:///run/user/1000/d.sock'}\n"
                    "  pc02: {ssh: 'ssh://admin@pc-02.lab.example:2222'}\n"
                    "  pc03: {address: 'fd00::3', docker_host: 'tcp://127.0.0.1:2375'}\n"
                    "  my_alias:\n")
    inv = labspec.load_inventory(path)
    assert [h.url for h in inv.hosts] == [
        "ssh://student@10.0.0.1:22", "ssh://admin@pc-02.lab.example:2222",
        "ssh://student@[fd00::3]:22", "ssh://student@my_alias:22"]


def test_a_fleet_command_with_a_password_in_the_inventory_is_exit_2_before_any_host(
    tmp_path: Path,
) -> None:
    inv = tmp_path / "inv.yml"
    inv.write_text(HEAD + "hosts:\n  pc01: {ssh: 'ssh://root:hunter2@192.0.2.1'}\n")
    result = subprocess.run([LABUP, "doctor", "-i", str(inv)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2
    assert "passwords in ssh:// URLs are not supported" in result.stdout + result.stderr
    assert "hunter2" not in result.stdout + result.stderr
