"""A class's parts without a swarm: service specs, ports, GPU refusal, keys and the inventory,
keep/replace/prune and take-down by label on a fake manager. The real swarm's proof is
tests/integration/test_classroom_swarm.py."""

from __future__ import annotations

import stat
from pathlib import Path

import paramiko
import pytest
from fake_swarm import FakeSwarm

import labspec
from labspec.class_spec import ClassSpec, Learner, SandboxLimits
from labspec.errors import UserInputError
from provisioner.classroom import names, specs
from provisioner.classroom.registry import registry_repo
from provisioner.classroom.state import ClassState, Door, inventory_text, write_inventory
from provisioner.classroom.status import class_down
from provisioner.classroom.up import _Run, assign_ports, check_gpus
from provisioner.engine.swarm import SwarmNode, SwarmService

REF = specs.Ref("id1", "name1")


def plan(learner: str = "ana", port: int = 22000, gpus: int = 0) -> specs.SandboxPlan:
    return specs.SandboxPlan(learner, port, gpus, REF, REF)


def test_a_sandbox_is_alone_on_its_internal_network_with_its_limits() -> None:
    limits = SandboxLimits(memory=1 << 30, memory_reservation=1 << 28, cpus=1.5,
                           cpu_reservation=0.25, pids=512, gpu_kind="NVIDIA-GPU",
                           constraints=("node.role == worker",))
    body = specs.sandbox_body("c1", plan(gpus=1), image="reg:5000/labup/sandbox:1", script=REF,
                              limits=limits)
    task = body["TaskTemplate"]
    box = task["ContainerSpec"]
    assert body["Name"] == "labup-c1-ana" and task["Networks"] == [{"Target": "labup-c1-ana"}]
    assert body["EndpointSpec"] == {"Mode": "dnsrr"}  # no published port of its own
    assert box["CapabilityAdd"] == ["ALL"] and box["CapabilityDrop"] == ["CAP_SYS_RESOURCE"]
    assert "LABUP_MIRROR=labup-c1-ana-door:5000" in box["Env"]
    assert task["Resources"] == {
        "Limits": {"MemoryBytes": 1 << 30, "Pids": 512, "NanoCPUs": 1_500_000_000},
        "Reservations": {"MemoryBytes": 1 << 28, "NanoCPUs": 250_000_000, "GenericResources": [
            {"DiscreteResourceSpec": {"Kind": "NVIDIA-GPU", "Value": 1}}]},
    }
    assert task["Placement"] == {"Constraints": ["node.role == worker"]}
    assert body["Labels"][names.CLASS] == "c1" and body["Labels"][names.LEARNER] == "ana"


def test_a_door_forwards_two_ports_publishes_one_and_routes_nothing() -> None:
    body = specs.door_body("c1", plan(port=22007), image="img", constraints=("node.id==n2",))
    box = body["TaskTemplate"]["ContainerSpec"]
    assert body["EndpointSpec"]["Ports"] == [
        {"Protocol": "tcp", "TargetPort": 22, "PublishedPort": 22007, "PublishMode": "host"}]
    assert box["Sysctls"] == {"net.ipv4.ip_forward": "0"} and box["ReadOnly"] is True
    assert box["CapabilityDrop"] == ["ALL"] and box["CapabilityAdd"] == ["CAP_NET_BIND_SERVICE"]
    assert [n["Target"] for n in body["TaskTemplate"]["Networks"]] == [
        "labup-c1-ana", names.REGISTRY_NETWORK]
    assert "LABUP_SANDBOX=labup-c1-ana" in box["Env"]


def test_the_spec_hash_changes_with_the_spec_only() -> None:
    def door(port: int) -> str:
        body = specs.door_body("c1", plan(port=port), image="img", constraints=())
        return str(body["Labels"][names.HASH])

    assert door(22000) == door(22000) != door(22001)


