"""A small in-memory swarm manager satisfying ``provisioner.engine.swarm.SwarmManager``.

Enough for unit tests of what a class does with services, networks, secrets and configs
(keep, replace, prune, take down by label); every task it reports runs at once. The proof that
the real thing works is tests/integration/test_classroom_swarm.py, against a real swarm.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

from fake_engine import FakeEngine

from provisioner.engine.protocol import Engine
from provisioner.engine.swarm import ObjectKind, SwarmInfo, SwarmNode, SwarmObject, SwarmService
from provisioner.engine.swarm import SwarmTask as Task

_ids = (f"id{i:04d}" for i in itertools.count(1))


def _matches(labels: Mapping[str, str], wanted: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in wanted.items())


class FakeSwarm:
    def __init__(self, nodes: Sequence[SwarmNode] = ()) -> None:
        self._engine = FakeEngine()
        self.node_list = list(nodes) or [
            SwarmNode("n1", "node1", "10.0.0.1", "manager", "ready", "active", {}, {}),
            SwarmNode("n2", "node2", "10.0.0.2", "worker", "ready", "active", {}, {}),
        ]
        self.service_specs: dict[str, dict[str, Any]] = {}  # id -> body
        self.objects_by_kind: dict[str, dict[str, SwarmObject]] = {
            "network": {}, "secret": {}, "config": {}}
        self.calls: list[tuple[str, str]] = []

    @property
    def url(self) -> str:
        return "unix:///fake/manager.sock"

    @property
    def engine(self) -> Engine:
        return self._engine

    def swarm_info(self) -> SwarmInfo:
        return SwarmInfo("active", "n1", "10.0.0.1", "cluster-1", True)

    def nodes(self) -> list[SwarmNode]:
        return list(self.node_list)

    def services(self, labels: Mapping[str, str]) -> list[SwarmService]:
        found = []
        for ident, body in self.service_specs.items():
            if _matches(body.get("Labels") or {}, labels):
                ports = (body.get("EndpointSpec") or {}).get("Ports") or []
                found.append(SwarmService(ident, body["Name"], dict(body["Labels"]),
                                          tuple(p["PublishedPort"] for p in ports), {}))
        return found

    def create_service(self, body: Mapping[str, Any]) -> str:
        ident = next(_ids)
        self.service_specs[ident] = dict(body)
        self.calls.append(("create service", str(body["Name"])))
        return ident

    def remove_service(self, name: str) -> str | None:
        for ident, body in list(self.service_specs.items()):
            if name in (ident, body["Name"]):
                del self.service_specs[ident]
                self.calls.append(("remove service", str(body["Name"])))
        return None

    def tasks(self, service_ids: Sequence[str]) -> list[Task]:
        return [Task(f"task-{ident}", ident, "n2", 1, "running", "running", "", "", "c", (), {})
                for ident in service_ids if ident in self.service_specs]

    def objects(self, kind: ObjectKind, labels: Mapping[str, str]) -> list[SwarmObject]:
        return [o for o in self.objects_by_kind[kind].values() if _matches(o.labels, labels)]

    def _create(self, kind: ObjectKind, name: str, labels: Mapping[str, str]) -> str:
        ident = next(_ids)
        self.objects_by_kind[kind][ident] = SwarmObject(kind, ident, name, dict(labels))
        self.calls.append((f"create {kind}", name))
        return ident

    def create_overlay(self, name: str, *, internal: bool, labels: Mapping[str, str]) -> str:
        return self._create("network", name, labels)

    def create_secret(self, name: str, data: bytes, labels: Mapping[str, str]) -> str:
        return self._create("secret", name, labels)

    def create_config(self, name: str, data: bytes, labels: Mapping[str, str]) -> str:
        return self._create("config", name, labels)

    def remove_object(self, kind: ObjectKind, name: str) -> str | None:
        for ident, obj in list(self.objects_by_kind[kind].items()):
            if name in (ident, obj.name):
                del self.objects_by_kind[kind][ident]
                self.calls.append((f"remove {kind}", obj.name))
        return None
