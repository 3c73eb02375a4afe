"""`labup serve LAB --host URL`: the dashboard of one machine (the local engine), over plain
HTTP: the event stream pushes a learner's new result as it happens, a reset through the API
replaces the lab, the server stops at once on SIGTERM with a stream open, and neither a
no-op `labup up` nor `labup --help` imports the web stack."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from served import fetch, served, wait_until

from provisioner.cli.main import main
from provisioner.engine import labels as L

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SPEC = """\
apiVersion: labup/v1
kind: Lab
name: {name}
title: One machine
containers:
  web:
    image: labup-test/busybox:latest
    command: ["sh", "-c", "trap 'exit 0' TERM INT; sleep 3600 & wait"]
checks:
  - id: web-running
    stage: env
    container: {{container: web, state: running}}
  - id: flag
    description: /tmp/flag says done
    hint: echo done > /tmp/flag
    exec: {{container: web, command: [cat, /tmp/flag], stdout: done}}
"""
WEB = ("starlette", "uvicorn", "anyio", "h11")


def _events(url: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """The dashboard's event stream, event by event."""
    answer = urllib.request.urlopen(url + "events", timeout=60)
    kind = ""
    for raw in answer:
        line = raw.decode().rstrip("\n")
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: "):
            yield kind, json.loads(line[6:])


def _post(url: str, path: str, csrf: str, body: dict[str, Any]) -> int:
    status, _, _ = fetch(url + path, method="POST", body=json.dumps(body).encode(),
                         headers={"Content-Type": "application/json", "X-CSRF-Token": csrf})
    return status


def test_one_machine_dashboard_pushes_results_and_resets(
    docker_client: Any, test_image: str, tmp_path: Path, unique: str
) -> None:
    name = f"dash-host-{unique}"
    spec = tmp_path / "lab.yaml"
    spec.write_text(SPEC.format(name=name))
    host = "unix:///var/run/docker.sock"
    try:
        with pytest.raises(SystemExit) as code:
            main(["up", str(spec), "--host", host, "-q", "--no-check"])
        assert code.value.code == 0
        # a no-op up (the lab is up) imports nothing of the web stack
        probe = ("import sys\nfrom provisioner.cli.main import main\ntry:\n"
                 f"    main(['up', {str(spec)!r}, '--host', {host!r}, '-q'])\n"
                 "except SystemExit as e:\n    assert e.code == 0, e.code\n"
                 f"print(sorted(m for m in sys.modules if m.split('.')[0] in {set(WEB)!r}"
                 " or m.startswith('provisioner.serve')))\n")
        noop = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                              check=False, timeout=60)
        assert noop.returncode == 0 and noop.stdout.strip() == "[]", noop.stderr

        with served([str(spec), "--host", host, "--port", "0", "--every", "0"]) as dash:
            status, _, page = fetch(dash.url)
            assert status == 200
            csrf = page.decode().split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
            stream = _events(dash.url)
            kind, snapshot = next(stream)
            assert kind == "snapshot" and snapshot["lab"]["key"] == name
            (learner,) = snapshot["learners"]
            assert learner["host"] == "local"
            wait_until(lambda: dash.learner("local")["status"] == "graded",
                       message="the first round")
            web = docker_client.containers.get(f"{name}-web")
            assert web.exec_run(["sh", "-c", "echo done > /tmp/flag"]).exit_code == 0
            assert _post(dash.url, "api/recheck", csrf, {"host": "local"}) == 202
            for kind, doc in stream:  # pushed as it happens: no polling
                if kind == "learner" and doc["all_pass"]:
                    assert doc["checks"]["flag"]["status"] == "pass"
                    assert doc["containers"][0]["name"] == "web"
                    break

            assert _post(dash.url, "api/reset", csrf, {"host": "local"}) == 202
            seen = []
            for kind, doc in stream:
                if kind == "learner":
                    seen.append(doc["busy"])
                    if doc["busy"] == "" and doc["status"] == "graded" and "resetting" in seen:
                        assert doc["checks"]["flag"]["status"] == "fail"
                        assert "flag" not in doc["first_passed"]
                        break
                if kind == "notice":
                    assert "failed" not in doc["text"], doc
            assert docker_client.containers.get(f"{name}-web").id != web.id

            # SIGTERM with a stream still open: the server stops at once and exits 0
            t0 = time.monotonic()
            dash.proc.terminate()
            assert dash.proc.wait(30) == 0
            assert time.monotonic() - t0 < 10
        assert "Traceback" not in dash.output, dash.output
    finally:
        with pytest.raises(SystemExit):
            main(["down", str(spec), "--host", host, "-q"])
        left = docker_client.containers.list(all=True, filters={"label": f"{L.LAB}={name}"})
        assert left == []
