"""The Swarm service specs of a class: a learner's sandbox and its door, and the cluster's
class registry. Pure functions from the plan to ``POST /services/create`` bodies (Engine API
1.41, Docker 20.10, and newer).

Why the sandbox looks the way it does (see docs/security.md, "Swarm classroom sandboxes"):

- A service cannot be privileged. The sandbox gets every capability but ``CAP_SYS_RESOURCE``
  (some hosts, this project's test machine among them, cannot grant it, and an engine runs
  without it), keeps Docker's default seccomp profile, and its start script makes its cgroups
  writable. That is root on its node in all but name: dind is root-equivalent.
- Its only network is its own ``internal`` overlay, shared with its door alone: it reaches no
  other sandbox, no node address, nothing outside. The door (socat, no capabilities but
  binding port 22, read-only root, forwarding off) publishes the sandbox's sshd on a node port
  (``mode: host``: no routing mesh) and forwards the sandbox's pulls to the class registry.
- Its engine listens on its unix socket only; labup and the learner reach it over SSH.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from labspec.class_spec import SandboxLimits
from provisioner.classroom import names
from provisioner.classroom.scripts import DOOR_SCRIPT

SECOND = 1_000_000_000
MIB = 1024 * 1024
TINI = "/usr/bin/tini"
SCRIPT_PATH = "/run/labup/sandbox.sh"
KEYS_PATH = "/run/labup/authorized_keys"
HOST_KEY_NAME = "labup-host-key"  # under /run/secrets
REGISTRY_CONFIG_PATH = "/etc/labup/registry.yml"
MIRROR_PORT = 5000  # where a door listens for its sandbox's pulls


class Ref(NamedTuple):
    """A secret or config as a service refers to it."""

    id: str
    name: str


class SandboxPlan(NamedTuple):
    """One learner's sandbox as ``class up`` will make it."""

    learner: str
    port: int  # the door's published SSH port
    gpus: int
    host_key: Ref
    keys: Ref


def with_hash(body: dict[str, Any]) -> dict[str, Any]:
    """The body, its ``labup.class.hash`` label set to the hash of everything else in it."""
    body["Labels"][names.HASH] = names.digest(body)
    return body


def _file(name: str, mode: int) -> dict[str, Any]:
    return {"Name": name, "UID": "0", "GID": "0", "Mode": mode}


def _resources(limits: SandboxLimits, gpus: int) -> dict[str, Any]:
    limit: dict[str, Any] = {"MemoryBytes": limits.memory, "Pids": limits.pids}
    reserve: dict[str, Any] = {"MemoryBytes": limits.memory_reservation}
    if limits.cpus:
        limit["NanoCPUs"] = int(limits.cpus * SECOND)
    if limits.cpu_reservation:
        reserve["NanoCPUs"] = int(limits.cpu_reservation * SECOND)
    if gpus:
        reserve["GenericResources"] = [
            {"DiscreteResourceSpec": {"Kind": limits.gpu_kind, "Value": gpus}}
        ]
    return {"Limits": limit, "Reservations": reserve}


def sandbox_body(
    cls: str, plan: SandboxPlan, *, image: str, script: Ref, limits: SandboxLimits
) -> dict[str, Any]:
    """A learner's sandbox: docker-in-docker with sshd, alone on its own internal network."""
    learner = plan.learner
    labels = names.class_labels(cls, "sandbox", learner)
    door = names.door_service(cls, learner)
    body: dict[str, Any] = {
        "Name": names.sandbox_service(cls, learner),
        "Labels": {**labels, names.PORT: str(plan.port)},
        "TaskTemplate": {
            "ContainerSpec": {
                "Image": image,
                "Command": [TINI, "-g", "--", "/bin/sh", SCRIPT_PATH],
                "Hostname": learner,
                "Env": [f"LABUP_MIRROR={door}:{MIRROR_PORT}", f"LABUP_CLASS={cls}",
                        f"LABUP_LEARNER={learner}"],
                "Labels": labels,
                # the engine's images and containers: an anonymous volume, removed with the task
                "Mounts": [{"Type": "volume", "Target": "/var/lib/docker",
                            "VolumeOptions": {"Labels": names.class_labels(cls, "volume",
                                                                           learner)}}],
                "CapabilityAdd": ["ALL"],
                "CapabilityDrop": ["CAP_SYS_RESOURCE"],
                "Sysctls": {"net.ipv4.ip_forward": "1"},
                "Secrets": [{"File": _file(HOST_KEY_NAME, 0o400), "SecretID": plan.host_key.id,
                             "SecretName": plan.host_key.name}],
                "Configs": [
                    {"File": _file(SCRIPT_PATH, 0o555), "ConfigID": script.id,
                     "ConfigName": script.name},
                    {"File": _file(KEYS_PATH, 0o444), "ConfigID": plan.keys.id,
                     "ConfigName": plan.keys.name},
                ],
                "StopGracePeriod": 5 * SECOND,
                # names outside the sandbox's network (Docker Hub, when a pull misses the class
                # registry) fail in a second, not after glibc's 2 x 5 s
                "DNSConfig": {"Options": ["timeout:1", "attempts:1"]},
            },
            "Resources": _resources(limits, plan.gpus),
            "RestartPolicy": {"Condition": "any", "Delay": 5 * SECOND, "MaxAttempts": 0},
            "Placement": {"Constraints": list(limits.constraints)},
            "Networks": [{"Target": names.learner_network(cls, learner)}],
        },
        "Mode": {"Replicated": {"Replicas": 1}},
        "EndpointSpec": {"Mode": "dnsrr"},
    }
    return with_hash(body)


