"""A class of four on the real test swarm (scripts/testswarm.sh), end to end, through the CLI.

One class serves the whole module (``class up`` is the expensive part): alice, bob, carol (one
GPU) and dave. The tests read as the instructor's day: the class is up and spread over the nodes,
the GPU sandbox sits on the GPU node, lab 1 goes up and is checked on every sandbox through the
generated inventory (plus doctor, test, reset and the class report), no sandbox reaches another,
the learner's ssh command works, a second ``class up`` changes nothing, and ``class down`` leaves
nothing of the class and touches nothing else. They run in file order; the last one takes the
class down (the fixture does it again, in ``finally``, if a test failed first).
"""

from __future__ import annotations

import json
import os
import shlex
import stat
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from swarm import SwarmCluster, labup, labup_json

import labspec
from provisioner.classroom import names

pytestmark = [pytest.mark.docker, pytest.mark.swarm, pytest.mark.slow]

ROSTER = "alice,team=red\nbob,team=blue\ncarol,gpus=1\ndave\n"


@dataclass
class Class:
    name: str
    swarm: SwarmCluster
    inventory: Path
    env: dict[str, str]
    up: dict[str, Any]  # class up --json
    up_output: str

    def status(self) -> dict[str, dict[str, Any]]:
        doc = labup_json("class", "status", self.name, "--swarm", self.swarm.manager,
                         env=self.env)
        return {row["learner"]: row for row in doc["sandboxes"]}

    def sandbox(self, learner: str) -> Any:
        """labup's own SSH connection to a learner's sandbox (class key, pinned host key)."""
        from provisioner.engine.connect import connect

        host = next(h for h in labspec.load_inventory(self.inventory).hosts if h.name == learner)
        return connect(host.url, host_label=learner, key=host.key, known_hosts=host.known_hosts)


def _class_objects(swarm: SwarmCluster, name: str) -> dict[str, list[str]]:
    """Everything labelled with the class, on the manager and on every node's own engine."""
    import docker

    manager = docker.DockerClient(base_url=swarm.manager, timeout=30)
    sel = {"label": f"{names.CLASS}={name}"}
    found = {
        "services": [s.name for s in manager.services.list(filters=sel)],
        "networks": [n.name for n in manager.networks.list(filters=sel)],
        "secrets": [s.name for s in manager.secrets.list(filters=sel)],
        "configs": [c.name for c in manager.configs.list(filters=sel)],
        "containers": [],
        "volumes": [],
    }
    for node, client in swarm.all_engines():
        found["containers"] += [f"{node}:{c.name}" for c in client.containers.list(all=True,
                                                                                  filters=sel)]
        found["volumes"] += [f"{node}:{v.name}" for v in client.volumes.list(filters=sel)]
        client.close()
    manager.close()
    return found


HELLO = Path(__file__).resolve().parents[1] / "data" / "bundle" / "hello"


@pytest.fixture(scope="module")
def klass(swarm_cluster: SwarmCluster, tmp_path_factory: pytest.TempPathFactory,
          test_image: str) -> Iterator[Class]:
    """The class: lab 1's images seeded from this machine's engine, and a bundle's (the hello
    test lab's, with the busybox test image) seeded from the bundle."""
    folder = tmp_path_factory.mktemp("class")
    bundle = folder / "hello.tar"
    labup("bundle", "create", str(HELLO), "-o", str(bundle))
    name = f"t{uuid.uuid4().hex[:8]}"
    roster = folder / "roster.csv"
    roster.write_text(ROSTER)
    inventory = folder / "class.yml"
    env = {**os.environ, "LABUP_CLASS_DIR": str(folder / "state")}
    try:
        done = labup("class", "up", name, "--swarm", swarm_cluster.manager, "--learners",
                     str(roster), "-o", str(inventory), "--lab", "1", "--bundle", str(bundle),
                     "--memory", "1g", "--pids", "2048", "--json", env=env, timeout=900)
        yield Class(name, swarm_cluster, inventory, env, json.loads(done.stdout),
                    done.stdout + done.stderr)
    finally:
        labup("class", "down", name, "--swarm", swarm_cluster.manager, env=env, check=False)


def test_a_class_of_four_is_spread_over_the_nodes_and_ready_over_ssh(klass: Class) -> None:
    status = klass.status()
    assert sorted(status) == ["alice", "bob", "carol", "dave"]
    assert all(row["state"] == "running" and row["port"] for row in status.values()), status
    assert len({row["node"] for row in status.values()}) >= 2, status
    # the inventory is the ordinary format: learner names as vars, the class key, pinned keys
    inventory = labspec.load_inventory(klass.inventory)
    hosts = {h.name: h for h in inventory.hosts}
    assert sorted(hosts) == sorted(status)
    assert hosts["alice"].vars == {"learner": "alice", "team": "red"}
    for learner, host in hosts.items():
        assert (host.address, host.port) == (status[learner]["address"], status[learner]["port"])
        assert host.labels["node"] == status[learner]["node"]  # the door beside its sandbox
    key = hosts["alice"].key
    assert key is not None and hosts["alice"].known_hosts is not None
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700
    pinned = hosts["alice"].known_hosts.read_text()
    for learner in hosts:
        public = (key.parent / "hostkeys" / f"{learner}.pub").read_text().split()[1]
        assert public in pinned
    assert "PRIVATE KEY" not in klass.up_output  # keys are never printed
    # every engine answered over SSH before class up returned; ask one again, with its limits
    engine = klass.sandbox("bob")
    try:
        assert engine.info()["ServerVersion"]
    finally:
        engine.close()


