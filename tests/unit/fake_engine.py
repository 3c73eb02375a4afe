"""A small in-memory engine for planner unit tests: it holds labelled resources and images.

It satisfies provisioner.lifecycle.planner.PlanEngine (list_resources, inspect_image) and
counts calls, so
tests can prove the planner makes one list call per kind and no inspect per container.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from provisioner.engine.docker_engine import Observed


class FakeEngine:
    url = "fake://engine"
    host_label = "fake"

    def __init__(self) -> None:
        self.resources: list[Observed] = []
        self.images: dict[str, dict[str, Any]] = {}
        self.calls: Counter[str] = Counter()

    def add(self, observed: Observed) -> None:
        self.resources.append(observed)

    def list_resources(self, kind: str, labels: Mapping[str, str]) -> list[Observed]:
        self.calls[f"list {kind}"] += 1
        return [
            o for o in self.resources
            if o.kind == kind and all(o.labels.get(k) == v for k, v in labels.items())
        ]

    def inspect_image(self, ref: str) -> dict[str, Any] | None:
        self.calls["inspect image"] += 1
        return self.images.get(ref)

    def inspect_container(self, name: str) -> dict[str, Any] | None:
        self.calls["inspect container"] += 1
        return None
