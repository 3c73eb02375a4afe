"""pytest plugin: the classroom of real SSH test hosts made by scripts/testhosts.sh.

Loaded from tests/conftest.py (``pytest_plugins``). The ``classroom`` fixture makes sure the
hosts are up (running the script when they are not: it is idempotent), describes them, and
builds the busybox test image on every good host through the API over SSH. Without root or
without the tools it skips with the reason, except when LABUP_REQUIRE_ENGINE=1 (CI): then it
fails, so CI can never pass by skipping.

``engine_hosts`` does the same for the engine hosts (``testhosts.sh engines up``): hdocker26
(Debian 13's dockerd 26) and hpodman (Podman 4.3's Docker API); ``each_engine`` parametrizes a
test over h1 (dockerd 20.10) and both of them.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from labspec.model import Host, Inventory

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "testhosts.sh"
STATE = Path(os.environ.get("LABUP_TESTHOSTS_DIR", "/tmp/labup-testhosts"))
REQUIRE = os.environ.get("LABUP_REQUIRE_ENGINE") == "1"
TEST_IMAGE = "labup-test/busybox:latest"


@dataclass
class Classroom:
    """The test hosts: h1..hN (good), hdown, hbadkey, hnodocker (broken on purpose)."""

    state: Path
    count: int
    env: dict[str, str]
    good: tuple[Host, ...] = ()
    broken: tuple[Host, ...] = ()
    engines: dict[str, Host] = field(default_factory=dict)  # hdocker26, hpodman once asked for
    _clients: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> Path:
        return self.state / "client" / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.state / "client" / "known_hosts"

    @property
    def inventory_path(self) -> Path:
        return self.state / "inventory.yml"

    @property
    def gpu_host(self) -> str:
        return self.env.get("LABUP_TESTHOSTS_GPU_HOST", "h2")

    def host(self, name: str) -> Host:
        for h in (*self.good, *self.broken, *self.engines.values()):
            if h.name == name:
                return h
        raise KeyError(name)

    def inventory(self, *names: str, path: Path | None = None) -> Inventory:
        """An Inventory of the named hosts (all good ones by default), built directly."""
        hosts = tuple(self.host(n) for n in names) if names else self.good
        return Inventory(
            path=path or self.inventory_path,
            hosts=hosts,
            groups={
                "class": tuple(h.name for h in self.good),
                "broken": ("hdown", "hbadkey", "hnodocker"),
            },
        )

    def client(self, name: str) -> Any:
        """A cached docker client over SSH to a good host (closed at session end)."""
        if name not in self._clients:
            from provisioner.engine.ssh_docker import docker_client_over_ssh

            h = self.host(name)
            self._clients[name] = docker_client_over_ssh(
                h.url, key=h.key, known_hosts=h.known_hosts
            )
        return self._clients[name]

    def close(self) -> None:
        for c in self._clients.values():
            c.close()
        self._clients.clear()


def _read_env(path: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            env[k] = v
    return env


def _unavailable(reason: str) -> None:
    if REQUIRE:
        pytest.fail(f"SSH test hosts unavailable: {reason} (LABUP_REQUIRE_ENGINE=1)")
    pytest.skip(f"SSH test hosts unavailable: {reason}")


def _ensure_up(count: int) -> None:
    status = subprocess.run(
        ["bash", str(SCRIPT), "status"], capture_output=True, text=True, check=False
    )
    env_file = STATE / "hosts.env"
    have = int(_read_env(env_file).get("LABUP_TESTHOSTS_COUNT", "0")) if env_file.exists() else 0
    if status.returncode == 0 and have >= count:
        return
    if os.geteuid() != 0:
        _unavailable("scripts/testhosts.sh needs root")
    up = subprocess.run(
        ["bash", str(SCRIPT), "up", str(max(count, have))],
        capture_output=True,
        text=True,
        check=False,
    )
    if up.returncode != 0:
        _unavailable(f"scripts/testhosts.sh up failed: {up.stderr.strip()[-800:]}")


def make_classroom(count: int = 3) -> Classroom:
    _ensure_up(count)
    env = _read_env(STATE / "hosts.env")
    n = min(count, int(env["LABUP_TESTHOSTS_COUNT"]))  # more may be up (the benchmark's six)
    key = Path(env["LABUP_TESTHOSTS_KEY"])
    known = Path(env["LABUP_TESTHOSTS_KNOWN_HOSTS"])
    base = int(env["LABUP_TESTHOSTS_BASE_PORT"])
    learners = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"]

    def host(name: str, port: int, vars_: dict[str, Any]) -> Host:
        return Host(
            name=name, address="127.0.0.1", port=port, user="root", key=key,
            known_hosts=known, vars=vars_,
        )

    good = tuple(
        host(
            f"h{k}",
            base + k,
            {"learner": learners[(k - 1) % len(learners)], "port_offset": k * 10,
             "labup_dir": str(STATE / f"h{k}" / "labup"),
             "labup_state_dir": str(STATE / f"h{k}" / "state")},
        )
        for k in range(1, n + 1)
    )
    broken = (
        host("hdown", int(env["LABUP_TESTHOSTS_DOWN_PORT"]), {"learner": "down"}),
        host("hbadkey", int(env["LABUP_TESTHOSTS_BADKEY_PORT"]), {"learner": "badkey"}),
        host("hnodocker", int(env["LABUP_TESTHOSTS_NODOCKER_PORT"]), {"learner": "nodocker"}),
    )
    return Classroom(state=STATE, count=n, env=env, good=good, broken=broken)


@pytest.fixture(scope="session")
def classroom() -> Iterator[Classroom]:
    """The real SSH test hosts, with the busybox test image on every good host."""
    room = make_classroom(3)
    try:
        from conftest import build_busybox_image

        for h in room.good:
            client = room.client(h.name)
            if not client.images.list(name=TEST_IMAGE):
                build_busybox_image(client, TEST_IMAGE)
        yield room
    finally:
        room.close()


# -- the engine hosts: other engines than dockerd 20.10 -----------------------------------------

ENGINE_HOSTS = ("hdocker26", "hpodman")
ENGINES = ("h1", *ENGINE_HOSTS)  # what ``each_engine`` runs a test on


ENGINE_PORTS = {"hdocker26": 22281, "hpodman": 22282}  # as scripts/testhosts.sh gives them


def _engines_ready() -> bool:
    status = subprocess.run(["bash", str(SCRIPT), "engines", "status"], capture_output=True,
                            text=True, check=False)
    return status.returncode == 0


def make_engine_hosts(room: Classroom, known_hosts: Path) -> dict[str, Host]:
    """hdocker26 and hpodman as Hosts (``testhosts.sh engines up`` when they are not up).

    ``known_hosts`` is written with the classroom's entries plus the engine hosts' keys, so a
    run of an older testhosts.sh (which rewrites the classroom's files without them) cannot
    make their keys unknown mid-session."""
    if not _engines_ready():
        if os.geteuid() != 0:
            _unavailable("scripts/testhosts.sh engines up needs root")
        up = subprocess.run(["bash", str(SCRIPT), "engines", "up"], capture_output=True,
                            text=True, check=False, timeout=900)
        if up.returncode != 0:
            _unavailable(f"scripts/testhosts.sh engines up failed: {up.stderr.strip()[-800:]}")
    lines = [line for line in room.known_hosts.read_text().splitlines()
             if not any(f"]:{port} " in line for port in ENGINE_PORTS.values())]
    for name, port in ENGINE_PORTS.items():
        key = (STATE / name / "ssh_host_ed25519_key.pub").read_text().split()[:2]
        lines.append(f"[127.0.0.1]:{port} {' '.join(key)}")
    known_hosts.write_text("\n".join(lines) + "\n")
    return {
        name: Host(
            name=name, address="127.0.0.1", port=port, user="root", key=room.key,
            known_hosts=known_hosts,
            vars={"learner": name, "labup_dir": str(STATE / name / "labup"),
                  "labup_state_dir": str(STATE / name / "state")},
        )
        for name, port in ENGINE_PORTS.items()
    }


@pytest.fixture(scope="session")
def engine_hosts(
    classroom: Classroom, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Host]]:
    """The engine hosts, with the busybox test image on each; added to ``classroom`` so
    ``classroom.host(name)`` and ``classroom.client(name)`` know them. Their known_hosts file
    (``Host.known_hosts``) holds the classroom's hosts too."""
    hosts = make_engine_hosts(classroom, tmp_path_factory.mktemp("engines") / "known_hosts")
    classroom.engines.update(hosts)
    from conftest import build_busybox_image

    for h in hosts.values():
        client = classroom.client(h.name)
        if not client.images.list(name=TEST_IMAGE):
            build_busybox_image(client, TEST_IMAGE)
    yield hosts


@pytest.fixture(params=ENGINES)
def each_engine(request: pytest.FixtureRequest, classroom: Classroom,
                engine_hosts: dict[str, Host]) -> Host:
    """One test, every engine: h1 (dockerd 20.10), hdocker26 (dockerd 26), hpodman."""
    return classroom.host(str(request.param))


# -- the runner's API in the words the fleet tests use ------------------------------------------


def targets_of(hosts: Any) -> tuple[Any, ...]:
    """Targets for hosts of the classroom (what -i makes of an inventory's hosts)."""
    from provisioner.targets.target import Target

    return tuple(Target.from_host(h) for h in hosts)


def fleet(hosts: Any, action: Any, *, parallel: int = 10, view: Any = None) -> Any:
    """run_fleet over classroom hosts."""
    from provisioner.targets.runner import run_fleet

    return run_fleet(targets_of(hosts), action, parallel=parallel, view=view)


def up_on(spec: Path, **options: Any) -> Any:
    """The up action for a spec file (UpOptions keywords: checks, refuse_no_gpu, reset...)."""
    from provisioner.catalog.lab_source import LabSource
    from provisioner.targets.actions import UpOptions, up_action

    return up_action(UpOptions(LabSource(Path(spec)), **options))


def down_on(key: str, **options: Any) -> Any:
    from provisioner.catalog.lab_source import LabKey
    from provisioner.targets.actions import DownOptions, down_action

    return down_action(DownOptions(LabKey(key, True), **options))


def status_on(key: str | None) -> Any:
    from provisioner.catalog.lab_source import LabKey
    from provisioner.targets.actions import StatusOptions, status_action

    return status_action(StatusOptions(LabKey(key, True) if key else None))


def connect_host(host: Host) -> Any:
    """One engine over SSH for a classroom host, as the runner connects it."""
    return targets_of([host])[0].connect()
