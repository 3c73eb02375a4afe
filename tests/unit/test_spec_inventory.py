"""The inventory: hosts over SSH, defaults, groups, located problems."""

from __future__ import annotations

from pathlib import Path

import pytest

import labspec
from labspec.errors import SpecError

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "classroom.yml"
HEAD = "apiVersion: labup/v1\nkind: Inventory\n"


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "inv.yml"
    path.write_text(HEAD + body)
    return path


def problems(tmp_path: Path, body: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        labspec.load_inventory(write(tmp_path, body))
    return [f"{p.line}:{p.column} {p.path}: {p.message}" for p in info.value.problems]


def test_the_example_classroom_loads() -> None:
    inv = labspec.load_inventory(EXAMPLE)
    assert inv.path == EXAMPLE.resolve()
    assert [h.name for h in inv.hosts] == ["pc01", "pc02", "pc03", "gpu01"]
    assert inv.groups == {"row1": ("pc01", "pc02", "pc03"), "gpu": ("gpu01",)}
    assert inv.parallelism == 10
    pc02 = inv.hosts[1]
    assert (pc02.address, pc02.user, pc02.port, pc02.url) == (
        "10.0.10.12",
        "student",
        2222,
        "ssh://student@10.0.10.12:2222",
    )
    assert pc02.vars == {"course": "docker-101", "learner": "ben", "port_offset": 2}
    assert pc02.key == Path("~/.ssh/classroom_ed25519").expanduser()
    assert pc02.groups == ("row1",)
    gpu = inv.hosts[3]
    assert (gpu.user, gpu.gpus, gpu.labels) == ("admin", 1, {"room": "lab-b"})
    assert gpu.docker_host == "unix:///run/user/1000/docker.sock"


def test_a_bare_host_takes_its_name_as_address_and_default_fields(tmp_path: Path) -> None:
    inv = labspec.load_inventory(write(tmp_path, "hosts:\n  pc01:\n  pc02: {key: keys/id}\n"))
    pc01, pc02 = inv.hosts
    assert (pc01.address, pc01.user, pc01.port, pc01.key, pc01.gpus) == (
        "pc01",
        "root",
        22,
        None,
        None,
    )
    assert pc02.key == tmp_path / "keys" / "id"  # relative to the inventory's folder
    assert inv.groups == {} and inv.parallelism == 10


def test_unknown_keys_and_wrong_types_are_located(tmp_path: Path) -> None:
    assert problems(tmp_path, "hosts:\n  pc01: {adress: 10.0.0.1, port: ssh}\n") == [
        "4:10 $.hosts.pc01.adress: unknown key 'adress'",
        "4:34 $.hosts.pc01.port: 'ssh' is not an integer",
    ]


def test_groups_name_existing_hosts(tmp_path: Path) -> None:
    assert problems(tmp_path, "hosts:\n  pc01:\ngroups:\n  row1: [pc01, pc9]\n") == [
        "6:16 $.groups.row1[1]: unknown host 'pc9'"
    ]


def test_ssh_url_and_address_fields_do_not_mix(tmp_path: Path) -> None:
    body = "hosts:\n  pc01:\n    ssh: ssh://u@h:2200\n    port: 22\n"
    assert problems(tmp_path, body) == ["6:5 $.hosts.pc01.port: port is also set by the ssh URL"]


def test_bad_ssh_urls_are_refused(tmp_path: Path) -> None:
    found = problems(tmp_path, "hosts:\n  a: {ssh: 'ssh://u@h:99999'}\n  b: {ssh: 'ssh://'}\n")
    assert found[0].startswith("4:12 $.hosts.a.ssh: not a valid ssh URL: Port out of range")
    assert found[1].startswith("5:12 $.hosts.b.ssh: not a valid ssh URL")


def test_two_hosts_at_one_address_are_a_mistake(tmp_path: Path) -> None:
    body = "hosts:\n  a: {address: 10.0.0.1}\n  b: {ssh: 'ssh://root@10.0.0.1'}\n"
    assert problems(tmp_path, body) == [
        "5:3 $.hosts.b: host 'b' has the same address as 'a' (10.0.0.1:22)"
    ]


def test_defaults_cannot_have_an_ssh_url_and_groups_cannot_be_host_names(tmp_path: Path) -> None:
    body = "defaults: {ssh: 'ssh://x'}\nhosts:\n  a:\ngroups:\n  a: [a]\n"
    assert problems(tmp_path, body) == [
        "3:12 $.defaults.ssh: an ssh URL names one host; defaults cannot have one",
        "7:3 $.groups.a: group 'a' has the name of a host",
    ]


def test_an_inventory_needs_hosts(tmp_path: Path) -> None:
    assert problems(tmp_path, "hosts: {}\n") == ["3:8 $.hosts: {} should be non-empty"]


def test_a_lab_spec_is_not_an_inventory(tmp_path: Path) -> None:
    path = tmp_path / "inv.yml"
    path.write_text("apiVersion: labup/v1\nkind: Lab\nhosts: {a: }\n")
    with pytest.raises(SpecError) as info:
        labspec.load_inventory(path)
    assert f"{path}:2:7: $.kind: expected 'Inventory', found 'Lab'" in str(info.value)
