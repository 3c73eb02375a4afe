"""SSH as people configure it: hbehind is reachable only through the gateway hjump (ProxyJump),
by an inventory's `proxy_jump` or an ssh_config alias; every hop's host key is verified."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from classroom import Classroom

from provisioner.cli.main import main

pytestmark = [pytest.mark.docker, pytest.mark.ssh]

SPEC = """\
apiVersion: labup/v1
kind: Lab
name: {name}
title: Behind a gateway
containers:
  web:
    image: labup-test/busybox:latest
    command: ["sh", "-c", "trap 'exit 0' TERM INT; httpd -f -p 8080 -h /site & wait"]
    ports: ["{port}:8080"]
    mounts:
      - {{type: bind, source: site, target: /site, read_only: true}}
checks:
  - id: page
    stage: env
    wait: 10
    http: {{to: web, port: 8080, body_regex: "behind"}}
"""


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(argv)
    out, err = capsys.readouterr()
    code = info.value.code
    return (code if isinstance(code, int) else 0), out, err


@pytest.fixture
def behind(classroom: Classroom) -> dict[str, str]:
    env = classroom.env
    if "LABUP_TESTHOSTS_JUMP_INVENTORY" not in env:
        pytest.fail("scripts/testhosts.sh did not make the gateway hosts (hjump, hbehind)")
    from conftest import TEST_IMAGE, build_busybox_image

    from provisioner.engine.ssh_docker import docker_client_over_ssh

    client = docker_client_over_ssh(
        f"ssh://root@{env['LABUP_TESTHOSTS_BEHIND_ADDR']}", key=classroom.key,
        known_hosts=classroom.known_hosts, proxy_jump=f"root@{env['LABUP_TESTHOSTS_JUMP_ADDR']}",
    )
    try:
        if not client.images.list(name=TEST_IMAGE):
            build_busybox_image(client, TEST_IMAGE)
    finally:
        client.close()
    return env


def _lab(tmp_path: Path, name: str, port: int) -> Path:
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "index.html").write_text("<h1>behind the gateway</h1>\n")
    spec = tmp_path / "lab.yaml"
    spec.write_text(SPEC.format(name=name, port=port))
    return spec


def test_an_inventory_host_behind_a_gateway_comes_up_through_proxy_jump(
    classroom: Classroom, behind: dict[str, str], tmp_path: Path, unique: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    name = f"jump-{unique}"
    spec = _lab(tmp_path, name, 18291)
    inventory = behind["LABUP_TESTHOSTS_JUMP_INVENTORY"]
    try:
        code, out, _ = _run(["up", str(spec), "-i", inventory], capsys)
        assert code == 0, out
        assert "hbehind" in out and "all hosts ok" in out
        code, out, _ = _run(["check", str(spec), "-i", inventory, "--json"], capsys)
        assert code == 0, out
        (host,) = json.loads(out)["hosts"]
        assert host["status"] == "ok" and host["result"]["results"][0]["status"] == "pass"
    finally:
        _run(["down", str(spec), "-i", inventory], capsys)


def test_an_ssh_config_alias_with_proxy_jump_is_an_engine_url(
    classroom: Classroom, behind: dict[str, str], tmp_path: Path, unique: str,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LABUP_SSH_CONFIG", behind["LABUP_TESTHOSTS_SSH_CONFIG"])
    monkeypatch.delenv("LABUP_SSH_KEY", raising=False)  # the config's IdentityFile is used
    monkeypatch.delenv("LABUP_KNOWN_HOSTS", raising=False)  # and its UserKnownHostsFile
    name = f"jumpcfg-{unique}"
    spec = _lab(tmp_path, name, 18292)
    try:
        code, _, err = _run(["up", str(spec), "--host", "ssh://behind", "-q"], capsys)
        assert code == 0, err
        code, out, _ = _run(["status", str(spec), "--host", "ssh://behind"], capsys)
        assert code == 0 and f"{name}-web" in out and "running" in out
    finally:
        _run(["down", str(spec), "--host", "ssh://behind", "-q"], capsys)


def test_a_gateway_whose_key_is_unknown_is_refused_and_named(
    classroom: Classroom, behind: dict[str, str], tmp_path: Path,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    known = tmp_path / "known_hosts"  # knows hbehind but not the gateway
    behind_line = next(
        line for line in classroom.known_hosts.read_text().splitlines()
        if line.startswith(behind["LABUP_TESTHOSTS_BEHIND_ADDR"] + " ")
    )
    known.write_text(behind_line + "\n")
    monkeypatch.setenv("LABUP_SSH_KEY", str(classroom.key))
    monkeypatch.setenv("LABUP_KNOWN_HOSTS", str(known))
    jump = behind["LABUP_TESTHOSTS_JUMP_ADDR"]
    inventory = tmp_path / "jump.yml"
    inventory.write_text(
        "apiVersion: labup/v1\nkind: Inventory\nhosts:\n"
        f"  hbehind: {{address: {behind['LABUP_TESTHOSTS_BEHIND_ADDR']}, "
        f"proxy_jump: root@{jump}, known_hosts: {known}}}\n"
    )
    code, out, _ = _run(["status", "-i", str(inventory)], capsys)
    assert code == 1
    assert f"root@{jump}:22" in out and "host key not known" in out
    assert "Traceback" not in out
