"""``labup class up``: a class on a Swarm cluster, made or brought to what its spec says.

The steps, in order: the engine must be a swarm manager; GPU requests must fit what the nodes
advertise (checked before anything is made); the class's keys exist on this machine; the class
registry runs and holds the sandbox image and the labs' images; then per learner a host-key
secret, an authorized-keys config, an internal overlay network, the sandbox and its door. A
service whose spec is unchanged (its hash label) is kept, a changed one replaced, a learner no
longer in the class removed. Then every sandbox must run and answer over SSH, and the
inventory is written. A failure removes what this run created, unless ``keep_on_failure``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from labspec.class_spec import ClassSpec
from labspec.errors import EngineError, UserInputError
from provisioner.classroom import names, specs
from provisioner.classroom.registry import Registry, Seeder, SeedReport
from provisioner.classroom.scripts import SANDBOX_SCRIPT
from provisioner.classroom.state import ClassState, Door, inventory_text, write_inventory
from provisioner.classroom.wait import Services, wait_assigned, wait_placed, wait_ssh
from provisioner.engine.swarm import ObjectKind, SwarmInfo, SwarmManager, SwarmNode, SwarmService
from provisioner.offline.recipes import SANDBOX_IMAGE

Progress = Callable[[str], None]


class UpOptions(NamedTuple):
    spec: ClassSpec
    output: Path | None = None  # the inventory to write (default: in the class's folder)
    refs: tuple[str, ...] = ()  # lab images to seed from the local engine
    bundle: Path | None = None  # or from an offline bundle
    timeout: float = 300.0  # for every sandbox to run and answer over SSH
    keep_on_failure: bool = False


class ClassUp(NamedTuple):
    name: str
    doors: tuple[Door, ...]
    inventory: Path
    seeded: SeedReport
    created: int
    kept: int
    removed: int
    seconds: float


def require_manager(info: SwarmInfo, url: str) -> None:
    if info.state != "active":
        raise UserInputError(
            f"the engine at {url} is not part of a swarm (state: {info.state})",
            hint="make one with `docker swarm init`, or pass a manager's URL with --swarm",
        )
    if not info.manager:
        raise UserInputError(
            f"the engine at {url} is a swarm worker; labup needs a manager",
            hint="pass a manager's URL with --swarm (`docker node ls` on a manager lists them)",
        )


def check_gpus(spec: ClassSpec, nodes: Sequence[SwarmNode],
               services: Sequence[SwarmService]) -> None:
    """GPU sandboxes must fit the GPUs the usable nodes advertise, less those other services
    reserve: refused before anything is made."""
    wanted = {lr.name: spec.gpus_of(lr) for lr in spec.learners if spec.gpus_of(lr)}
    if not wanted:
        return
    kind = spec.sandbox.gpu_kind
    have = {n.hostname: n.generic.get(kind, 0) for n in nodes
            if n.state == "ready" and n.availability == "active" and n.generic.get(kind)}
    held = {s.name: s.reserved[kind] for s in services
            if s.reserved.get(kind) and s.labels.get(names.CLASS) != spec.name}
    free = sum(have.values()) - sum(held.values())
    if sum(wanted.values()) > free or max(wanted.values()) > max(have.values(), default=0):
        asks = ", ".join(f"{k} x{v}" for k, v in sorted(wanted.items()))
        shown = ", ".join(f"{h} x{c}" for h, c in sorted(have.items())) or "none"
        taken = (f"; {sum(held.values())} reserved by " + ", ".join(sorted(held))) if held else ""
        raise UserInputError(
            f"the class asks for {sum(wanted.values())} GPU(s) of kind {kind} ({asks}); the "
            f"cluster's ready nodes advertise {sum(have.values())} ({shown}){taken}",
            hint="fewer GPU sandboxes, or nodes with `node-generic-resources` in daemon.json "
            f"(e.g. [\"{kind}=GPU-UUID\"])",
        )


def assign_ports(
    spec: ClassSpec, mine: Sequence[SwarmService], every: Sequence[SwarmService]
) -> dict[str, int]:
    """Each learner's SSH port: the one it had, else the next free one from ``ssh_port``."""
    cls = str(spec.name)
    used = {p for s in every if s.labels.get(names.CLASS) != cls for p in s.published}
    used |= {spec.registry_port, spec.seed_port}
    had = {s.labels.get(names.LEARNER, ""): int(s.labels.get(names.PORT, "0") or 0)
           for s in mine if s.labels.get(names.PART) == "door"}
    ports: dict[str, int] = {}
    for learner in spec.learners:
        port = had.get(learner.name, 0)
        if port and port not in used and port not in ports.values():
            ports[learner.name] = port
    candidate = spec.ssh_port
    for learner in spec.learners:
        if learner.name in ports:
            continue
        while candidate in used or candidate in ports.values():
            candidate += 1
        if candidate > 65535:
            raise UserInputError("no free port left for the sandboxes' SSH doors",
                                 hint="give a lower --ssh-port")
        ports[learner.name] = candidate
    return ports


