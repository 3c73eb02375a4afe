"""The class registry: one per cluster, on the manager labup talks to, holding the sandbox image
and the labs' public images (``python:3.11-slim`` as ``library/python:3.11-slim``), so nodes and
sandboxes pull them with no registry on the internet.

Two processes of Debian's ``docker-registry`` share one volume on the manager's node:

- the **class registry** (service ``labup-registry``): read-only; on the manager's address at
  ``registry.port`` (nodes pull the sandbox image from it, so every node's engine must trust it:
  ``insecure-registries``) and on the ``labup-registry`` network (the sandboxes' doors forward
  their pulls to it; the sandboxes' engines use it as their mirror for Docker Hub names);
- the **seed registry**: writable, a plain container on the manager's engine listening on the
  manager's loopback only (``127.0.0.1:seed_port``, host network) while labup pushes, then
  removed. Nothing a sandbox can reach is ever writable, so no sandbox can change what another
  pulls.

Images come from the local engine (``docker save`` streamed to the manager's engine) or from an
offline bundle (loaded into the manager's engine); the manager's engine pushes them. An image
the registry already holds (same image id, digest confirmed by the registry) is not sent again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from labspec.errors import EngineError
from labspec.model import Container, Mount
from provisioner.classroom import names, scripts, specs
from provisioner.engine import image_transfer as images
from provisioner.engine.swarm import SwarmManager, SwarmNode
from provisioner.offline.recipes import SANDBOX_IMAGE, normalise_ref

Progress = Callable[[str], None]


class Registry(NamedTuple):
    """Where the class registry answers for the nodes."""

    address: str  # the manager's swarm address
    port: int
    node: SwarmNode

    def ref(self, image: str) -> str:
        """The name nodes pull ``image`` by (``10.0.0.5:5000/labup/sandbox:1``)."""
        return f"{self.address}:{self.port}/{registry_repo(image)}"


class SeedReport(NamedTuple):
    pushed: tuple[str, ...]
    present: tuple[str, ...]
    missing: tuple[str, ...]  # asked for, but on neither the local engine nor the bundle


def registry_repo(ref: str) -> str | None:
    """The repository a mirror serves a public name under: ``python:3.11-slim`` ->
    ``library/python:3.11-slim``; None for names of another registry (not mirrored)."""
    norm = normalise_ref(ref)
    first = norm.split("/", 1)[0]
    if "/" in norm and ("." in first or ":" in first or first == "localhost"):
        return None
    return norm if "/" in norm.split(":", 1)[0] else f"library/{norm}"


def _running(swarm: SwarmManager, service_id: str) -> bool:
    return any(t.state == "running" and t.desired_state == "running"
               for t in swarm.tasks([service_id]))


class Seeder:
    """Brings the class registry up and fills it (see the module docstring)."""

    def __init__(self, swarm: SwarmManager, *, local: Any | None, port: int, seed_port: int,
                 progress: Progress) -> None:
        self.swarm = swarm
        self.engine = swarm.engine
        self.manager = swarm.engine.sdk_client()
        self.local = local  # a docker SDK client of this machine's engine, or None
        self.port = port
        self.seed_port = seed_port
        self.progress = progress
        self.host = swarm.engine.host_label if swarm.engine.host_label != "local" else None

    # -- the sandbox image on the manager -----------------------------------------------------
    def sandbox_image(self) -> str:
        """The sandbox image's id on the manager's engine, copied from this machine if needed."""
        wanted = images.image_id(self.local, SANDBOX_IMAGE) if self.local is not None else None
        have = images.image_id(self.manager, SANDBOX_IMAGE)
        if wanted and have != wanted:
            self.progress(f"copying {SANDBOX_IMAGE} to the manager")
            images.copy_image(self.local, self.manager, SANDBOX_IMAGE, host=self.host)
            have = wanted
        if not have:
            raise EngineError(
                f"{SANDBOX_IMAGE} is neither on this machine's engine nor on the manager's",
                host=self.host,
                hint="build it: labup images prepare --offline --sandbox",
            )
        return have

    # -- the service ---------------------------------------------------------------------------
    def ensure_service(self, node: SwarmNode, *, timeout: float = 60.0) -> Registry:
        """The read-only class registry on ``node`` (the manager's), running."""
        if self.engine.inspect_volume(names.REGISTRY_VOLUME) is None:
            self.engine.create_volume(names.REGISTRY_VOLUME,
                                      labels=names.registry_labels("volume"))
        if not self.swarm.objects("network", {names.REGISTRY: "true", names.PART: "network"}):
            self.swarm.create_overlay(names.REGISTRY_NETWORK, internal=False,
                                      labels=names.registry_labels("network"))
        text = scripts.registry_config(read_only=True, addr=":5000")
        config_name = names.registry_config(text)
        configs = {o.name: o.id for o in self.swarm.objects("config", {names.REGISTRY: "true"})}
        if config_name not in configs:
            configs[config_name] = self.swarm.create_config(
                config_name, text, names.registry_labels("config"))
        body = specs.registry_body(image=SANDBOX_IMAGE,
                                   config=specs.Ref(configs[config_name], config_name),
                                   node_id=node.id, port=self.port)
        current = [s for s in self.swarm.services({names.REGISTRY: "true"})
                   if s.name == names.REGISTRY_SERVICE]
        if current and specs.labels_match(current[0].labels, body):
            service_id = current[0].id
        else:
            if current:
                self.progress("replacing the class registry (its spec changed)")
                self.swarm.remove_service(names.REGISTRY_SERVICE)
                self._wait_gone(current[0].id)
            self.progress(f"starting the class registry on {node.hostname}:{self.port}")
            service_id = self.swarm.create_service(body)
        for stale, stale_id in configs.items():
            if stale != config_name:
                self.swarm.remove_object("config", stale_id)
        deadline = time.monotonic() + timeout
        while not _running(self.swarm, service_id):
            if time.monotonic() > deadline:
                raise EngineError(f"the class registry did not start within {timeout:g} s",
                                  host=self.host, resource=names.REGISTRY_SERVICE,
                                  hint=self._task_error(service_id))
            time.sleep(0.3)
        return Registry(node.address, self.port, node)

    def _task_error(self, service_id: str) -> str:
        for task in self.swarm.tasks([service_id]):
            if task.error or task.message:
                return f"its task says: {task.error or task.message}"
        return "see `docker service ps labup-registry` on the manager"

    def _wait_gone(self, service_id: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while self.swarm.tasks([service_id]) and time.monotonic() < deadline:
            time.sleep(0.3)

    # -- seeding -------------------------------------------------------------------------------
    def seed(self, registry: Registry, refs: Sequence[str], *, bundle: Path | None = None
             ) -> SeedReport:
        """Make the registry hold ``refs`` (and the sandbox image), from the local engine or
        from ``bundle``; each image is sent and pushed once per cluster."""
        wanted = list(dict.fromkeys([SANDBOX_IMAGE, *(normalise_ref(r) for r in refs)]))
        if bundle is not None:
            from provisioner.offline.bundle_format import Bundle
            from provisioner.offline.bundle_load import load_bundle_into

            self.progress(f"loading {bundle.name} into the manager's engine")
            load_bundle_into(self.manager, bundle, host=self.host or "manager")
            with Bundle.open(bundle) as opened:
                wanted += [normalise_ref(t) for img in opened.manifest.images for t in img.tags]
            wanted = list(dict.fromkeys(wanted))
        pushed: list[str] = []
        present: list[str] = []
        missing: list[str] = []
        todo: list[tuple[str, str]] = []  # (ref, image id on the manager)
        for ref in wanted:
            repo = registry_repo(ref)
            if repo is None:
                missing.append(ref)
                continue
            image = self._on_manager(ref)
            if image is None:
                missing.append(ref)
            elif self._held(registry, ref, image):
                present.append(ref)
            else:
                todo.append((ref, image))
        if todo:
            with self._seed_registry():
                for ref, _image in todo:
                    target = f"127.0.0.1:{self.seed_port}/{registry_repo(ref)}"
                    images.tag_image(self.manager, ref, target, host=self.host)
                    self.progress(f"pushing {ref} to the class registry")
                    self._push(target)
                    pushed.append(ref)
        images.tag_image(self.manager, SANDBOX_IMAGE, registry.ref(SANDBOX_IMAGE),
                         host=self.host)
        return SeedReport(tuple(pushed), tuple(present), tuple(missing))

    def _on_manager(self, ref: str) -> str | None:
        """The image id of ``ref`` on the manager's engine, copied from this machine first when
        the local engine holds another (or the manager none)."""
        have = images.image_id(self.manager, ref)
        local = images.image_id(self.local, ref) if self.local is not None else None
        if local and local != have:
            self.progress(f"copying {ref} to the manager")
            images.copy_image(self.local, self.manager, ref, host=self.host)
            return local
        return have

    def _held(self, registry: Registry, ref: str, image: str) -> bool:
        """The registry holds ``ref`` as this very image (the manager's push record of it, and
        the registry's own digest for the name, agree)."""
        seeded = f"127.0.0.1:{self.seed_port}/{registry_repo(ref)}"
        info = images.image_info(self.manager, seeded)
        if info is None or info.get("Id") != image:
            return False
        repo = seeded.rsplit(":", 1)[0]
        digests = {d.split("@", 1)[1] for d in info.get("RepoDigests") or []
                   if d.startswith(repo + "@")}
        try:
            found = self.engine.inspect_distribution(registry.ref(ref))
        except EngineError:
            return False
        return str((found.get("Descriptor") or {}).get("digest", "")) in digests

    def _push(self, target: str, attempts: int = 20) -> None:
        for attempt in range(attempts):
            try:
                images.push_image(self.manager, target, host=self.host)
                return
            except EngineError as e:  # the seed registry may take a moment to listen
                if "connection refused" not in e.message or attempt == attempts - 1:
                    raise
                time.sleep(0.25)

    def _seed_registry(self) -> _SeedRegistry:
        return _SeedRegistry(self)


class _SeedRegistry:
    """The writable registry on the manager's loopback, for the duration of a ``with``."""

    def __init__(self, seeder: Seeder) -> None:
        self.seeder = seeder

    def __enter__(self) -> None:
        engine = self.seeder.engine
        engine.remove_container(names.SEED_CONTAINER, force=True)  # a crashed run's
        text = scripts.registry_config(read_only=False, addr=f"127.0.0.1:{self.seeder.seed_port}")
        container = Container(
            name=names.SEED_CONTAINER, image=SANDBOX_IMAGE, command=scripts.SEED_COMMAND,
            env={"LABUP_REGISTRY_CONFIG": text.decode()}, network_mode="host",
            mounts=(Mount("volume", "/var/lib/registry", "data"),), cap_drop=("ALL",),
        )
        engine.create_container(names.SEED_CONTAINER, container, networks=(),
                                volume_names={"data": names.REGISTRY_VOLUME},
                                labels=names.registry_labels("seed"), use_gpu=False)
        engine.start_container(names.SEED_CONTAINER)

    def __exit__(self, *exc: object) -> None:
        self.seeder.engine.remove_container(names.SEED_CONTAINER, force=True)
