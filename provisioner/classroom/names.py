"""The names and labels of everything a class makes on a cluster; the cluster is the source of
truth (``labup class down`` finds a class's services, networks, secrets, configs and volumes by
its label alone).

Class resources do not carry ``labup.managed``: they are no lab's, so ``labup status``, ``down``
and ``reset`` of labs on the manager's engine never see them.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

CLASS = "labup.class"  # the class's name
PART = "labup.class.part"  # sandbox, door, network, hostkey, keys, script, registry, ...
LEARNER = "labup.class.learner"
HASH = "labup.class.hash"  # hash of the desired spec: a service is replaced when it changes
PORT = "labup.class.port"  # the SSH port of a learner's door
REGISTRY = "labup.class.registry"  # "true" on the cluster's class registry (no class label)

REGISTRY_SERVICE = "labup-registry"
REGISTRY_NETWORK = "labup-registry"
REGISTRY_VOLUME = "labup-registry-data"
SEED_CONTAINER = "labup-registry-seed"
RESERVED_CLASS_NAMES = ("registry",)


def class_labels(name: str, part: str, learner: str | None = None) -> dict[str, str]:
    labels = {CLASS: name, PART: part}
    if learner is not None:
        labels[LEARNER] = learner
    return labels


def registry_labels(part: str) -> dict[str, str]:
    return {REGISTRY: "true", PART: part}


def digest(value: Any) -> str:
    """A short, stable hash of a JSON-able value or bytes (names immutable configs)."""
    data = value if isinstance(value, bytes) else json.dumps(value, sort_keys=True).encode()
    return hashlib.sha256(data).hexdigest()[:10]


def sandbox_service(cls: str, learner: str) -> str:
    return f"labup-{cls}-{learner}"


def door_service(cls: str, learner: str) -> str:
    return f"labup-{cls}-{learner}-door"


def learner_network(cls: str, learner: str) -> str:
    return f"labup-{cls}-{learner}"


def host_key_secret(cls: str, learner: str, content: bytes) -> str:
    return f"labup-{cls}-{learner}-hostkey-{digest(content)}"


def keys_config(cls: str, learner: str, content: bytes) -> str:
    return f"labup-{cls}-{learner}-keys-{digest(content)}"


def script_config(cls: str, content: bytes) -> str:
    return f"labup-{cls}-sandbox-{digest(content)}"


def registry_config(content: bytes) -> str:
    return f"labup-registry-{digest(content)}"
