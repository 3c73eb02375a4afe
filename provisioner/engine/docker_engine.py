"""DockerEngine: the Engine protocols on the Docker Engine API (local socket, tcp://, ssh://).

The lifecycle's calls (list, inspect, create, connect, start, remove) are plain JSON requests
sent through a :class:`~provisioner.engine.http.Transport`: the standard-library client on
``unix://`` and plain ``tcp://``, the docker SDK's session otherwise (``ssh://``). ``docker``
is imported only for what needs the SDK (exec, logs, pull, build, probes, or an SSH engine):
a no-op ``labup up`` and a ``labup down`` never import it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from labspec.errors import EngineError
from labspec.model import Container
from provisioner.engine import labels as L
from provisioner.engine.api_body import _endpoint, container_body, for_podman
from provisioner.engine.docker_base import _q
from provisioner.engine.docker_checks import DockerChecks
from provisioner.engine.http import api_error_text, label_filter
from provisioner.engine.protocol import ApiError, Endpoint, EventStream, Observed

# Podman: "container X has dependent containers which must be removed before it: ID[,ID]: ..."
DEPENDENTS = re.compile(r"has dependent containers which must be removed before it: ([0-9a-f, ]+)")


class DockerEngine(DockerChecks):
    """One Docker engine: build it from a URL (``DockerEngine(url=...)``), or from an existing
    ``docker.DockerClient`` and the URL it talks to (e.g. one that talks over SSH)."""

    # -- listing (one call per kind, label filters, no inspect) -------------------------------
    def list_resources(self, kind: str, labels: Mapping[str, str]) -> list[Observed]:
        """Resources of ``kind`` carrying every one of ``labels``. The engine filters, and
        labup checks each answer again: an engine that reads several label filters as "any
        of" (Podman 4.3 does for volumes) must never hand ``down`` another lab's resource."""
        return [o for o in self._listed(kind, labels)
                if all(o.labels.get(k) == v for k, v in labels.items())]

    def _listed(self, kind: str, labels: Mapping[str, str]) -> list[Observed]:
        flt = {"filters": label_filter(labels)}
        try:
            if kind == "container":
                items = self.call("GET", "/containers/json", params={"all": "1", **flt}) or []
                return [_observed_container(i) for i in items]
            if kind == "network":
                items = self.call("GET", "/networks", params=flt) or []
                return [
                    Observed("network", i["Name"], i["Id"], i.get("Labels") or {}) for i in items
                ]
            if kind == "volume":
                items = (self.call("GET", "/volumes", params=flt) or {}).get("Volumes") or []
                return [
                    Observed("volume", i["Name"], i["Name"], i.get("Labels") or {}) for i in items
                ]
        except ApiError as e:
            raise self._fail(e, f"list {kind}s") from e
        raise ValueError(kind)

    def running_containers(self) -> list[dict[str, Any]]:
        try:
            return list(self.call("GET", "/containers/json") or [])
        except ApiError as e:
            raise self._fail(e, "list the running containers") from e

    # -- networks and volumes ------------------------------------------------------------------
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
        body: dict[str, Any] = {
            "Name": name,
            "Driver": driver,
            "Internal": internal,
            "Labels": dict(labels),
            "CheckDuplicate": True,
        }
        if subnet or gateway:
            pool = {k: v for k, v in (("Subnet", subnet), ("Gateway", gateway)) if v}
            body["IPAM"] = {"Driver": "default", "Config": [pool]}
        try:
            result = self.call("POST", "/networks/create", body=body)
        except ApiError as e:
            raise self._fail(e, "create network", name) from e
        return str(result["Id"])

    def remove_network(self, name: str, *, attempts: int = 4) -> str | None:
        """Remove a network; on dockerd's stuck "active endpoints", force-disconnect and retry.
        Returns None when removed (or already gone), else the engine's last words."""
        last = ""
        for attempt in range(attempts):
            try:
                self.call("DELETE", f"/networks/{_q(name)}")
                return None
            except ApiError as e:
                if e.status == 404:
                    return None
                last = e.explanation
                if "active endpoints" not in last:
                    return last
            self._disconnect_all(name)
            time.sleep(0.2 * attempt)
        return last

    def _disconnect_all(self, network: str) -> None:
        info = self.inspect_network(network) or {}
        for endpoint_id, endpoint in (info.get("Containers") or {}).items():
            self.disconnect(network, endpoint.get("Name") or endpoint_id)

    def disconnect(self, network: str, container: str) -> str | None:
        """Force-disconnect a container from a network; None when done (or nothing to do)."""
        try:
            self.call("POST", f"/networks/{_q(network)}/disconnect",
                      body={"Container": container, "Force": True})
        except ApiError as e:
            return None if e.status == 404 else e.explanation
        return None

    def create_volume(self, name: str, *, labels: Mapping[str, str]) -> None:
        try:
            self.call("POST", "/volumes/create", body={"Name": name, "Labels": dict(labels)})
        except ApiError as e:
            raise self._fail(e, "create volume", name) from e

    def remove_volume(self, name: str) -> str | None:
        try:
            self.call("DELETE", f"/volumes/{_q(name)}", params={"force": "1"})
        except ApiError as e:
            return None if e.status == 404 else e.explanation
        return None

    # -- containers ------------------------------------------------------------------------------
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
        """Create a container from the model; connect every network before it starts.

        ``networks`` are (docker network name, aliases, ipv4 address). API 1.41 attaches one
        network at create, so the others are connected right after; API >= 1.44 takes them all.
        """
        at_create = list(networks) if self.endpoints_at_create() else list(networks[:1])
        body = container_body(c, networks=networks, at_create=at_create,
                              volume_names=volume_names, labels=labels, use_gpu=use_gpu)
        if c.healthcheck is not None and self.is_podman:
            body = for_podman(body)
        try:
            created = self.call("POST", "/containers/create", params={"name": name}, body=body)
        except ApiError as e:
            raise self._fail(e, "create the container", name) from e
        cid = str(created["Id"])
        for net, aliases, ip in networks[len(at_create):]:
            try:
                self.call("POST", f"/networks/{_q(net)}/connect",
                          body={"Container": cid, "EndpointConfig": _endpoint(aliases, ip)})
            except ApiError as e:
                raise self._fail(e, f"connect it to network {net}", name) from e
        return cid

    def start_container(self, name: str) -> None:
        try:
            self.call("POST", f"/containers/{_q(name)}/start")
        except ApiError as e:
            raise self._fail(e, "start", name) from e

    def kill_container(self, name: str) -> None:
        """SIGKILL a running container (no error when it is not running)."""
        try:
            self.call("POST", f"/containers/{_q(name)}/kill")
        except ApiError as e:
            if e.status not in (404, 409):
                raise self._fail(e, "stop", name) from e

    def rename_container(self, name: str, new_name: str) -> None:
        try:
            self.call("POST", f"/containers/{_q(name)}/rename", params={"name": new_name})
        except ApiError as e:
            raise self._fail(e, f"rename it to {new_name}", name) from e

    def remove_container(self, name: str, *, force: bool = True) -> str | None:
        """Remove a container (and its anonymous volumes); None when gone, else the error.

        Podman refuses to remove a container while others share its namespaces (a check's
        probe sidecar joined to its network); Docker removes it. labup's own sidecars and
        the lab's containers among them are removed first; anything else is reported."""
        params = {"force": "1" if force else "0", "v": "1"}
        for attempt in range(3):
            try:
                self.call("DELETE", f"/containers/{_q(name)}", params=params)
            except ApiError as e:
                if e.status == 404 or "is already in progress" in e.explanation:
                    return None
                found = DEPENDENTS.search(e.explanation)
                if found is None or attempt == 2 or not self._remove_ours(
                        found.group(1).replace(",", " ").split(), name):
                    return e.explanation
                continue
            return None
        return None  # pragma: no cover

    def _remove_ours(self, ids: Sequence[str], of: str) -> bool:
        """Remove the containers ``ids`` that labup made (probes, the same lab's), True when
        all of them were ours."""
        lab = ((self.inspect_container(of) or {}).get("Config") or {}).get("Labels") or {}
        for cid in ids:
            labels = ((self.inspect_container(cid) or {}).get("Config") or {}).get("Labels") or {}
            ours = labels.get(L.KIND) == "probe" or (
                labels.get(L.LAB) is not None and labels.get(L.LAB) == lab.get(L.LAB))
            if not ours:
                return False
            self.remove_container(cid)
        return True

    def logs_tail(self, name: str, lines: int = 20) -> str:
        try:
            data = self.api.logs(name, stdout=True, stderr=True, tail=lines)
        except Exception as e:
            return f"(logs unavailable: {api_error_text(e)})"
        return bytes(data).decode(errors="replace").rstrip()

    # -- images --------------------------------------------------------------------------------
    def pull_image(self, ref: str, progress: Any = None) -> None:
        """Pull ``ref``; ``progress(text)`` gets the status lines."""
        repo, tag = _split_ref(ref)
        try:
            for event in self.api.pull(repo, tag=tag, stream=True, decode=True):
                if "error" in event:
                    raise EngineError(f"could not pull: {event['error']}", resource=f"image {ref}")
                if progress is not None and event.get("status"):
                    progress(str(event["status"]))
        except EngineError:
            raise
        except Exception as e:
            raise self._fail(e, "pull", f"image {ref}") from e

    def inspect_distribution(self, ref: str) -> dict[str, Any]:
        try:
            return dict(self.api.inspect_distribution(ref))
        except Exception as e:  # the SDK's APIError carries the registry's own words
            said = api_error_text(e).strip().splitlines()
            raise EngineError(
                said[-1] if said else type(e).__name__, resource=f"image {ref}"
            ) from e

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
        """Stream the build's JSON events (``stream``, ``error``, ``aux``)."""
        try:
            yield from self.api.build(
                path=context,
                dockerfile=dockerfile,
                tag=tag,
                buildargs=dict(buildargs) or None,
                target=target,
                labels=dict(labels),
                rm=True,
                forcerm=True,
                decode=True,
            )
        except Exception as e:
            raise self._fail(e, "build", f"image {tag}") from e


    # -- events ----------------------------------------------------------------------------------
    def events(
        self, filters: Mapping[str, Sequence[str]], *, since: float | None = None
    ) -> EventStream:
        """The events stream: on ``unix://`` and ``tcp://`` a plain socket of its own
        (:class:`~provisioner.engine.json_stream.JsonStream`), else the SDK's (``ssh://``)."""
        import json

        if self.raw is not None:
            from provisioner.engine.json_stream import JsonStream

            params = {"filters": json.dumps({k: list(v) for k, v in filters.items()})}
            if since is not None:
                params["since"] = f"{since:.3f}"
            return JsonStream(self.url, "/events", params)
        try:
            stream = self.api.events(filters={k: list(v) for k, v in filters.items()},
                                     since=since, decode=True)
        except Exception as e:
            raise self._fail(e, "follow the engine's events") from e
        return _SdkEvents(stream)