def test_ports_are_kept_per_learner_and_new_ones_skip_what_is_published() -> None:
    spec = ClassSpec("c1", (Learner("ana"), Learner("ben"), Learner("cy")), ssh_port=22000)
    mine = [SwarmService("d1", "labup-c1-ben-door", {names.CLASS: "c1", names.PART: "door",
                                                      names.LEARNER: "ben", names.PORT: "22005"},
                         (22005,), {})]
    other = SwarmService("x", "web", {}, (22000, 22002), {})
    assert assign_ports(spec, mine, [*mine, other]) == {"ben": 22005, "ana": 22001, "cy": 22003}


def _node(name: str, gpus: int) -> SwarmNode:
    return SwarmNode(name, name, "10.0.0.9", "worker", "ready", "active",
                     {"NVIDIA-GPU": gpus} if gpus else {}, {})


def test_gpu_sandboxes_must_fit_the_free_gpus_the_nodes_advertise() -> None:
    spec = ClassSpec("c1", (Learner("ana", gpus=1), Learner("ben", gpus=1), Learner("cy")))
    nodes = [_node("n1", 0), _node("n2", 1), _node("n3", 1)]
    check_gpus(spec, nodes, [])
    held = SwarmService("s", "labup-c2-x", {names.CLASS: "c2"}, (), {"NVIDIA-GPU": 1})
    with pytest.raises(UserInputError, match=r"advertise 2 \(n2 x1, n3 x1\); 1 reserved by "
                                             r"labup-c2-x"):
        check_gpus(spec, nodes, [held])
    big = ClassSpec("c1", (Learner("ana", gpus=2),))
    with pytest.raises(UserInputError, match="asks for 2 GPU"):
        check_gpus(big, nodes, [])  # two GPUs, but on two nodes


def test_the_inventory_is_the_ordinary_format_with_keys_and_pinned_host_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABUP_CLASS_DIR", str(tmp_path / "classes"))
    state = ClassState.of("c1")
    state.prepare()
    assert stat.S_IMODE(state.root.stat().st_mode) == 0o700
    assert stat.S_IMODE(state.key.stat().st_mode) == 0o600
    doors = [Door("ana", "10.0.0.2", 22000, "node2"), Door("ben", "10.0.0.3", 22001, "node3")]
    state.write_known_hosts([("10.0.0.2", 22000)], ["10.0.0.1", "10.0.0.2", "10.0.0.3"],
                            {"ana": 22000, "ben": 22001})
    path = tmp_path / "class.yml"
    write_inventory(path, inventory_text(state, swarm="ssh://m", doors=doors,
                                         learner_vars={"ana": {"team": "red"}},
                                         gpus={"ben": 1}))
    inventory = labspec.load_inventory(path)
    ana, ben = inventory.hosts
    assert (ana.name, ana.address, ana.port, ana.user) == ("ana", "10.0.0.2", 22000, "root")
    assert ana.vars == {"learner": "ana", "team": "red"} and ben.vars == {"learner": "ben"}
    assert (ana.gpus, ben.gpus) == (None, 1) and ana.labels == {"class": "c1", "node": "node2"}
    assert ana.key == state.key and ana.known_hosts == state.known_hosts
    known = paramiko.HostKeys(str(state.known_hosts))
    host_key = state.host_key("ben")[1].split()[1]
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):  # wherever ben's door is placed
        assert known.lookup(f"[{address}]:22001")["ssh-ed25519"].get_base64() == host_key
    assert known.lookup("[10.0.0.2]:22002") is None


def test_keys_are_made_once_and_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABUP_CLASS_DIR", str(tmp_path))
    state = ClassState.of("c1")
    first = state.prepare()
    assert first.startswith("ssh-ed25519 ") and first.endswith(" labup-class-c1")
    assert state.prepare() == first
    assert state.learner_public_key("ana") == state.learner_public_key("ana") != first
    private, public = state.host_key("ana")
    assert private.startswith(b"-----BEGIN OPENSSH PRIVATE KEY-----")
    assert stat.S_IMODE(state.learner_key("ana").stat().st_mode) == 0o600
    assert public.split()[1] in paramiko.Ed25519Key.from_private_key_file(
        str(state.root / "hostkeys" / "ana")).get_base64()


