"""``labup class status`` and ``labup class down``: a class as the cluster holds it, found by its
label alone, and removed the same way (services, then networks, secrets, configs and the
volumes left on the manager's node; nothing without the class's label)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NamedTuple

from provisioner.classroom import names
from provisioner.classroom.up import remove_object
from provisioner.classroom.wait import current_task, door_of, why
from provisioner.engine.swarm import ObjectKind, SwarmManager

Progress = Callable[[str], None]


class SandboxStatus(NamedTuple):
    learner: str
    node: str  # where the sandbox runs ("" when it does not)
    state: str  # the sandbox task's state (running, pending, ...)
    address: str  # where its door answers SSH ("" when it does not)
    port: int
    gpus: str  # generic resources Swarm assigned it (kind=value), if any
    detail: str  # why it is not running

    def as_dict(self) -> dict[str, Any]:
        return self._asdict()


def class_status(swarm: SwarmManager, cls: str) -> list[SandboxStatus]:
    """One row per learner of the class, from its services and their current tasks."""
    services = swarm.services({names.CLASS: cls})
    nodes = {n.id: n for n in swarm.nodes()}
    tasks = swarm.tasks([s.id for s in services])
    by_learner: dict[str, dict[str, str]] = {}
    for service in services:
        learner = service.labels.get(names.LEARNER, "")
        by_learner.setdefault(learner, {})[service.labels.get(names.PART, "")] = service.id
    rows = []
    for learner, parts in sorted(by_learner.items()):
        box = current_task(tasks, parts.get("sandbox", ""))
        door = door_of(learner, current_task(tasks, parts.get("door", "")), nodes)
        node = nodes.get(box.node_id) if box is not None else None
        running = box is not None and box.state == "running"
        gpus = ",".join(f"{k}={v}" for k, v in sorted(box.env_resources.items())) if box else ""
        rows.append(SandboxStatus(
            learner=learner,
            node=node.hostname if node is not None and running else "",
            state=box.state if box is not None else "missing",
            address=door.address if door else "",
            port=door.port if door else 0,
            gpus=gpus,
            detail="" if running and door else (why(box) if not running else "door not running"),
        ))
    return rows


class DownReport(NamedTuple):
    removed: dict[str, int]  # kind -> how many
    failed: list[tuple[str, str, str]]  # (kind, name, the engine's words)

    @property
    def ok(self) -> bool:
        return not self.failed

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "removed": self.removed,
                "failed": [{"kind": k, "name": n, "error": e} for k, n, e in self.failed]}


def class_down(
    swarm: SwarmManager, cls: str | None, *, registry: bool = False, timeout: float = 60.0,
    progress: Progress,
) -> DownReport:
    """Remove the class ``cls`` (and with ``registry`` the cluster's class registry too; with
    ``cls`` None, only the registry). Only what carries the label is touched."""
    selectors = ([{names.CLASS: cls}] if cls else []) + (
        [{names.REGISTRY: "true"}] if registry else [])
    removed: dict[str, int] = {}
    failed: list[tuple[str, str, str]] = []
    services = [s for sel in selectors for s in swarm.services(sel)]
    for service in services:
        said = swarm.remove_service(service.id)
        if said is None:
            removed["service"] = removed.get("service", 0) + 1
        else:
            failed.append(("service", service.name, said))
    if services:
        progress(f"removed {len(services)} services; waiting for their tasks to end")
    deadline = time.monotonic() + timeout
    while swarm.tasks([s.id for s in services]) and time.monotonic() < deadline:
        time.sleep(0.5)
    kinds: tuple[ObjectKind, ...] = ("network", "secret", "config")
    for kind in kinds:
        for sel in selectors:
            for obj in swarm.objects(kind, sel):
                left = max(1.0, deadline - time.monotonic())
                said = remove_object(swarm, kind, obj.id, timeout=left)
                if said is None:
                    removed[kind] = removed.get(kind, 0) + 1
                else:
                    failed.append((kind, obj.name, said))
    engine = swarm.engine
    if registry:  # a seed registry a crashed `class up` left on the manager
        engine.remove_container(names.SEED_CONTAINER, force=True)
    for sel in selectors:  # volumes on the manager's node (the others go with their tasks)
        for _ in range(20):
            volumes = engine.list_resources("volume", sel)
            if not volumes:
                break
            for volume in volumes:
                if engine.remove_volume(volume.name) is None:
                    removed["volume"] = removed.get("volume", 0) + 1
            time.sleep(0.5)
        else:
            failed += [("volume", v.name, "still in use")
                       for v in engine.list_resources("volume", sel)]
    return DownReport(removed, failed)


def classes_using_registry(swarm: SwarmManager) -> set[str]:
    """The classes that have services on the cluster (they pull through the registry)."""
    return {s.labels[names.CLASS] for s in swarm.services({})
            if s.labels.get(names.CLASS)}