class _SdkEvents:
    """The SDK's cancellable events stream as an :class:`EventStream`."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[dict[str, Any]]:
        try:
            yield from self._stream
        except Exception:  # closed from another thread, or the connection went away
            return

    def close(self) -> None:
        try:
            self._stream.close()
        except Exception:  # closing a dead stream hides nothing
            return


def _split_ref(ref: str) -> tuple[str, str | None]:
    """``repo:tag`` or ``repo@digest`` -> (repo, tag or digest); default tag latest."""
    if "@" in ref:
        repo, digest = ref.split("@", 1)
        return repo, digest
    last = ref.rsplit("/", 1)[-1]
    if ":" in last:
        repo, tag = ref.rsplit(":", 1)
        return repo, tag
    return ref, "latest"


def _observed_container(item: Mapping[str, Any]) -> Observed:
    names = item.get("Names") or ["/" + str(item.get("Id", ""))[:12]]
    nets = tuple(sorted(((item.get("NetworkSettings") or {}).get("Networks") or {}).keys()))
    return Observed(
        kind="container",
        name=str(names[0]).lstrip("/"),
        id=str(item.get("Id", "")),
        labels=item.get("Labels") or {},
        state=str(item.get("State", "")),
        status=str(item.get("Status", "")),
        networks=nets,
    )
