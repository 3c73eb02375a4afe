"""labup checks every listed resource's labels itself: an engine whose label filters are
looser than Docker's (Podman 4.3 reads several as "any of" for volumes) never makes `down`
or `status` see another lab's resources."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from provisioner.engine.docker_engine import DockerEngine


def _labels(lab: str) -> dict[str, str]:
    return {"labup.managed": "true", "labup.lab": lab, "labup.instance": "default"}


class LooseEngine:
    """Answers every list with all it has, whatever the filters (the worst an engine can do)."""

    def __init__(self) -> None:
        self.filters: list[Any] = []

    def request(self, method: str, path: str, *, params: Mapping[str, str] | None = None,
                body: Any = None, timeout: float | None = None) -> Any:
        self.filters.append(json.loads((params or {}).get("filters", "{}")))
        if path == "/volumes":
            return {"Volumes": [{"Name": "lab6-data", "Labels": _labels("lab6")},
                                {"Name": "lab1-cache", "Labels": _labels("lab1")},
                                {"Name": "mine", "Labels": None}]}
        if path == "/networks":
            return [{"Name": "lab6-net", "Id": "n6", "Labels": _labels("lab6")}]
        if path == "/containers/json":
            return [{"Names": ["/lab1-web"], "Id": "c1", "Labels": _labels("lab1"),
                     "State": "running"},
                    {"Names": ["/lab6-web"], "Id": "c6", "Labels": _labels("lab6"),
                     "State": "running"}]
        raise AssertionError(path)

    def close(self) -> None:
        pass


def test_only_resources_carrying_every_label_are_listed() -> None:
    loose = LooseEngine()
    engine = DockerEngine(url="unix:///nonexistent.sock", transport=loose)
    wanted = _labels("lab1")
    assert [o.name for o in engine.list_resources("volume", wanted)] == ["lab1-cache"]
    assert engine.list_resources("network", wanted) == []
    assert [o.name for o in engine.list_resources("container", wanted)] == ["lab1-web"]
    # the engine is still asked to filter (the common case: it does, and answers little)
    assert loose.filters[0] == {"label": [f"{k}={v}" for k, v in wanted.items()]}
