"""The Swarm API of a manager's engine: nodes, services, tasks, overlay networks, secrets, configs.

:class:`SwarmManager` is the protocol a virtual classroom (``provisioner/classroom``) is
typed against; :class:`DockerSwarm` implements it on a ``DockerEngine`` connected to a
manager (``unix://``, ``tcp://`` or ``ssh://``): every call is one plain JSON request through
the engine's transport, so it works the same on every URL. Records crossing
the seam are NamedTuples; an engine's refusal is an :class:`~labspec.errors.EngineError`
naming the manager, and "already gone" is never an error for a removal.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol

from labspec.errors import EngineError
from provisioner.engine.docker_base import _q
from provisioner.engine.http import label_filter
from provisioner.engine.protocol import ApiError, Engine

if TYPE_CHECKING:
    from provisioner.engine.docker_engine import DockerEngine

ObjectKind = Literal["network", "secret", "config"]
_PATHS: dict[str, str] = {"network": "/networks", "secret": "/secrets", "config": "/configs"}


class SwarmInfo(NamedTuple):
    """Where the engine stands in its swarm (``docker info``'s Swarm section)."""

    state: str  # "active", "inactive", "pending", "error", "locked"
    node_id: str
    node_addr: str
    cluster_id: str
    manager: bool  # the engine can run the swarm's control plane (ControlAvailable)


class SwarmNode(NamedTuple):
    id: str
    hostname: str
    address: str  # the address the node advertises to the swarm
    role: str  # "manager" | "worker"
    state: str  # "ready", "down", ...
    availability: str  # "active", "pause", "drain"
    generic: Mapping[str, int]  # generic resources it advertises: kind -> count
    labels: Mapping[str, str]


class SwarmService(NamedTuple):
    id: str
    name: str
    labels: Mapping[str, str]
    published: tuple[int, ...]  # host ports its spec publishes
    reserved: Mapping[str, int]  # generic resources its tasks reserve, all replicas: kind -> n


class SwarmTask(NamedTuple):
    id: str
    service_id: str
    node_id: str
    slot: int
    state: str  # "new", "pending", "assigned", ..., "running", "failed", "rejected", ...
    desired_state: str
    message: str
    error: str
    container_id: str
    ports: tuple[tuple[int, int], ...]  # (target, published) of ports published on its node
    env_resources: Mapping[str, str]  # generic resources assigned to it (kind -> value)


class SwarmObject(NamedTuple):
    kind: ObjectKind
    id: str
    name: str
    labels: Mapping[str, str]


class SwarmManager(Protocol):
    """What a classroom needs of a swarm manager (and of that manager's own engine)."""

    @property
    def url(self) -> str: ...

    @property
    def engine(self) -> Engine:
        """The manager's own engine: images, and the volumes on the manager's node."""
        ...

    def swarm_info(self) -> SwarmInfo: ...

    def nodes(self) -> list[SwarmNode]: ...

    def services(self, labels: Mapping[str, str]) -> list[SwarmService]:
        """Services carrying every label in ``labels`` (all of them for ``{}``)."""
        ...

    def create_service(self, body: Mapping[str, Any]) -> str:
        """Create a service from its spec (``POST /services/create``); its id."""
        ...

    def remove_service(self, name: str) -> str | None:
        """None when removed (or already gone), else the engine's words."""
        ...

    def tasks(self, service_ids: Sequence[str]) -> list[SwarmTask]: ...

    def objects(self, kind: ObjectKind, labels: Mapping[str, str]) -> list[SwarmObject]: ...

    def create_overlay(self, name: str, *, internal: bool, labels: Mapping[str, str]) -> str: ...

    def create_secret(self, name: str, data: bytes, labels: Mapping[str, str]) -> str: ...

    def create_config(self, name: str, data: bytes, labels: Mapping[str, str]) -> str: ...

    def remove_object(self, kind: ObjectKind, name: str) -> str | None:
        """None when removed (or already gone), else the engine's words (a network in use)."""
        ...


class DockerSwarm:
    """:class:`SwarmManager` on a manager's Docker engine."""

    def __init__(self, engine: DockerEngine) -> None:
        self._engine = engine
        self._call = engine.call  # one JSON request through the engine's transport

    @property
    def url(self) -> str:
        return self._engine.url

    @property
    def engine(self) -> Engine:
        return self._engine

    def _fail(self, e: ApiError, what: str, resource: str | None = None) -> EngineError:
        label = self._engine.host_label
        return EngineError(f"could not {what}: {e.explanation}",
                           host=None if label == "local" else label, resource=resource)

    def _get(self, path: str, what: str, params: Mapping[str, str] | None = None) -> Any:
        try:
            return self._call("GET", path, params=params)
        except ApiError as e:
            raise self._fail(e, what) from e

    def swarm_info(self) -> SwarmInfo:
        swarm = (self._get("/info", "read docker info") or {}).get("Swarm") or {}
        cluster = swarm.get("Cluster") or {}
        return SwarmInfo(
            state=str(swarm.get("LocalNodeState", "inactive")),
            node_id=str(swarm.get("NodeID", "")),
            node_addr=str(swarm.get("NodeAddr", "")),
            cluster_id=str(cluster.get("ID", "")),
            manager=bool(swarm.get("ControlAvailable")),
        )

    def nodes(self) -> list[SwarmNode]:
        return [_node(item) for item in self._get("/nodes", "list the swarm's nodes") or []]

    def services(self, labels: Mapping[str, str]) -> list[SwarmService]:
        params = {"filters": label_filter(labels)} if labels else None
        return [_service(item) for item in self._get("/services", "list services", params) or []]

    def create_service(self, body: Mapping[str, Any]) -> str:
        name = str(body.get("Name", ""))
        try:
            answer = self._call("POST", "/services/create", body=dict(body))
        except ApiError as e:
            raise self._fail(e, "create service", name) from e
        return str((answer or {}).get("ID", ""))

    def remove_service(self, name: str) -> str | None:
        return self._remove(f"/services/{_q(name)}")

    def tasks(self, service_ids: Sequence[str]) -> list[SwarmTask]:
        """The tasks of these services, including those of services just removed whose
        containers are still being shut down (the swarm lists those until it reaps them)."""
        if not service_ids:
            return []
        wanted = set(service_ids)
        params = {"filters": json.dumps({"service": sorted(wanted)})}
        try:
            items = self._call("GET", "/tasks", params=params) or []
        except ApiError as e:
            if e.status != 404:  # "service ... not found": some were removed; ask for all
                raise self._fail(e, "list tasks") from e
            items = [i for i in self._get("/tasks", "list tasks") or []
                     if i.get("ServiceID") in wanted]
        return [_task(item) for item in items]

    def objects(self, kind: ObjectKind, labels: Mapping[str, str]) -> list[SwarmObject]:
        params = {"filters": label_filter(labels)} if labels else None
        items = self._get(_PATHS[kind], f"list {kind}s", params) or []
        found = []
        for item in items:
            spec = item.get("Spec") or item
            name = str(spec.get("Name") or item.get("Name") or "")
            found.append(SwarmObject(kind, str(item.get("ID") or item.get("Id") or ""), name,
                                     dict(spec.get("Labels") or item.get("Labels") or {})))
        return found

    def create_overlay(self, name: str, *, internal: bool, labels: Mapping[str, str]) -> str:
        body = {"Name": name, "Driver": "overlay", "Internal": internal, "Attachable": False,
                "Labels": dict(labels), "CheckDuplicate": True}
        try:
            answer = self._call("POST", "/networks/create", body=body)
        except ApiError as e:
            raise self._fail(e, "create network", name) from e
        return str((answer or {}).get("Id", ""))

    def create_secret(self, name: str, data: bytes, labels: Mapping[str, str]) -> str:
        return self._create_object("secret", name, data, labels)

    def create_config(self, name: str, data: bytes, labels: Mapping[str, str]) -> str:
        return self._create_object("config", name, data, labels)

    def _create_object(
        self, kind: ObjectKind, name: str, data: bytes, labels: Mapping[str, str]
    ) -> str:
        body = {"Name": name, "Labels": dict(labels), "Data": base64.b64encode(data).decode()}
        try:
            answer = self._call("POST", f"{_PATHS[kind]}/create", body=body)
        except ApiError as e:
            raise self._fail(e, f"create {kind}", name) from e
        return str((answer or {}).get("ID", ""))

    def remove_object(self, kind: ObjectKind, name: str) -> str | None:
        return self._remove(f"{_PATHS[kind]}/{_q(name)}")

    def _remove(self, path: str) -> str | None:
        try:
            self._call("DELETE", path)
        except ApiError as e:
            return None if e.status == 404 else e.explanation
        return None


def _node(item: Mapping[str, Any]) -> SwarmNode:
    spec = item.get("Spec") or {}
    desc = item.get("Description") or {}
    status = item.get("Status") or {}
    generic: dict[str, int] = {}
    for res in (desc.get("Resources") or {}).get("GenericResources") or []:
        named = res.get("NamedResourceSpec")
        discrete = res.get("DiscreteResourceSpec")
        if named:
            generic[str(named["Kind"])] = generic.get(str(named["Kind"]), 0) + 1
        elif discrete:
            kind = str(discrete["Kind"])
            generic[kind] = generic.get(kind, 0) + int(discrete.get("Value", 0))
    address = str(status.get("Addr") or "")
    manager = item.get("ManagerStatus") or {}
    if address in ("", "0.0.0.0") and manager.get("Addr"):  # noqa: S104 (reading, not binding)
        address = str(manager["Addr"]).rsplit(":", 1)[0]
    return SwarmNode(
        id=str(item.get("ID", "")),
        hostname=str(desc.get("Hostname", "")),
        address=address,
        role=str(spec.get("Role", "")),
        state=str(status.get("State", "")),
        availability=str(spec.get("Availability", "")),
        generic=generic,
        labels=dict(spec.get("Labels") or {}),
    )


def _service(item: Mapping[str, Any]) -> SwarmService:
    spec = item.get("Spec") or {}
    ports = ((spec.get("EndpointSpec") or {}).get("Ports") or [])
    task = spec.get("TaskTemplate") or {}
    replicas = int(((spec.get("Mode") or {}).get("Replicated") or {}).get("Replicas", 1) or 0)
    reserved: dict[str, int] = {}
    for res in ((task.get("Resources") or {}).get("Reservations") or {}).get(
            "GenericResources") or []:
        discrete = res.get("DiscreteResourceSpec")
        if discrete:
            kind = str(discrete["Kind"])
            reserved[kind] = reserved.get(kind, 0) + int(discrete.get("Value", 0)) * replicas
    return SwarmService(
        id=str(item.get("ID", "")),
        name=str(spec.get("Name", "")),
        labels=dict(spec.get("Labels") or {}),
        published=tuple(int(p["PublishedPort"]) for p in ports if p.get("PublishedPort")),
        reserved=reserved,
    )


def _task(item: Mapping[str, Any]) -> SwarmTask:
    status = item.get("Status") or {}
    container = status.get("ContainerStatus") or {}
    ports = (status.get("PortStatus") or {}).get("Ports") or []
    assigned: dict[str, str] = {}
    for res in item.get("AssignedGenericResources") or item.get("GenericResources") or []:
        named = res.get("NamedResourceSpec")
        discrete = res.get("DiscreteResourceSpec")
        if named:
            assigned[str(named["Kind"])] = str(named.get("Value", ""))
        elif discrete:
            assigned[str(discrete["Kind"])] = str(discrete.get("Value", ""))
    return SwarmTask(
        id=str(item.get("ID", "")),
        service_id=str(item.get("ServiceID", "")),
        node_id=str(item.get("NodeID", "")),
        slot=int(item.get("Slot") or 0),
        state=str(status.get("State", "")),
        desired_state=str(item.get("DesiredState", "")),
        message=str(status.get("Message", "")),
        error=str(status.get("Err", "")),
        container_id=str(container.get("ContainerID", "")),
        ports=tuple((int(p.get("TargetPort", 0)), int(p.get("PublishedPort", 0))) for p in ports),
        env_resources=assigned,
    )
