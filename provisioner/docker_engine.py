"""DockerEngine: the Engine protocol on the docker SDK (local socket, tcp://, ssh://).

``docker`` is imported lazily, on the first call that needs the SDK, so commands that only
read state stay fast: on a ``unix://`` or plain ``tcp://`` URL, listing and inspecting go through
a tiny standard-library HTTP client (:class:`RawApi`), which is what a no-op ``labup up`` uses.
Everything that changes the engine goes through the SDK's low-level ``APIClient``.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from labspec.errors import EngineError, EngineUnreachable
from labspec.model import Container
from provisioner.engine import CommandResult

ENGINE_HINT = "start one with `bash scripts/engine.sh` (or start Docker Desktop), or pass --host"
DEFAULT_URL = "unix:///var/run/docker.sock"


@dataclass(frozen=True)
class Observed:
    """A labelled resource as the engine lists it (no inspect needed)."""

    kind: str  # "container" | "network" | "volume"
    name: str
    id: str
    labels: Mapping[str, str] = field(default_factory=dict)
    state: str = ""  # containers: running / exited / created / restarting / paused / dead
    status: str = ""  # containers: "Up 3 seconds (healthy)", "Exited (1) 2 seconds ago"
    networks: tuple[str, ...] = ()  # containers: names of the networks it is attached to

    @property
    def health(self) -> str | None:
        for marker, health in (("(healthy)", "healthy"), ("(unhealthy)", "unhealthy"),
                               ("(health: starting)", "starting")):
            if marker in self.status:
                return health
        return None

    @property
    def exit_code(self) -> int | None:
        if self.state != "exited" or "(" not in self.status:
            return None
        try:
            return int(self.status.split("(", 1)[1].split(")", 1)[0])
        except ValueError:
            return None


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


class RawApi:
    """Read-only Engine API calls over the standard library (unix:// or plain tcp://)."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url
        self.timeout = timeout
        self._local = threading.local()

    @staticmethod
    def supports(url: str) -> bool:
        return url.startswith(("unix://", "tcp://", "http://"))

    def _connection(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self.url.startswith("unix://"):
                conn = _UnixConnection(self.url[len("unix://") :], self.timeout)
            else:
                parsed = urllib.parse.urlparse(self.url.replace("tcp://", "http://", 1))
                conn = http.client.HTTPConnection(
                    parsed.hostname or "localhost", parsed.port or 2375, timeout=self.timeout
                )
            self._local.conn = conn
        return conn

    def ping(self) -> None:
        """Raise EngineUnreachable unless ``/_ping`` answers."""
        self.get("/_ping", raw=True)

    def get(self, path: str, params: Mapping[str, str] | None = None, *, raw: bool = False) -> Any:
        """GET a JSON document (or the raw body); None on 404."""
        query = "?" + urllib.parse.urlencode(params) if params else ""
        for attempt in (1, 2):
            conn = self._connection()
            try:
                conn.request("GET", path + query)
                resp = conn.getresponse()
                body = resp.read()
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                self._local.conn = None
                if attempt == 2 or isinstance(e, FileNotFoundError | ConnectionRefusedError):
                    raise EngineUnreachable(
                        f"no Docker engine answers at {self.url} ({e.__class__.__name__}: {e})",
                        hint=ENGINE_HINT,
                    ) from e
                continue
            if resp.status == 404:
                return None
            if resp.status >= 400:
                text = body.decode(errors="replace")
                raise EngineError(f"GET {path} failed ({resp.status}): {text}")
            if raw:
                return body
            return json.loads(body) if body else None
        return None  # pragma: no cover

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def label_filter(labels: Mapping[str, str]) -> str:
    return json.dumps({"label": [f"{k}={v}" for k, v in labels.items()]})


def api_error_text(e: Exception) -> str:
    """The engine's own words for an SDK error."""
    explanation = getattr(e, "explanation", None)
    if explanation:
        return str(explanation.decode() if isinstance(explanation, bytes) else explanation)
    return str(e)


class DockerEngine:
    """One Docker engine. Build it from a URL (the SDK client is created on first use) or from an
    existing ``docker.DockerClient`` (e.g. one that talks over SSH)."""

    def __init__(
        self,
        client: Any | None = None,
        *,
        url: str | None = None,
        host_label: str = "local",
        timeout: float = 60.0,
        pool_size: int = 16,
    ) -> None:
        if client is None and url is None:
            url = DEFAULT_URL
        self._client = client
        self._url = url or str(getattr(getattr(client, "api", None), "base_url", "") or "docker")
        self._host_label = host_label
        self._timeout = timeout
        self._pool_size = pool_size
        self._info: dict[str, Any] | None = None
        self._lock = threading.Lock()
        self.raw: RawApi | None = (
            RawApi(self._url, timeout) if client is None and RawApi.supports(self._url) else None
        )

    # -- identity ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return self._url

    @property
    def host_label(self) -> str:
        return self._host_label

    def __repr__(self) -> str:
        return f"DockerEngine({self._url!r}, host_label={self._host_label!r})"

    @property
    def client(self) -> Any:
        """The docker SDK client, created (and docker imported) on first use."""
        with self._lock:
            if self._client is None:
                try:
                    import docker
                except ImportError as e:  # pragma: no cover - docker is a dependency
                    raise EngineError("the docker Python package is not installed") from e
                try:
                    self._client = docker.DockerClient(
                        base_url=self._url,
                        timeout=int(self._timeout),
                        max_pool_size=self._pool_size,
                    )
                except docker.errors.DockerException as e:
                    raise EngineUnreachable(
                        f"no Docker engine answers at {self._url} ({api_error_text(e)})",
                        hint=ENGINE_HINT,
                    ) from e
            return self._client

    @property
    def api(self) -> Any:
        return self.client.api

    def _fail(self, e: Exception, what: str, resource: str | None = None) -> EngineError:
        name = type(e).__name__
        if name in ("ConnectionError", "ConnectTimeout") or isinstance(e, ConnectionError):
            return EngineUnreachable(
                f"lost the Docker engine at {self._url} while trying to {what} ({e})",
                host=self._host_label if self._host_label != "local" else None,
                hint=ENGINE_HINT,
            )
        return EngineError(
            f"could not {what}: {api_error_text(e)}",
            host=self._host_label if self._host_label != "local" else None,
            resource=resource,
        )

    def ping(self) -> None:
        """Raise EngineUnreachable unless the engine answers."""
        if self.raw is not None:
            self.raw.ping()
            return
        try:
            self.client.ping()
        except Exception as e:
            raise EngineUnreachable(
                f"no Docker engine answers at {self._url} ({api_error_text(e)})", hint=ENGINE_HINT
            ) from e

    @property
    def api_version(self) -> str:
        return str(self.api._version)

    def endpoints_at_create(self) -> bool:
        """Engines with API >= 1.44 take every network endpoint at create; older ones take one."""
        major, minor = (int(x) for x in self.api_version.split(".")[:2])
        return (major, minor) >= (1, 44)

    # -- the narrow door used by checks -------------------------------------------------------
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
        try:
            exec_id = self.api.exec_create(
                container,
                list(argv),
                user=user or "",
                workdir=workdir,
                environment=dict(env) if env else None,
                stdout=True,
                stderr=True,
            )["Id"]
        except Exception as e:
            raise self._fail(e, f"run {list(argv)!r}", container) from e
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                box["out"] = self.api.exec_start(exec_id, demux=True)
            except Exception as e:  # reported to the caller below
                box["err"] = e

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        thread.join(timeout)
        if thread.is_alive():
            return CommandResult(rc=124, stdout="", stderr=f"timed out after {timeout:g}s")
        if "err" in box:
            raise self._fail(box["err"], f"run {list(argv)!r}", container) from box["err"]
        out, err = box["out"] or (None, None)
        rc = self.api.exec_inspect(exec_id).get("ExitCode")
        return CommandResult(
            rc=int(rc) if rc is not None else -1,
            stdout=(out or b"").decode(errors="replace"),
            stderr=(err or b"").decode(errors="replace"),
        )

    def _inspect(self, raw_path: str, sdk: Callable[[], Any]) -> dict[str, Any] | None:
        if self.raw is not None:
            result = self.raw.get(raw_path)
            return dict(result) if result is not None else None
        try:
            return dict(sdk())
        except Exception as e:
            if type(e).__name__ in ("NotFound", "ImageNotFound"):
                return None
            raise self._fail(e, f"inspect {raw_path}") from e

    def inspect_container(self, name: str) -> dict[str, Any] | None:
        q = urllib.parse.quote(name, safe="")
        return self._inspect(f"/containers/{q}/json", lambda: self.api.inspect_container(name))

    def inspect_image(self, ref: str) -> dict[str, Any] | None:
        q = urllib.parse.quote(ref, safe="")
        return self._inspect(f"/images/{q}/json", lambda: self.api.inspect_image(ref))

    def inspect_volume(self, name: str) -> dict[str, Any] | None:
        q = urllib.parse.quote(name, safe="")
        return self._inspect(f"/volumes/{q}", lambda: self.api.inspect_volume(name))

    def inspect_network(self, name: str) -> dict[str, Any] | None:
        q = urllib.parse.quote(name, safe="")
        return self._inspect(f"/networks/{q}", lambda: self.api.inspect_network(name))

    def run_probe(
        self,
        argv: Sequence[str],
        *,
        network_mode: str | None = None,
        mounts: Sequence[Mapping[str, Any]] = (),
        timeout: float | None = None,
    ) -> CommandResult:
        from provisioner.probe import (  # type: ignore[import-not-found,unused-ignore]
            run_probe,  # the checks engineer's module
        )

        result: CommandResult = run_probe(
            self.client, argv, network_mode=network_mode, mounts=mounts, timeout=timeout
        )
        return result

    def info(self) -> dict[str, Any]:
        if self._info is None:
            if self.raw is not None:
                self._info = dict(self.raw.get("/info") or {})
            else:
                try:
                    self._info = dict(self.client.info())
                except Exception as e:
                    raise self._fail(e, "read docker info") from e
        return self._info

    def close(self) -> None:
        if self.raw is not None:
            self.raw.close()
        if self._client is not None:
            self._client.close()

    # -- listing (one call per kind, label filters, no inspect) -------------------------------
    def list_resources(self, kind: str, labels: Mapping[str, str]) -> list[Observed]:
        flt = label_filter(labels)
        if kind == "container":
            items = self._list("/containers/json", {"all": "1", "filters": flt},
                               lambda: self.api.containers(all=True, filters=json.loads(flt)))
            return [_observed_container(i) for i in items]
        if kind == "network":
            items = self._list("/networks", {"filters": flt},
                               lambda: self.api.networks(filters=json.loads(flt)))
            return [
                Observed("network", i["Name"], i["Id"], i.get("Labels") or {}) for i in items
            ]
        if kind == "volume":
            def sdk_volumes() -> Any:
                return (self.api.volumes(filters=json.loads(flt)) or {}).get("Volumes")

            raw = self._list("/volumes", {"filters": flt}, sdk_volumes, key="Volumes")
            return [Observed("volume", i["Name"], i["Name"], i.get("Labels") or {}) for i in raw]
        raise ValueError(kind)

    def _list(
        self, path: str, params: Mapping[str, str], sdk: Callable[[], Any], key: str | None = None
    ) -> list[dict[str, Any]]:
        if self.raw is not None:
            result = self.raw.get(path, params)
            if key is not None:
                result = (result or {}).get(key)
            return list(result or [])
        try:
            return list(sdk() or [])
        except Exception as e:
            raise self._fail(e, f"list {path}") from e

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
        ipam = None
        if subnet or gateway:
            from docker.types import IPAMConfig, IPAMPool

            ipam = IPAMConfig(pool_configs=[IPAMPool(subnet=subnet, gateway=gateway)])
        try:
            result = self.api.create_network(
                name, driver=driver, internal=internal, ipam=ipam, labels=dict(labels),
                check_duplicate=True,
            )
        except Exception as e:
            raise self._fail(e, "create network", name) from e
        return str(result["Id"])

    def remove_network(self, name: str, *, attempts: int = 4) -> str | None:
        """Remove a network; on dockerd's stuck "active endpoints", force-disconnect and retry.
        Returns None when removed (or already gone), else the engine's last words."""
        last = ""
        for attempt in range(attempts):
            try:
                self.api.remove_network(name)
                return None
            except Exception as e:
                if type(e).__name__ == "NotFound":
                    return None
                last = api_error_text(e)
                if "active endpoints" not in last:
                    return last
            self._disconnect_all(name)
            time.sleep(0.2 * (attempt + 1))
        return last

    def _disconnect_all(self, network: str) -> None:
        try:
            info = self.api.inspect_network(network)
        except Exception:  # gone, or unreadable: the retry reports it
            return
        for endpoint_id, endpoint in (info.get("Containers") or {}).items():
            target = endpoint.get("Name") or endpoint_id
            try:
                self.api.disconnect_container_from_network(target, network, force=True)
            except Exception:  # noqa: S112 - best effort; the retry reports what is left
                continue

    def create_volume(self, name: str, *, labels: Mapping[str, str]) -> None:
        try:
            self.api.create_volume(name, labels=dict(labels))
        except Exception as e:
            raise self._fail(e, "create volume", name) from e

    def remove_volume(self, name: str) -> str | None:
        try:
            self.api.remove_volume(name, force=True)
        except Exception as e:
            if type(e).__name__ == "NotFound":
                return None
            return api_error_text(e)
        return None

    # -- containers ------------------------------------------------------------------------------
    def create_container(
        self,
        name: str,
        c: Container,
        *,
        networks: Sequence[tuple[str, Sequence[str], str | None]],
        volume_names: Mapping[str, str],
        labels: Mapping[str, str],
        use_gpu: bool,
    ) -> str:
        """Create a container from the model; connect every network before it starts.

        ``networks`` are (docker network name, aliases, ipv4 address). API 1.41 attaches one
        network at create, so the others are connected right after; API >= 1.44 takes them all.
        """
        from docker.types import DeviceRequest, Healthcheck, Mount

        api = self.api
        mounts = []
        for m in c.mounts:
            if m.type == "tmpfs":
                mounts.append(Mount(m.target, None, type="tmpfs", read_only=m.read_only,
                                    tmpfs_size=m.size))
            elif m.type == "volume":
                source = volume_names.get(m.source or "", m.source)
                mounts.append(Mount(m.target, source, type="volume", read_only=m.read_only))
            else:
                mounts.append(Mount(m.target, m.source, type="bind", read_only=m.read_only))
        port_bindings: dict[str, list[dict[str, str]]] = {}
        exposed: list[tuple[int, str]] = []
        for p in c.ports:
            key = f"{p.container}/{p.protocol}"
            exposed.append((p.container, p.protocol))
            port_bindings.setdefault(key, []).append(
                {"HostIp": p.host_ip, "HostPort": str(p.host) if p.host else ""}
            )
        restart = None
        if c.restart and c.restart != "no":
            policy, _, count = c.restart.partition(":")
            restart = {"Name": policy, "MaximumRetryCount": int(count or 0)}
        device_requests = None
        if c.gpus is not None and use_gpu:
            gpu_count = -1 if c.gpus.count == "all" else int(c.gpus.count)
            device_requests = [
                DeviceRequest(count=gpu_count, capabilities=[list(c.gpus.capabilities)])
            ]
        network_mode = c.network_mode
        if network_mode is None and networks:
            network_mode = networks[0][0]
        host_config = api.create_host_config(
            port_bindings=None,
            mounts=mounts or None,
            network_mode=network_mode,
            restart_policy=restart,
            read_only=c.read_only or None,
            privileged=c.privileged,
            init=c.init or None,
            cap_add=list(c.cap_add) or None,
            cap_drop=list(c.cap_drop) or None,
            nano_cpus=int(c.resources.cpus * 1e9) if c.resources.cpus else None,
            mem_limit=c.resources.memory,
            pids_limit=c.resources.pids,
            device_requests=device_requests,
        )
        if port_bindings:
            host_config["PortBindings"] = port_bindings
        at_create = list(networks) if self.endpoints_at_create() else list(networks[:1])
        networking_config = None
        if at_create:
            networking_config = api.create_networking_config(
                {
                    net: api.create_endpoint_config(aliases=list(aliases) or None,
                                                    ipv4_address=ip)
                    for net, aliases, ip in at_create
                }
            )
        healthcheck = None
        if c.healthcheck is not None:
            h = c.healthcheck
            healthcheck = Healthcheck(
                test=list(h.test),
                interval=_ns(h.interval),
                timeout=_ns(h.timeout),
                retries=h.retries,
                start_period=_ns(h.start_period),
            )
        try:
            created = api.create_container(
                c.image,
                command=list(c.command) if c.command is not None else None,
                entrypoint=list(c.entrypoint) if c.entrypoint is not None else None,
                environment=dict(c.env) or None,
                working_dir=c.working_dir,
                hostname=c.hostname,
                user=c.user,
                ports=exposed or None,
                labels=dict(labels),
                host_config=host_config,
                networking_config=networking_config,
                healthcheck=healthcheck,
                stop_timeout=int(c.stop_timeout) if c.stop_timeout is not None else None,
                name=name,
            )
        except Exception as e:
            raise self._fail(e, "create the container", name) from e
        cid = str(created["Id"])
        for net, aliases, ip in networks[len(at_create):]:
            try:
                api.connect_container_to_network(
                    cid, net, aliases=list(aliases) or None, ipv4_address=ip
                )
            except Exception as e:
                raise self._fail(e, f"connect it to network {net}", name) from e
        return cid

    def start_container(self, name: str) -> None:
        try:
            self.api.start(name)
        except Exception as e:
            raise self._fail(e, "start", name) from e

    def stop_container(self, name: str, timeout: float = 10.0) -> None:
        try:
            self.api.stop(name, timeout=int(timeout))
        except Exception as e:
            if type(e).__name__ != "NotFound":
                raise self._fail(e, "stop", name) from e

    def remove_container(self, name: str, *, force: bool = True) -> str | None:
        """Remove a container (and its anonymous volumes); None when gone, else the error."""
        try:
            self.api.remove_container(name, force=force, v=True)
        except Exception as e:
            text = api_error_text(e)
            if type(e).__name__ == "NotFound" or "is already in progress" in text:
                return None
            return text
        return None

    def wait_container(self, name: str, timeout: float) -> int:
        """Block until the container stops; its exit code."""
        try:
            result = self.api.wait(name, timeout=timeout)
        except Exception as e:
            if "timed out" in str(e).lower() or type(e).__name__ in ("ReadTimeout", "Timeout"):
                raise EngineError(
                    f"did not complete within {timeout:g}s", resource=name
                ) from e
            raise self._fail(e, "wait for", name) from e
        return int(result.get("StatusCode", -1))

    def logs_tail(self, name: str, lines: int = 20) -> str:
        try:
            data = self.api.logs(name, stdout=True, stderr=True, tail=lines)
        except Exception as e:
            return f"(logs unavailable: {api_error_text(e)})"
        return bytes(data).decode(errors="replace").rstrip()

    # -- images --------------------------------------------------------------------------------
    def pull_image(self, ref: str, progress: Callable[[str], None] | None = None) -> None:
        repo, tag = _split_ref(ref)
        try:
            for event in self.api.pull(repo, tag=tag, stream=True, decode=True):
                if "error" in event:
                    raise EngineError(str(event["error"]), resource=f"image {ref}")
                if progress is not None and event.get("status"):
                    progress(str(event["status"]))
        except EngineError:
            raise
        except Exception as e:
            raise self._fail(e, "pull", f"image {ref}") from e

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


def _ns(seconds: float) -> int:
    return int(seconds * 1_000_000_000)


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
