"""The plan: what ``up`` would do, per resource: create / replace / keep / remove.

The engine is the source of truth. One list call per kind, filtered by the lab's labels, gives
every resource with its config hash; a resource whose hash matches is kept without any inspect.
A replaced resource names the fields that changed (from the compact JSON stored in a label).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple, Protocol

from labspec.model import Lab
from provisioner.engine import labels as L
from provisioner.engine.protocol import Observed
from provisioner.lifecycle.config_hash import (
    CONFIG_JSON,
    changed_fields,
    compact,
    config_hash,
    container_config,
    network_config,
    volume_config,
)
from provisioner.lifecycle.identity import origin_of, refuse_foreign
from provisioner.lifecycle.images import ImageStep, plan_images

ACTIONS = ("create", "replace", "keep", "remove")
KINDS = ("image", "network", "volume", "container")


class PlanEngine(Protocol):
    """What planning needs from an engine (Engine and the unit tests' fake)."""

    def list_resources(self, kind: str, labels: Mapping[str, str]) -> list[Observed]: ...

    def inspect_image(self, ref: str) -> dict[str, Any] | None: ...


class Desired(NamedTuple):
    kind: str
    key: str
    name: str
    config: Mapping[str, Any]
    hash: str

    @property
    def config_json(self) -> str:
        return compact(self.config)


class Step(NamedTuple):
    """One resource and what ``up`` does with it."""

    kind: str  # image / network / volume / container
    key: str  # the key in the spec (for orphans: the key they were created for)
    name: str  # Docker name (images: the reference)
    action: str  # create / replace / keep / remove (images: create = pull or build)
    reason: str = ""
    changed: tuple[str, ...] = ()

    def text(self) -> str:
        why = ""
        if self.changed:
            why = f" ({', '.join(self.changed)} changed)"
        elif self.reason:
            why = f" ({self.reason})"
        return f"{self.action:<8} {self.kind:<9} {self.name}{why}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "key": self.key,
            "name": self.name,
            "action": self.action,
            "reason": self.reason,
            "changed": list(self.changed),
        }


class Plan(NamedTuple):
    lab_key: str
    instance: str
    steps: tuple[Step, ...]
    desired: Mapping[tuple[str, str], Desired] = MappingProxyType({})
    observed: tuple[Observed, ...] = ()
    images: tuple[ImageStep, ...] = ()

    @property
    def changes(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.action != "keep")

    @property
    def is_noop(self) -> bool:
        return not self.changes

    def of(self, kind: str, action: str | None = None) -> list[Step]:
        return [s for s in self.steps if s.kind == kind and (action is None or s.action == action)]

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(ACTIONS, 0)
        for s in self.steps:
            out[s.action] += 1
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "lab": self.lab_key,
            "instance": self.instance,
            "noop": self.is_noop,
            "counts": self.counts(),
            "steps": [s.as_dict() for s in self.steps],
        }


def desired_state(
    lab: Lab, instance: str, build_hashes: Mapping[str, str] | None = None
) -> dict[tuple[str, str], Desired]:
    """The desired networks, volumes and containers, each with its config and hash."""
    hashes = build_hashes or {}
    out: dict[tuple[str, str], Desired] = {}
    for net in lab.networks:
        cfg = network_config(net)
        out[("network", net.name)] = Desired(
            "network", net.name, L.resource_name(lab.key, instance, net.name), cfg, config_hash(cfg)
        )
    for vol in lab.volumes:
        cfg = volume_config(vol)
        out[("volume", vol.name)] = Desired(
            "volume", vol.name, L.resource_name(lab.key, instance, vol.name), cfg, config_hash(cfg)
        )
    for c in lab.containers:
        image_hash = hashes.get(c.image_key) if c.image_key else None
        cfg = container_config(lab, c, instance, image_hash=image_hash)
        out[("container", c.name)] = Desired(
            "container", c.name, L.resource_name(lab.key, instance, c.name), cfg, config_hash(cfg)
        )
    return out


