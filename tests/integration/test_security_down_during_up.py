"""`labup down` while an `up` waits for a healthcheck: the up stops at once and says why,
instead of reading the missing container as "not healthy yet" until its --timeout."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import docker
import pytest
from labfactory import purge

pytestmark = pytest.mark.docker

LABUP = str(Path(sys.executable).with_name("labup"))


def test_down_during_a_health_wait_stops_the_up_at_once(
    docker_client: Any, test_image: str, tmp_path: Path, unique: str
) -> None:
    name = f"sec-wait-{unique}"
    (tmp_path / "lab.yaml").write_text(
        f"apiVersion: labup/v1\nkind: Lab\nname: {name}\ntitle: t\ncontainers:\n"
        "  db:\n    image: labup-test/busybox:latest\n"
        "    command: [sh, -c, \"trap 'exit 0' TERM INT; sleep 3600 & wait\"]\n"
        "    healthcheck: {test: [CMD-SHELL, 'test -f /never'], interval: 1s, retries: 1000}\n"
        "  web:\n    image: labup-test/busybox:latest\n"
        "    command: [sh, -c, \"trap 'exit 0' TERM INT; sleep 3600 & wait\"]\n"
        "    depends_on: {db: {condition: healthy}}\n"
    )
    up = subprocess.Popen([LABUP, "up", str(tmp_path), "--timeout", "300"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # until the up waits on db's health
            try:
                if docker_client.containers.get(f"{name}-db").status == "running":
                    break
            except docker.errors.NotFound:
                pass
            time.sleep(0.2)
        else:
            pytest.fail("the up never started db")
        down = subprocess.run([LABUP, "down", str(tmp_path)], capture_output=True, text=True,
                              timeout=120)
        assert down.returncode == 0, down.stderr
        _, err = up.communicate(timeout=60)  # far below the up's --timeout of 300 s
        assert up.returncode == 1
        assert f"{name}-db: was removed while up waited for it to become healthy" in err, err
    finally:
        if up.poll() is None:
            up.kill()
        purge(docker_client, name)