def door_body(
    cls: str, plan: SandboxPlan, *, image: str, constraints: Sequence[str]
) -> dict[str, Any]:
    """A learner's door: the sandbox's sshd on a node port, its pulls to the class registry."""
    learner = plan.learner
    labels = names.class_labels(cls, "door", learner)
    body: dict[str, Any] = {
        "Name": names.door_service(cls, learner),
        "Labels": {**labels, names.PORT: str(plan.port)},
        "TaskTemplate": {
            "ContainerSpec": {
                "Image": image,
                "Command": [TINI, "-g", "--", "/bin/sh", "-c", DOOR_SCRIPT],
                "Env": [f"LABUP_SANDBOX={names.sandbox_service(cls, learner)}",
                        f"LABUP_REGISTRY={names.REGISTRY_SERVICE}"],
                "Labels": labels,
                "ReadOnly": True,
                "CapabilityDrop": ["ALL"],
                "CapabilityAdd": ["CAP_NET_BIND_SERVICE"],
                "Sysctls": {"net.ipv4.ip_forward": "0"},
                "StopGracePeriod": 2 * SECOND,
            },
            "Resources": {"Limits": {"MemoryBytes": 64 * MIB, "Pids": 256}},
            "RestartPolicy": {"Condition": "any", "Delay": 2 * SECOND, "MaxAttempts": 0},
            "Placement": {"Constraints": list(constraints)},
            "Networks": [{"Target": names.learner_network(cls, learner)},
                         {"Target": names.REGISTRY_NETWORK}],
        },
        "Mode": {"Replicated": {"Replicas": 1}},
        "EndpointSpec": {"Mode": "dnsrr", "Ports": [
            {"Protocol": "tcp", "TargetPort": 22, "PublishedPort": plan.port,
             "PublishMode": "host"},
        ]},
    }
    return with_hash(body)


def registry_body(*, image: str, config: Ref, node_id: str, port: int) -> dict[str, Any]:
    """The cluster's class registry: read-only, on the manager's node (its data volume is
    there), on the registry network (the doors) and on the manager's address (the nodes)."""
    labels = names.registry_labels("registry")
    body: dict[str, Any] = {
        "Name": names.REGISTRY_SERVICE,
        "Labels": dict(labels),
        "TaskTemplate": {
            "ContainerSpec": {
                "Image": image,
                "Command": [TINI, "--", "docker-registry", "serve", REGISTRY_CONFIG_PATH],
                "Labels": labels,
                "ReadOnly": True,
                "CapabilityDrop": ["ALL"],
                "Configs": [{"File": _file(REGISTRY_CONFIG_PATH, 0o444), "ConfigID": config.id,
                             "ConfigName": config.name}],
                "Mounts": [{"Type": "volume", "Source": names.REGISTRY_VOLUME,
                            "Target": "/var/lib/registry", "ReadOnly": True}],
                "StopGracePeriod": 2 * SECOND,
            },
            "Resources": {"Limits": {"MemoryBytes": 512 * MIB}},
            "RestartPolicy": {"Condition": "any", "Delay": 2 * SECOND, "MaxAttempts": 0},
            "Placement": {"Constraints": [f"node.id=={node_id}"]},
            "Networks": [{"Target": names.REGISTRY_NETWORK}],
        },
        "Mode": {"Replicated": {"Replicas": 1}},
        "EndpointSpec": {"Mode": "dnsrr", "Ports": [
            {"Protocol": "tcp", "TargetPort": 5000, "PublishedPort": port, "PublishMode": "host"},
        ]},
    }
    return with_hash(body)


def authorized_keys(class_key: str, learner_key: str) -> bytes:
    """Who may log in to a sandbox: labup (the class key) and that sandbox's learner."""
    return f"{class_key}\n{learner_key}\n".encode()


def labels_match(current: Mapping[str, str], desired: Mapping[str, Any]) -> bool:
    """An existing service is kept when its hash label is the desired one."""
    return bool(current.get(names.HASH) == desired["Labels"][names.HASH])
