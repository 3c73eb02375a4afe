"""Semantic rules beyond the data cases: cycles, port clashes, addresses, mounts, checks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import labspec
from labspec.semantic import valid_image_reference
from labspec.semantic_base import find_cycle

HEAD = "apiVersion: labup/v1\nkind: Lab\nname: sem\ntitle: Semantic\n"


def problems(tmp_path: Path, body: str, *, allow_unsafe: bool = False) -> list[str]:
    spec = tmp_path / "lab.yaml"
    spec.write_text(HEAD + body)
    return [
        f"{p.line}:{p.column} {p.path}: {p.message}"
        for p in labspec.validate_path(spec, allow_unsafe=allow_unsafe)
    ]


def test_find_cycle_names_the_cycle_in_spec_order() -> None:
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["a"]}) == ["a", "b", "c", "a"]
    assert find_cycle({"x": ["y"], "y": [], "a": ["a"]}) == ["a", "a"]
    assert find_cycle({"a": ["b", "c"], "b": ["c"], "c": []}) is None
    assert find_cycle({"a": ["missing"]}) is None


@pytest.mark.parametrize(
    "ref",
    [
        "busybox",
        "busybox:1.36",
        "library/busybox",
        "ghcr.io/org/app:1.0",
        "localhost:5000/a/b_c:v1.2-rc",
        "python:3.11-slim",
        "a@sha256:" + "0" * 64,
        "[::1]:5000/x",
    ],
)
def test_valid_image_references(ref: str) -> None:
    assert valid_image_reference(ref)


@pytest.mark.parametrize(
    "ref", ["Busybox", "busybox:", "a b", "-x", "x::1", "UPPER/case", "a//b", ":tag"]
)
def test_invalid_image_references(ref: str) -> None:
    assert not valid_image_reference(ref)


def test_all_addresses_clash_with_loopback_on_the_same_port(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        "containers:\n  a:\n    image: busybox\n    ports: ['0.0.0.0:8080:80']\n"
        "  b:\n    image: busybox\n    ports: ['8080:80', '8080:80/udp', '127.0.0.2:8081:80']\n",
    )
    assert found == [
        "11:13 $.containers.b.ports[0]: host port 8080/tcp on 127.0.0.1 is already published by "
        "container 'a' (ports[0] on 0.0.0.0)"
    ]


def test_same_container_cannot_publish_a_port_twice(tmp_path: Path) -> None:
    found = problems(
        tmp_path, "containers:\n  a:\n    image: busybox\n    ports: ['8080:80', '8080:81']\n"
    )
    assert found == [
        "8:24 $.containers.a.ports[1]: host port 8080/tcp on 127.0.0.1 is already published by "
        "this container (ports[0] on 127.0.0.1)"
    ]


def test_port_numbers_must_be_in_range(tmp_path: Path) -> None:
    found = problems(tmp_path, "containers:\n  a:\n    image: busybox\n    ports: ['99999:80']\n")
    assert found == ["8:13 $.containers.a.ports[0]: host port 99999 is not in 1-65535"]


def test_fixed_addresses_need_a_subnet_and_gateways_must_fit(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        "networks:\n  n: {}\n  m: {subnet: 10.5.0.0/24, gateway: 10.6.0.1}\n"
        "containers:\n  a:\n    image: busybox\n    networks:\n      n: {ipv4_address: 10.5.0.9}\n",
    )
    assert found == [
        "7:37 $.networks.m.gateway: 10.6.0.1 is not inside the subnet 10.5.0.0/24",
        "12:25 $.containers.a.networks.n.ipv4_address: "
        "a fixed address needs a network with a `subnet`",
    ]


def test_mount_rules(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    found = problems(
        tmp_path,
        "volumes:\n  v:\ncontainers:\n  a:\n    image: busybox\n    mounts:\n"
        "      - {type: volume, source: v, target: /data, size: 1m}\n"
        "      - {type: bind, source: conf, target: /data}\n"
        "      - {type: bind, source: missing, target: /m}\n",
    )
    assert found == [
        "11:56 $.containers.a.mounts[0].size: size only applies to tmpfs mounts",
        "12:44 $.containers.a.mounts[1].target: /data is already a mount target (mounts[0])",
        "13:30 $.containers.a.mounts[2].source: "
        "bind source missing does not exist in the lab folder",
    ]


def test_a_symlink_that_leaves_the_lab_folder_is_an_escape(tmp_path: Path) -> None:
    os.symlink("/etc", tmp_path / "etc-link")
    body = (
        "containers:\n  a:\n    image: busybox\n"
        "    mounts: [{type: bind, source: etc-link, target: /e}]\n"
    )
    found = problems(tmp_path, body)
    assert len(found) == 1 and "bind of etc-link leaves the lab folder (/etc)" in found[0]
    assert problems(tmp_path, body, allow_unsafe=True) == []


def test_check_fields_name_containers_volumes_and_compile_regexes(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        "volumes:\n  data:\ncontainers:\n  web:\n    image: busybox\n"
        "learner_containers: [mine]\n"
        "checks:\n"
        "  - id: a\n    tcp: {from: web, to: db.example.com, port: 5432}\n"
        "  - id: b\n    tcp: {from: mine, to: 'web', port: 80}\n"
        "  - id: c\n    file: {volume: dat, path: /x}\n"
        "  - id: d\n    exec: {container: wbe, command: [sh], stdout_regex: '[a-'}\n",
    )
    assert found == [
        "17:20 $.checks[2].file.volume: unknown volume 'dat'",
        "19:23 $.checks[3].exec.container: unknown container 'wbe'",
        "19:57 $.checks[3].exec.stdout_regex: "
        "stdout_regex does not compile: unterminated character set at position 0",
    ]


def test_a_check_may_not_need_itself(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        "containers:\n  web:\n    image: busybox\n"
        "checks:\n  - id: a\n    needs: [a]\n    container: {container: web}\n",
    )
    assert found == ["10:13 $.checks[0].needs[0]: check 'a' needs itself"]


def test_a_container_may_not_depend_on_itself(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        "containers:\n  web:\n    image: busybox\n    depends_on: {web: {condition: started}}\n",
    )
    assert found == ["8:18 $.containers.web.depends_on.web: container 'web' depends on itself"]


def test_param_rules(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        "params:\n  a: {type: enum}\n  b: {type: string, choices: [x]}\n"
        "  c: {type: enum, choices: [x, y], default: z}\n"
        "  d: {type: boolean, default: 'true'}\ncontainers:\n  web:\n    image: busybox\n",
    )
    assert found == [
        "6:3 $.params.a: an enum param needs `choices`",
        "7:30 $.params.b.choices: `choices` only applies to enum params, not string",
        "8:45 $.params.c.default: default 'z' is not one of the choices x, y",
        "9:31 $.params.d.default: default 'true' is not a boolean",
    ]