def test_the_gpu_sandbox_runs_only_on_the_node_that_advertises_a_gpu(klass: Class) -> None:
    status = klass.status()
    assert status["carol"]["node"] == klass.swarm.gpu_node
    assert status["carol"]["gpus"] == f"{klass.swarm.gpu_kind}=gpu0"
    assert all(not row["gpus"] for learner, row in status.items() if learner != "carol")
    hosts = {h.name: h for h in labspec.load_inventory(klass.inventory).hosts}
    assert hosts["carol"].gpus == 1 and hosts["alice"].gpus is None


def test_a_class_wanting_more_gpus_than_the_cluster_has_is_refused_before_anything(
    swarm_cluster: SwarmCluster, tmp_path: Path, unique: str
) -> None:
    roster = tmp_path / "gpus.csv"
    roster.write_text("x1,gpus=1\nx2,gpus=1\n")
    name = f"g{unique[:8]}"
    env = {**os.environ, "LABUP_CLASS_DIR": str(tmp_path / "state")}
    done = labup("class", "up", name, "--swarm", swarm_cluster.manager, "--learners", str(roster),
                 env=env, check=False)
    assert done.returncode == 2, done.stderr
    assert "asks for 2 GPU(s) of kind NVIDIA-GPU" in done.stderr
    assert f"advertise 1 ({swarm_cluster.gpu_node} x1)" in done.stderr
    assert not any(_class_objects(swarm_cluster, name).values())
    assert not (tmp_path / "state" / name).exists()


def test_lab_1_goes_up_and_is_checked_on_every_sandbox_through_the_inventory(
    klass: Class, tmp_path: Path
) -> None:
    inv = str(klass.inventory)
    doctor = labup_json("doctor", "1", "-i", inv, env=klass.env)
    assert not doctor["failed"], doctor
    up = labup_json("up", "1", "-i", inv, env=klass.env, timeout=600)
    assert not up["failed"], up
    checked = labup_json("check", "1", "-i", inv, "--report", str(tmp_path / "grades.html"),
                         env=klass.env, codes=(1,))  # the learners' tasks are still to do
    assert sorted(h["host"] for h in checked["hosts"]) == ["alice", "bob", "carol", "dave"]
    for host in checked["hosts"]:
        env_checks = [r for r in host["result"]["results"] if r["stage"] == "env"]
        assert env_checks and all(r["status"] == "pass" for r in env_checks), host
    report = (tmp_path / "grades.html").read_text()
    assert all(learner in report for learner in ("alice", "bob", "carol", "dave"))
    tested = labup_json("test", "1", "-i", inv, "--limit", "dave", env=klass.env)
    assert not tested["failed"], tested
    reset = labup_json("reset", "1", "-i", inv, "--limit", "alice,bob", env=klass.env)
    assert not reset["failed"], reset


def _addresses(swarm: SwarmCluster, labels: dict[str, str]) -> list[str]:
    """Every IPv4 address of the containers carrying ``labels``, on whichever node."""
    found = []
    for _, client in swarm.all_engines():
        first, *rest = labels.items()
        for c in client.containers.list(filters={"label": f"{first[0]}={first[1]}"}):
            if any(c.labels.get(k) != v for k, v in rest):
                continue
            for net in c.attrs["NetworkSettings"]["Networks"].values():
                if net.get("IPAddress"):
                    found.append(net["IPAddress"])
        client.close()
    return found


_PROBE = """for t in "$@"; do
  (timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "${t%:*}" "${t##*:}" 2>/dev/null && echo "$t") &
done
wait
"""


def _reached(engine: Any, targets: list[tuple[str, int]]) -> list[str]:
    """Which of ``targets`` a TCP connection from the sandbox reaches (all tried at once)."""
    argv = ["bash", "-c", _PROBE, "probe", *(f"{h}:{p}" for h, p in targets)]
    return sorted(engine.ssh_session().run(argv, timeout=30).stdout.split())