def test_registry_repositories_follow_docker_hub_names() -> None:
    assert registry_repo("python:3.11-slim") == "library/python:3.11-slim"
    assert registry_repo("docker.io/library/busybox:1.36") == "library/busybox:1.36"
    assert registry_repo("labup/sandbox:1") == "labup/sandbox:1"
    assert registry_repo("ghcr.io/org/app:1") is None  # another registry: not mirrored
    assert registry_repo("localhost:5000/app") is None


def _run_with_two_learners(swarm: FakeSwarm) -> dict[str, str]:
    run = _Run(swarm, "c1", progress=lambda text: None)
    ids = {}
    for learner in ("ana", "ben"):
        run.network(learner)
        ref = run.object("config", f"labup-c1-{learner}-keys-x", b"k", "keys", learner)
        body = specs.sandbox_body("c1", specs.SandboxPlan(learner, 22000, 0, ref, ref),
                                  image="img", script=ref, limits=SandboxLimits())
        ids[learner] = run.service(body)
    return ids


def test_a_second_run_keeps_what_did_not_change_and_replaces_what_did() -> None:
    swarm = FakeSwarm()
    first = _run_with_two_learners(swarm)
    swarm.calls.clear()
    again = _run_with_two_learners(swarm)
    assert again == first and not swarm.calls  # nothing made, nothing removed
    run = _Run(swarm, "c1", progress=lambda text: None)
    changed = specs.sandbox_body("c1", specs.SandboxPlan("ana", 22000, 0, REF, REF),
                                 image="img:2", script=REF, limits=SandboxLimits())
    run.service(changed)
    assert swarm.calls == [("remove service", "labup-c1-ana"), ("create service", "labup-c1-ana")]
    run.prune({"ana"}, {"network": {"labup-c1-ana"}, "secret": set(), "config": set()})
    assert [n.name for n in swarm.objects("network", {})] == ["labup-c1-ana"]
    assert [s.name for s in swarm.services({})] == ["labup-c1-ana"]


def test_a_failed_run_removes_only_what_it_made() -> None:
    swarm = FakeSwarm()
    _run_with_two_learners(swarm)
    run = _Run(swarm, "c1", progress=lambda text: None)
    run.network("cy")
    body = specs.sandbox_body("c1", specs.SandboxPlan("cy", 22002, 0, REF, REF), image="img",
                              script=REF, limits=SandboxLimits())
    run.service(body)
    run.rollback()
    assert sorted(s.name for s in swarm.services({})) == ["labup-c1-ana", "labup-c1-ben"]
    assert sorted(n.name for n in swarm.objects("network", {})) == ["labup-c1-ana",
                                                                    "labup-c1-ben"]


def test_class_down_removes_by_label_and_nothing_else() -> None:
    swarm = FakeSwarm()
    _run_with_two_learners(swarm)
    swarm.create_config("unrelated", b"", {})
    swarm.create_secret("other-class", b"", {names.CLASS: "c2"})
    swarm.create_service({"Name": "labup-registry", "Labels": {names.REGISTRY: "true"}})
    report = class_down(swarm, "c1", progress=lambda text: None)
    assert report.ok and report.removed == {"service": 2, "network": 2, "config": 2}
    assert [o.name for o in swarm.objects("config", {})] == ["unrelated"]
    assert [o.name for o in swarm.objects("secret", {})] == ["other-class"]
    assert [s.name for s in swarm.services({})] == ["labup-registry"]
    registry = class_down(swarm, None, registry=True, progress=lambda text: None)
    assert registry.removed == {"service": 1} and not swarm.services({})
