"""The lifecycle commands as a user runs them: real `labup` processes on the real engine."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from labfactory import leftovers, purge

from labspec.errors import EXIT_BAD_INPUT, EXIT_ENGINE, EXIT_INTERRUPTED

pytestmark = pytest.mark.docker

DATA = Path(__file__).resolve().parent.parent / "data" / "labs"
LABUP = str(Path(sys.executable).with_name("labup"))


def labup(*args: str, check: bool = False, env: dict[str, str] | None = None,
          timeout: float = 120) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([LABUP, *args], capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, **(env or {})})
    if check and result.returncode != 0:
        raise AssertionError(f"labup {' '.join(args)} failed ({result.returncode}):\n"
                             f"{result.stdout}\n{result.stderr}")
    return result


def copy_lab(source: str, tmp_path: Path, name: str) -> Path:
    """The lab folder tests/data/labs/SOURCE copied with a unique lab name."""
    folder = tmp_path / name
    shutil.copytree(DATA / source, folder)
    spec = folder / "lab.yaml"
    text = spec.read_text()
    spec.write_text(text.replace(f"name: lifecycle-{source}", f"name: {name}", 1))
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def name(docker_client: Any, test_image: str, unique: str) -> Iterator[str]:
    lab = f"cli-{unique}"
    yield lab
    purge(docker_client, lab)


def test_up_plan_status_down_with_json(name: str, tmp_path: Path, docker_client: Any) -> None:
    folder = copy_lab("basic", tmp_path, name)
    port = free_port()
    first = labup("up", str(folder), "--set", f"web_port={port}", "--json", check=True)
    doc = json.loads(first.stdout)
    assert doc["ok"] and not doc["noop"] and doc["lab"] == name and doc["instance"] == "default"
    assert set(doc) >= {"run_id", "seconds", "plan", "events", "warnings", "checks", "error"}
    assert {(s["kind"], s["key"], s["action"]) for s in doc["plan"]["steps"]} >= {
        ("network", "front", "create"), ("volume", "data", "create"),
        ("container", "web", "create"), ("image", "labup-test/busybox:latest", "keep"),
    }
    assert ("container", f"{name}-web", "healthy") in {
        (e["kind"], e["name"], e["action"]) for e in doc["events"]
    }
    # the published port answers on 127.0.0.1
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=5) as resp:
        assert b"lifecycle basic" in resp.read()
    # a second up does nothing, says so, and prints the instructions with the params
    again = labup("up", str(folder), "--set", f"web_port={port}", check=True)
    assert "up to date, nothing to do" in again.stderr
    assert f"answers on port {port} inside instance default" in again.stdout
    plan = json.loads(labup("plan", str(folder), "--set", f"web_port={port}", "--json",
                            check=True).stdout)
    assert plan["noop"] and plan["counts"]["keep"] == 6
    # a changed param: plan names the field, up replaces only that container
    text = labup("plan", str(folder), "--set", f"web_port={free_port()}", check=True).stdout
    assert f"replace  container {name}-web (ports changed)" in text
    assert "1 to replace, 5 to keep" in text
    status = json.loads(labup("status", name, "--json", check=True).stdout)
    (inst,) = status["instances"]
    assert inst["lab"] == name and inst["state"] == "running"
    assert {c["key"]: c["health"] for c in inst["containers"]} == {"web": "healthy",
                                                                   "client": None}
    assert inst["networks"] == sorted([f"{name}-front", f"{name}-back"])
    human = labup("status", check=True).stdout
    assert f"{name} [default] running" in human
    down = json.loads(labup("down", str(folder), "--json", check=True).stdout)
    assert down["ok"] and {r["name"] for r in down["removed"]} == {
        f"{name}-web", f"{name}-client", f"{name}-front", f"{name}-back"}
    assert leftovers(docker_client, name) == [f"{name}-data"]
    # down by lab key works too, after the spec is gone
    shutil.rmtree(folder)
    assert labup("down", name, "--volumes", check=True).returncode == 0
    assert leftovers(docker_client, name) == []


def test_bad_input_exits_non_zero_with_a_clear_message(tmp_path: Path, name: str) -> None:
    unknown = labup("up", "987")
    assert unknown.returncode == EXIT_BAD_INPUT
    assert "no lab 987 in the catalog" in unknown.stderr and "Traceback" not in unknown.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: labup/v1\nkind: Lab\nname: x\ntitle: t\ncontainers:\n"
                   "  web:\n    image: 5\n")
    invalid = labup("up", str(bad))
    assert invalid.returncode == EXIT_BAD_INPUT
    assert "bad.yaml:7:12: $.containers.web.image" in invalid.stderr
    badset = labup("up", str(copy_lab("basic", tmp_path, name)), "--set", "web_port")
    assert badset.returncode == EXIT_BAD_INPUT and "expected NAME=VALUE" in badset.stderr


def test_unreachable_engine_is_one_clear_line(tmp_path: Path) -> None:
    sock = tmp_path / "nothing.sock"
    for args in (["status"], ["up", str(DATA / "basic")], ["down", str(DATA / "basic")]):
        result = labup(*args, "--host", f"unix://{sock}")
        assert result.returncode == EXIT_ENGINE, result.stderr
        assert f"no Docker engine answers at unix://{sock}" in result.stderr
        assert "scripts/engine.sh" in result.stderr and "Traceback" not in result.stderr
    via_env = labup("status", env={"DOCKER_HOST": f"unix://{sock}"})
    assert via_env.returncode == EXIT_ENGINE and str(sock) in via_env.stderr
    tcp = labup("status", "--host", "tcp://127.0.0.1:1")
    assert tcp.returncode == EXIT_ENGINE and "tcp://127.0.0.1:1" in tcp.stderr


def _wait_for(predicate: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def test_sigkill_mid_up_leaves_only_labelled_resources_and_next_up_converges(
    name: str, tmp_path: Path, docker_client: Any
) -> None:
    folder = copy_lab("slow", tmp_path, name)
    proc = subprocess.Popen([LABUP, "up", str(folder), "-q"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        # kill it while the slow container is starting and the others wait for it
        _wait_for(lambda: any(n.endswith("-slow") for n in leftovers(docker_client, name)))
        time.sleep(0.3)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    left = leftovers(docker_client, name)
    assert left and all(n.startswith(f"{name}-") for n in left)
    labup("up", str(folder), "-q", check=True)
    states = {c["Names"][0].lstrip("/"): c["State"] for c in docker_client.api.containers(
        all=True, filters={"label": [f"labup.lab={name}"]})}
    assert states == {f"{name}-{k}": "running" for k in ("slow", "c1", "c2", "c3", "c4")}
    assert labup("plan", str(folder), check=True).stdout.strip().endswith(
        "nothing to do: up to date")
    labup("down", str(folder), "--volumes", check=True)
    assert leftovers(docker_client, name) == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_interrupted_up_removes_what_it_created(
    sig: signal.Signals, name: str, tmp_path: Path, docker_client: Any
) -> None:
    folder = copy_lab("slow", tmp_path, name)
    proc = subprocess.Popen([LABUP, "up", str(folder)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: any(n.endswith("-slow") for n in leftovers(docker_client, name)))
        time.sleep(0.3)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == EXIT_INTERRUPTED, err
    assert "up failed: removed what this run created (" in err and "interrupted" in err
    assert leftovers(docker_client, name) == []


def test_reset_empties_volumes_and_recreates_containers(
    name: str, tmp_path: Path, docker_client: Any
) -> None:
    folder = copy_lab("basic", tmp_path, name)
    port = str(free_port())
    labup("up", str(folder), "--set", f"web_port={port}", "-q", check=True)
    web = f"{name}-web"
    exec_id = docker_client.api.exec_create(web, ["sh", "-c", "echo work > /data/mine"])
    docker_client.api.exec_start(exec_id)
    before = docker_client.api.inspect_container(web)["Id"]
    doc = json.loads(labup("reset", str(folder), "--set", f"web_port={port}", "--json",
                           check=True).stdout)
    assert {"kind": "volume", "name": f"{name}-data"} in doc["down"]["removed"]
    assert doc["up"]["ok"] and not doc["up"]["noop"]
    assert docker_client.api.inspect_container(web)["Id"] != before
    exec_id = docker_client.api.exec_create(web, ["ls", "/data"])
    assert docker_client.api.exec_start(exec_id) == b""
    labup("down", str(folder), "--volumes", check=True)
    assert leftovers(docker_client, name) == []