def test_no_sandbox_reaches_another_sandboxs_engine_or_sshd(klass: Class) -> None:
    status = klass.status()
    bob = _addresses(klass.swarm, {names.LEARNER: "bob", names.CLASS: klass.name})
    assert len(bob) >= 3, bob  # bob's sandbox, and his door on his network and the registry's
    registry = _addresses(klass.swarm, {names.REGISTRY: "true", names.PART: "registry"})
    assert registry, "the class registry's container"
    engine = klass.sandbox("alice")
    try:
        # the one way out it has: its own door, to its own sshd and to the class registry
        door = names.door_service(klass.name, "alice")
        assert _reached(engine, [(door, 22), (door, 5000)]) == [f"{door}:22", f"{door}:5000"]
        targets = [(ip, port) for ip in bob for port in (22, 2375, 2376)]
        targets += [(status["bob"]["address"], status["bob"]["port"])]  # bob's published door
        targets += [(addr, 2377) for addr in klass.swarm.addresses]  # the swarm itself
        targets += [(klass.swarm.manager_addr, 5000)]  # the registry from outside
        targets += [(ip, 5000) for ip in registry]  # and on its own network
        targets += [(names.sandbox_service(klass.name, "bob"), 22),
                    (names.door_service(klass.name, "bob"), 22), (names.REGISTRY_SERVICE, 5000)]
        assert len(targets) >= 14
        assert _reached(engine, targets) == []
    finally:
        engine.close()


def test_sandboxes_pull_public_names_from_the_class_registry(klass: Class,
                                                            test_image: str) -> None:
    assert set(klass.up["seeded"]["pushed"] + klass.up["seeded"]["present"]) >= {
        "busybox:1.36", "labup/sandbox:1", test_image}
    engine = klass.sandbox("dave")
    try:
        for ref in (test_image, "busybox:1.36"):  # from the bundle; from this machine's engine
            pulled = engine.ssh_session().run(["docker", "pull", "-q", ref], timeout=120)
            assert pulled.rc == 0, pulled.stderr
        mirrors = engine.info()["RegistryConfig"]["Mirrors"]
        assert mirrors == [f"http://{names.door_service(klass.name, 'dave')}:5000/"]
    finally:
        engine.close()


def test_the_learners_ssh_command_opens_a_shell_on_their_sandbox(klass: Class) -> None:
    printed = labup("class", "connect", klass.name, "carol", env=klass.env).stdout.strip()
    argv = shlex.split(printed)
    assert argv[0] == "ssh" and "StrictHostKeyChecking=yes" in argv
    assert argv[argv.index("-i") + 1].endswith("/learners/carol")
    done = subprocess.run([*argv, "-o", "BatchMode=yes", "hostname; docker version --format "
                           "'{{.Server.Version}}'"], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] == "carol"
    # a learner's key opens their own sandbox only
    other = list(argv)
    other[other.index("-i") + 1] = argv[argv.index("-i") + 1].replace("/carol", "/dave")
    refused = subprocess.run([*other, "-o", "BatchMode=yes", "true"], capture_output=True,
                             text=True, timeout=60, check=False)
    assert refused.returncode == 255 and "Permission denied" in refused.stderr


def test_class_up_again_keeps_every_sandbox(klass: Class) -> None:
    again = labup_json("class", "up", klass.name, "--swarm", klass.swarm.manager, "--learners",
                       str(klass.inventory.parent / "roster.csv"), "-o", str(klass.inventory),
                       "--lab", "1", "--memory", "1g", "--pids", "2048", env=klass.env)
    assert (again["created"], again["kept"], again["removed"]) == (0, 8, 0)
    assert again["sandboxes"] == klass.up["sandboxes"]


def test_class_down_leaves_nothing_of_the_class_and_nothing_else_is_touched(
    klass: Class, unique: str
) -> None:
    import docker

    manager = docker.DockerClient(base_url=klass.swarm.manager, timeout=30)
    decoys = {
        # what is not the class's: another class's label, no label at all
        "secret": manager.secrets.create(name=f"decoy-{unique}", data=b"x",
                                         labels={names.CLASS: f"{klass.name}x"}),
        "config": manager.configs.create(name=f"decoy-{unique}", data=b"x"),
        "network": manager.networks.create(f"decoy-{unique}", driver="overlay"),
    }
    try:
        before = _class_objects(klass.swarm, klass.name)
        assert before["services"] and before["volumes"] and before["containers"]
        down = labup_json("class", "down", klass.name, "--swarm", klass.swarm.manager,
                          env=klass.env)
        assert down["ok"], down
        assert down["removed"]["service"] == 8 and down["removed"]["network"] == 4
        assert down["removed"]["secret"] == 4 and down["removed"]["config"] == 5
        left = _class_objects(klass.swarm, klass.name)
        assert not any(left[k] for k in ("services", "networks", "secrets", "configs")), left
        # each node removes its stopped task containers and their anonymous volumes itself,
        # right after the swarm deleted the tasks: it may take a moment, not more
        deadline = time.monotonic() + 30
        while any(left.values()) and time.monotonic() < deadline:
            time.sleep(1)
            left = _class_objects(klass.swarm, klass.name)
        assert not any(left.values()), left
        assert manager.secrets.get(decoys["secret"].id)
        assert manager.configs.get(decoys["config"].id)
        assert manager.networks.get(decoys["network"].id)
        assert manager.services.get(names.REGISTRY_SERVICE)  # one registry for the cluster
    finally:
        for decoy in decoys.values():
            decoy.remove()
        manager.close()