class _Run:
    """One run's bookkeeping: what exists, what this run created (for a rollback)."""

    def __init__(self, swarm: SwarmManager, cls: str, progress: Progress) -> None:
        self.swarm = swarm
        self.cls = cls
        self.progress = progress
        self.created_services: list[str] = []  # ids, in order
        self.created_objects: list[tuple[ObjectKind, str]] = []
        self.kept = 0
        self.removed = 0
        sel = {names.CLASS: cls}
        self.objects: dict[str, dict[str, str]] = {
            kind: {o.name: o.id for o in swarm.objects(kind, sel)}
            for kind in ("network", "secret", "config")
        }
        self.services = {s.name: s for s in swarm.services(sel)}

    def object(self, kind: ObjectKind, name: str, data: bytes, part: str,
               learner: str | None = None) -> specs.Ref:
        """A secret or config by its content-hashed name, made when missing."""
        have = self.objects[kind]
        if name not in have:
            labels = names.class_labels(self.cls, part, learner)
            make = self.swarm.create_secret if kind == "secret" else self.swarm.create_config
            have[name] = make(name, data, labels)
            self.created_objects.append((kind, have[name]))
        return specs.Ref(have[name], name)

    def network(self, learner: str) -> None:
        name = names.learner_network(self.cls, learner)
        if name not in self.objects["network"]:
            labels = names.class_labels(self.cls, "network", learner)
            self.objects["network"][name] = self.swarm.create_overlay(
                name, internal=True, labels=labels)
            self.created_objects.append(("network", name))

    def service(self, body: dict[str, Any]) -> str:
        """Keep the service when its hash is the desired one; else replace or create it."""
        name = str(body["Name"])
        current = self.services.get(name)
        if current is not None and specs.labels_match(current.labels, body):
            self.kept += 1
            return current.id
        if current is not None:
            self.progress(f"replacing {name} (its spec changed)")
            self.swarm.remove_service(name)
            self.removed += 1
        service_id = self.swarm.create_service(body)
        self.created_services.append(service_id)
        return service_id

    def prune(self, learners: set[str], keep: Mapping[str, set[str]]) -> None:
        """Remove the services of learners no longer in the class, then the networks, secrets
        and configs nothing desired refers to."""
        for name, service in self.services.items():
            if service.labels.get(names.LEARNER) not in learners:
                self.progress(f"removing {name} (no longer in the class)")
                self.swarm.remove_service(service.id)
                self.removed += 1
        kinds: tuple[ObjectKind, ...] = ("secret", "config", "network")
        for kind in kinds:
            for name, ident in self.objects[kind].items():
                if name not in keep[kind] and remove_object(self.swarm, kind, ident) is None:
                    self.removed += 1

    def rollback(self) -> None:
        self.progress("removing what this run created")
        for ident in reversed(self.created_services):
            self.swarm.remove_service(ident)
        for kind, ident in reversed(self.created_objects):
            remove_object(self.swarm, kind, ident)

    @property
    def created(self) -> int:
        return len(self.created_services) + len(self.created_objects)


def remove_object(swarm: SwarmManager, kind: ObjectKind, ident: str,
                  timeout: float = 30.0) -> str | None:
    """Remove a network, secret or config; a network stays busy while the tasks of removed
    services go away, so that is retried until ``timeout``. None when gone."""
    deadline = time.monotonic() + timeout
    while True:
        said = swarm.remove_object(kind, ident)
        busy = "in use" in said if said else False
        busy = busy or ("active endpoints" in said if said else False)
        if said is None or not busy or time.monotonic() > deadline:
            return said
        time.sleep(0.5)


