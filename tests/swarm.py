"""pytest plugin: the real Docker Swarm of scripts/testswarm.sh (three dockerds in network
namespaces: labup-sw-n1 the manager, n2 and n3 workers, n3 with one fake GPU).

Loaded from tests/conftest.py (``pytest_plugins``). The ``swarm_cluster`` fixture makes sure the
swarm is up (running the script when it is not: it is idempotent) and that this machine's engine
holds the sandbox image (built offline once, cached), and describes the swarm. Without root or
without the tools it skips with the reason, except when LABUP_REQUIRE_ENGINE=1 (CI): then it
fails, so CI can never pass by skipping.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "testswarm.sh"
STATE = Path(os.environ.get("LABUP_TESTSWARM_DIR", "/tmp/labup-testswarm"))
REQUIRE = os.environ.get("LABUP_REQUIRE_ENGINE") == "1"
LABUP = str(Path(sys.executable).parent / "labup")


@dataclass(frozen=True)
class SwarmCluster:
    """The test swarm as scripts/testswarm.sh describes it in swarm.env."""

    manager: str  # the manager's engine URL (a unix socket here)
    manager_addr: str
    nodes: tuple[str, ...]  # node hostnames, the manager first
    sockets: tuple[str, ...]  # each node's engine URL, in the order of nodes
    addresses: tuple[str, ...]
    gpu_node: str
    gpu_kind: str

    def engine_of(self, node: str) -> Any:
        """A docker SDK client of one node's own engine (to look at what Swarm put there)."""
        import docker

        return docker.DockerClient(base_url=self.sockets[self.nodes.index(node)], timeout=30)

    def all_engines(self) -> list[tuple[str, Any]]:
        return [(node, self.engine_of(node)) for node in self.nodes]


def _unavailable(reason: str) -> None:
    if REQUIRE:
        pytest.fail(f"test swarm unavailable: {reason} (LABUP_REQUIRE_ENGINE=1)")
    pytest.skip(f"test swarm unavailable: {reason}")


def _read_env(path: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            env[key] = value
    return env


def make_swarm() -> SwarmCluster:
    status = subprocess.run(["bash", str(SCRIPT), "status"], capture_output=True, text=True,
                            check=False)
    if status.returncode != 0 or not (STATE / "swarm.env").is_file():
        if os.geteuid() != 0:
            _unavailable("scripts/testswarm.sh needs root")
        up = subprocess.run(["bash", str(SCRIPT), "up"], capture_output=True, text=True,
                            check=False)
        if up.returncode != 0:
            _unavailable(f"scripts/testswarm.sh up failed: {up.stderr.strip()[-800:]}")
    env = _read_env(STATE / "swarm.env")
    return SwarmCluster(
        manager=env["LABUP_TESTSWARM_MANAGER"],
        manager_addr=env["LABUP_TESTSWARM_MANAGER_ADDR"],
        nodes=tuple(env["LABUP_TESTSWARM_NODES"].split(",")),
        sockets=tuple(env["LABUP_TESTSWARM_SOCKETS"].split(",")),
        addresses=tuple(env["LABUP_TESTSWARM_ADDRESSES"].split(",")),
        gpu_node=env["LABUP_TESTSWARM_GPU_NODE"],
        gpu_kind=env["LABUP_TESTSWARM_GPU_KIND"],
    )


def ensure_sandbox_image() -> None:
    """This machine's engine holds labup/sandbox:1 (the recipe's root filesystem is cached,
    so only the first run anywhere pays the debootstrap)."""
    done = subprocess.run([LABUP, "images", "prepare", "--offline", "--sandbox", "--json"],
                          capture_output=True, text=True, check=False, timeout=900)
    if done.returncode != 0:
        detail = done.stdout.strip() or done.stderr.strip()
        pytest.fail(f"labup images prepare --offline --sandbox failed: {detail[-800:]}")


@pytest.fixture(scope="session")
def swarm_cluster() -> Iterator[SwarmCluster]:
    """The real test swarm, with the sandbox image ready to be sent to it."""
    swarm = make_swarm()
    ensure_sandbox_image()
    yield swarm


def labup(*args: str, env: dict[str, str] | None = None, timeout: float = 600,
          check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the labup CLI (as a user would), returning its output."""
    done = subprocess.run([LABUP, *args], capture_output=True, text=True, env=env,
                          timeout=timeout, check=False)
    if check and done.returncode != 0:
        raise AssertionError(
            f"labup {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


def labup_json(*args: str, env: dict[str, str] | None = None, timeout: float = 600,
               codes: tuple[int, ...] = (0,)) -> Any:
    done = labup(*args, "--json", env=env, timeout=timeout, check=False)
    assert done.returncode in codes, f"labup {' '.join(args)}: {done.returncode}\n{done.stderr}"
    return json.loads(done.stdout)
