"""A small in-memory engine for unit tests: it satisfies both engine protocols.

It holds labelled resources (containers, networks, volumes), images and inspect documents,
scripts ``exec`` answers, and counts calls, so tests can prove the planner makes one list call
per kind and no inspect per container, and the check runner's retries and parallelism.
``tests/unit/test_engine_protocol.py`` proves with mypy that it fits
:class:`provisioner.engine.protocol.Engine` (and so :class:`CheckEngine`).
"""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from labspec.model import Container
from provisioner.engine.capabilities import Capabilities
from provisioner.engine.protocol import CommandResult, Endpoint, Observed

if TYPE_CHECKING:
    from provisioner.engine.probe_agent import ProbeAgent
    from provisioner.engine.protocol import HostShell


class FakeEngine:
    url = "fake://engine"
    host_label = "local"
    is_local = False
    api_version = "1.41"

    def __init__(self, caps: Capabilities | None = None) -> None:
        self.caps = caps or Capabilities("docker", "Docker Engine", "20.10.24", "1.41",
                                         ("bridge", "host", "null", "overlay"), "inactive")
        self.resources: list[Observed] = []
        self.images: dict[str, dict[str, Any]] = {}
        self.containers: dict[str, dict[str, Any]] = {}  # inspect documents by name
        self.calls: Counter[str] = Counter()
        self.exec_delay = 0.0
        self.exec_calls = 0
        self.exec_script: dict[str, list[CommandResult]] = {}
        self.lock = threading.Lock()
        self.streams: list[FakeEvents] = []  # open events() streams; emit() feeds them

    # -- test setup ---------------------------------------------------------------------------
    def add(self, observed: Observed) -> None:
        self.resources.append(observed)

    def running(self, name: str, *, labels: Mapping[str, str] | None = None,
                **state: Any) -> None:
        """A running container; by default labelled as labup labels a lab's own
        (``lab7-web``: lab ``lab7``, resource ``web``, instance ``default``)."""
        key, _, resource = name.rpartition("-")
        own = {"labup.managed": "true", "labup.lab": key, "labup.instance": "default",
               "labup.resource": resource}
        self.containers[name] = {
            "Id": "0123456789abcdef",
            "State": {"Status": "running", "Running": True, **state},
            "Config": {"User": "", "Labels": dict(own if labels is None else labels)},
        }

    # -- CheckEngine ----------------------------------------------------------------------------
    def exec(
        self,
        container: str,
        argv: Sequence[str],
        *,
        user: str | None = None,
        workdir: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> CommandResult:
        with self.lock:
            self.exec_calls += 1
            script = self.exec_script.get(argv[0])
            result = (
                script.pop(0)
                if script and len(script) > 1
                else (script[0] if script else CommandResult(0, "ok\n"))
            )
        time.sleep(self.exec_delay)
        return result

    def inspect_container(self, name: str) -> dict[str, Any] | None:
        self.calls["inspect container"] += 1
        return self.containers.get(name)

    def stat_path(self, container: str, path: str) -> dict[str, Any] | None:
        return None

    def inspect_image(self, ref: str) -> dict[str, Any] | None:
        self.calls["inspect image"] += 1
        return self.images.get(ref)

    def inspect_volume(self, name: str) -> dict[str, Any] | None:
        return None

    def inspect_network(self, name: str) -> dict[str, Any] | None:
        return None

    def run_probe(
        self,
        argv: Sequence[str],
        *,
        network_mode: str | None = None,
        mounts: Sequence[Mapping[str, Any]] = (),
        timeout: float | None = None,
    ) -> CommandResult:
        return CommandResult(1, "", "nc: bad address")

    def probe_agent(self) -> ProbeAgent | None:
        return None

    def info(self) -> dict[str, Any]:
        return {"Runtimes": {"runc": {}}}

    def close(self) -> None:
        pass

    # -- Engine ----------------------------------------------------------------------------
    def capabilities(self) -> Capabilities:
        self.calls["capabilities"] += 1
        return self.caps

    def sdk_client(self) -> Any:
        raise AssertionError("the fake engine has no docker SDK client")

    def ssh_session(self) -> HostShell | None:
        return None

    def list_resources(self, kind: str, labels: Mapping[str, str]) -> list[Observed]:
        self.calls[f"list {kind}"] += 1
        return [
            o for o in self.resources
            if o.kind == kind and all(o.labels.get(k) == v for k, v in labels.items())
        ]

    def running_containers(self) -> list[dict[str, Any]]:
        return []

    def create_network(
        self,
        name: str,
        *,
        driver: str,
        internal: bool,
        subnet: str | None,
        gateway: str | None,
        labels: Mapping[str, str],
    ) -> str:
        self.add(Observed("network", name, f"net-{name}", dict(labels)))
        return f"net-{name}"

    def remove_network(self, name: str, *, attempts: int = 4) -> str | None:
        self._drop("network", name)
        return None

    def disconnect(self, network: str, container: str) -> str | None:
        return None

    def create_volume(self, name: str, *, labels: Mapping[str, str]) -> None:
        self.add(Observed("volume", name, name, dict(labels)))

    def remove_volume(self, name: str) -> str | None:
        self._drop("volume", name)
        return None

    def create_container(
        self,
        name: str,
        c: Container,
        *,
        networks: Sequence[Endpoint],
        volume_names: Mapping[str, str],
        labels: Mapping[str, str],
        use_gpu: bool,
    ) -> str:
        nets = tuple(net for net, _, _ in networks)
        self.add(Observed("container", name, f"id-{name}", dict(labels), "created", networks=nets))
        return f"id-{name}"

    def start_container(self, name: str) -> None:
        self.running(name)

    def kill_container(self, name: str) -> None:
        self.containers.pop(name, None)

    def rename_container(self, name: str, new_name: str) -> None:
        self.containers[new_name] = self.containers.pop(name, {})

    def remove_container(self, name: str, *, force: bool = True) -> str | None:
        self._drop("container", name)
        self.containers.pop(name, None)
        return None

    def logs_tail(self, name: str, lines: int = 20) -> str:
        return ""

    def pull_image(self, ref: str, progress: Any = None) -> None:
        self.images[ref] = {"Id": f"sha256:{ref}"}

    def build_image(
        self,
        *,
        context: str,
        dockerfile: str,
        tag: str,
        buildargs: Mapping[str, str],
        target: str | None,
        labels: Mapping[str, str],
    ) -> Iterator[dict[str, Any]]:
        self.images[tag] = {"Id": f"sha256:{tag}"}
        yield {"aux": {"ID": f"sha256:{tag}"}}

    def inspect_distribution(self, ref: str) -> dict[str, Any]:
        return {}

    def events(
        self, filters: Mapping[str, Sequence[str]], *, since: float | None = None
    ) -> FakeEvents:
        self.calls["events"] += 1
        stream = FakeEvents(filters)
        self.streams.append(stream)
        return stream

    def emit(self, event: dict[str, Any]) -> None:
        """Send an event (the Engine API's JSON form) to every open stream whose ``type``
        filter lets it through."""
        for stream in list(self.streams):
            wanted = stream.filters.get("type")
            if not wanted or event.get("Type") in wanted:
                stream.queue.put(event)

    def _drop(self, kind: str, name: str) -> None:
        self.resources = [o for o in self.resources if not (o.kind == kind and o.name == name)]


class FakeEvents:
    """An events stream of the fake engine: what :meth:`FakeEngine.emit` sends, until closed."""

    def __init__(self, filters: Mapping[str, Sequence[str]]) -> None:
        self.filters = {k: list(v) for k, v in filters.items()}
        self.queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.closed = False

    def __iter__(self) -> Iterator[dict[str, Any]]:
        while True:
            event = self.queue.get()
            if event is None:
                return
            yield event

    def close(self) -> None:
        self.closed = True
        self.queue.put(None)