def class_up(
    swarm: SwarmManager,
    options: UpOptions,
    *,
    local: Any | None,
    progress: Progress,
) -> ClassUp:
    """Make the class of ``options.spec`` on ``swarm`` (see the module docstring).

    ``local`` is a docker SDK client of this machine's engine (the images' source), or None."""
    started = time.monotonic()
    spec = options.spec
    cls = str(spec.name)
    if cls in names.RESERVED_CLASS_NAMES:
        raise UserInputError(f"{cls!r} is reserved (the class registry uses it)")
    info = swarm.swarm_info()
    require_manager(info, swarm.url)
    nodes = swarm.nodes()
    manager = next((n for n in nodes if n.id == info.node_id), None)
    if manager is None:
        raise EngineError(f"the manager's own node {info.node_id} is not among the swarm's nodes")
    every = swarm.services({})
    check_gpus(spec, nodes, every)
    state = ClassState.of(cls)
    state.check_cluster(info.cluster_id)
    class_key = state.prepare()
    run = _Run(swarm, cls, progress)
    ports = assign_ports(spec, list(run.services.values()), every)

    seeder = Seeder(swarm, local=local, port=spec.registry_port, seed_port=spec.seed_port,
                    progress=progress)
    seeder.sandbox_image()
    registry = seeder.ensure_service(manager)
    seeded = seeder.seed(registry, options.refs, bundle=options.bundle)
    for ref in seeded.missing:
        progress(f"not in the class registry: {ref} (on neither this machine's engine nor the "
                 "bundle; `labup images prepare --offline` builds it)")
    try:
        doors = _make(run, spec, state, registry, ports, class_key, options, progress)
    except BaseException:
        if not options.keep_on_failure:
            run.rollback()
        raise
    state.write_known_hosts(((d.address, d.port) for d in doors.values()),
                            (n.address for n in nodes), ports)
    ordered = tuple(doors[lr.name] for lr in spec.learners)
    inventory = (options.output or state.default_inventory).resolve()
    text = inventory_text(state, swarm=swarm.url, doors=ordered,
                          learner_vars={lr.name: lr.vars for lr in spec.learners},
                          gpus={lr.name: spec.gpus_of(lr) for lr in spec.learners})
    write_inventory(inventory, text)
    state.save(swarm=swarm.url, cluster=info.cluster_id, doors=ordered, inventory=inventory)
    return ClassUp(cls, ordered, inventory, seeded, run.created, run.kept, run.removed,
                   time.monotonic() - started)


def _make(
    run: _Run,
    spec: ClassSpec,
    state: ClassState,
    registry: Registry,
    ports: Mapping[str, int],
    class_key: str,
    options: UpOptions,
    progress: Progress,
) -> dict[str, Door]:
    cls = str(spec.name)
    script_bytes = SANDBOX_SCRIPT.encode()
    script = run.object("config", names.script_config(cls, script_bytes), script_bytes, "script")
    keep: dict[str, set[str]] = {"secret": set(), "config": {script.name}, "network": set()}
    image = registry.ref(SANDBOX_IMAGE)
    plans: list[specs.SandboxPlan] = []
    sandboxes: dict[str, str] = {}
    progress(f"class {cls}: {len(spec.learners)} sandboxes, SSH on ports "
             f"{min(ports.values())}-{max(ports.values())}")
    for learner in spec.learners:
        host_private, _ = state.host_key(learner.name)
        host_key = run.object("secret", names.host_key_secret(cls, learner.name, host_private),
                              host_private, "hostkey", learner.name)
        keys_bytes = specs.authorized_keys(class_key, state.learner_public_key(learner.name))
        keys = run.object("config", names.keys_config(cls, learner.name, keys_bytes), keys_bytes,
                          "keys", learner.name)
        run.network(learner.name)
        keep["secret"].add(host_key.name)
        keep["config"].add(keys.name)
        keep["network"].add(names.learner_network(cls, learner.name))
        plan = specs.SandboxPlan(learner.name, ports[learner.name], spec.gpus_of(learner),
                                 host_key, keys)
        plans.append(plan)
        sandboxes[learner.name] = run.service(specs.sandbox_body(
            cls, plan, image=image, script=script, limits=spec.sandbox))
    deadline = time.monotonic() + options.timeout
    # each door beside its sandbox: Swarm then spreads sandboxes, not sandboxes and doors
    nodes = wait_assigned(run.swarm, sandboxes, deadline=deadline)
    services: dict[str, Services] = {}
    for plan in plans:
        door = run.service(specs.door_body(cls, plan, image=image,
                                           constraints=(f"node.id=={nodes[plan.learner]}",)))
        services[plan.learner] = Services(sandboxes[plan.learner], door)
    run.prune({lr.name for lr in spec.learners}, keep)
    doors = wait_placed(run.swarm, services, deadline=deadline, progress=progress)
    every = [n.address for n in run.swarm.nodes()]
    state.write_known_hosts(((d.address, d.port) for d in doors.values()), every, ports)
    wait_ssh(list(doors.values()), key=state.key, known_hosts=state.known_hosts,
             deadline=deadline, progress=progress)
    return doors