def observe(engine: PlanEngine, lab_key: str, instance: str) -> list[Observed]:
    """Every labelled resource of one lab instance: one list call per kind."""
    sel = L.selector(lab_key, instance)
    found: list[Observed] = []
    for kind in ("container", "network", "volume"):
        found.extend(engine.list_resources(kind, sel))
    return found


def make_plan(
    engine: PlanEngine,
    lab: Lab,
    *,
    instance: str = L.DEFAULT_INSTANCE,
    observed: list[Observed] | None = None,
) -> Plan:
    """Compare the lab with what the engine holds for this instance."""
    images = plan_images(engine, lab)
    desired = desired_state(lab, instance, {i.key: i.build_hash for i in images if i.build_hash})
    seen = observe(engine, lab.key, instance) if observed is None else observed
    refuse_foreign(lab.key, instance, origin_of(lab), seen)  # another spec's: never touched
    steps: list[Step] = [
        Step("image", i.key, i.ref, i.action, i.reason) for i in images
    ]
    replaced_networks: set[str] = set()

    def compare(kind: str) -> list[Step]:
        result: list[Step] = []
        by_key: dict[str, list[Observed]] = {}
        for o in seen:
            if o.kind == kind:
                by_key.setdefault(o.labels.get(L.RESOURCE, o.name), []).append(o)
        for (k, key), want in desired.items():
            if k != kind:
                continue
            have = by_key.pop(key, [])
            exact = [o for o in have if o.name == want.name]
            current = exact[0] if exact else None
            for extra in have:
                if extra is not current:
                    result.append(Step(kind, key, extra.name, "remove", "duplicate or renamed"))
            result.append(_compare_one(kind, key, want, current, lab, replaced_networks))
        for key, leftovers in sorted(by_key.items()):
            for o in leftovers:
                if kind == "volume":
                    result.append(Step(kind, key, o.name, "keep",
                                       "no longer in the spec; `down --volumes` removes it"))
                else:
                    result.append(Step(kind, key, o.name, "remove", "no longer in the spec"))
        return result

    for kind in ("network", "volume"):
        kind_steps = compare(kind)
        replaced_networks.update(s.name for s in kind_steps
                                 if s.kind == "network" and s.action in ("replace", "remove"))
        steps.extend(kind_steps)
    steps.extend(compare("container"))
    return Plan(lab.key, instance, tuple(steps), desired, tuple(seen), tuple(images))


def _compare_one(
    kind: str,
    key: str,
    want: Desired,
    have: Observed | None,
    lab: Lab,
    replaced_networks: set[str],
) -> Step:
    if have is None:
        return Step(kind, key, want.name, "create")
    if have.labels.get(L.CONFIG_HASH) != want.hash:
        if kind == "volume":  # never drop data because a label changed
            return Step(kind, key, want.name, "keep", "labels differ; `reset` recreates it")
        changed = changed_fields(have.labels.get(CONFIG_JSON), want.config)
        return Step(kind, key, want.name, "replace", changed=tuple(changed))
    if kind != "container":
        return Step(kind, key, want.name, "keep")
    lost = sorted(set(want.config.get("networks", {})) & replaced_networks)
    if lost:
        return Step(kind, key, want.name, "replace", f"network {lost[0]} is replaced")
    if have.state in ("running", "restarting", "paused"):
        return Step(kind, key, want.name, "keep")
    if have.state == "exited" and have.exit_code == 0 and _is_job(lab, key):
        return Step(kind, key, want.name, "keep", "completed")
    if have.state == "created":
        return Step(kind, key, want.name, "replace", "was never started")
    return Step(kind, key, want.name, "replace", f"was {have.status or have.state}".strip())


def _is_job(lab: Lab, key: str) -> bool:
    """A container something waits on with ``condition: completed`` is a one-shot job."""
    return any(
        d.container == key and d.condition == "completed"
        for c in lab.containers
        for d in c.depends_on
    )
