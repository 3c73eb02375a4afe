"""What labup runs on an engine: lab instances, each container's state and health."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from provisioner.engine import labels as L
from provisioner.engine.protocol import Observed
from provisioner.lifecycle.planner import PlanEngine


@dataclass(frozen=True)
class ContainerStatus:
    name: str
    key: str
    state: str  # running / exited / created / restarting / paused / dead
    health: str | None  # healthy / unhealthy / starting / None (no healthcheck)
    status: str  # the engine's words: "Up 5 seconds (healthy)"

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "key": self.key, "state": self.state,
                "health": self.health, "status": self.status}


@dataclass
class InstanceStatus:
    lab: str
    instance: str
    spec: str = ""
    containers: list[ContainerStatus] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)

    @property
    def state(self) -> str:
        """``running`` (all up and none unhealthy), ``degraded``, ``stopped`` or ``empty``."""
        if not self.containers:
            return "empty"
        if all(c.state == "running" and c.health != "unhealthy" for c in self.containers):
            return "running"
        if any(c.state == "running" for c in self.containers):
            return "degraded"
        return "stopped"

    def as_dict(self) -> dict[str, Any]:
        return {
            "lab": self.lab,
            "instance": self.instance,
            "state": self.state,
            "spec": self.spec,
            "containers": [c.as_dict() for c in self.containers],
            "networks": sorted(self.networks),
            "volumes": sorted(self.volumes),
        }


def status(
    engine: PlanEngine, lab_key: str | None = None, instance: str | None = None
) -> list[InstanceStatus]:
    """Every lab instance on the engine (or one lab's): three list calls, no inspect."""
    sel = {L.MANAGED: "true"}
    if lab_key is not None:
        sel = L.selector(lab_key, instance)
    elif instance is not None:
        sel[L.INSTANCE] = instance
    found: dict[tuple[str, str], InstanceStatus] = {}

    def entry(o: Observed) -> InstanceStatus:
        key = (o.labels.get(L.LAB, "?"), o.labels.get(L.INSTANCE, L.DEFAULT_INSTANCE))
        if key not in found:
            found[key] = InstanceStatus(key[0], key[1])
        st = found[key]
        if not st.spec and o.labels.get(L.SPEC_PATH):
            st.spec = o.labels[L.SPEC_PATH]
        return st

    for o in engine.list_resources("container", sel):
        entry(o).containers.append(
            ContainerStatus(o.name, o.labels.get(L.RESOURCE, ""), o.state, o.health, o.status)
        )
    for o in engine.list_resources("network", sel):
        entry(o).networks.append(o.name)
    for o in engine.list_resources("volume", sel):
        entry(o).volumes.append(o.name)
    for st in found.values():
        st.containers.sort(key=lambda c: c.name)
    return [found[k] for k in sorted(found)]
