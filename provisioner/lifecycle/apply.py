"""Apply a plan: remove what is obsolete, then images, networks and volumes, then containers.

Containers start in ``depends_on`` order with their conditions (started / healthy / completed);
independent work runs in a bounded thread pool. Waits are cancellable (Ctrl-C, SIGTERM): the
caller sets ``cancel`` and cleans up by run id (see :mod:`provisioner.lifecycle.verbs`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from labspec.errors import EngineError, LabupError
from labspec.model import Container, Lab
from provisioner.engine import labels as L
from provisioner.engine.protocol import DEFAULT_PARALLEL, Engine
from provisioner.lifecycle.config_hash import CONFIG_JSON
from provisioner.lifecycle.identity import origin_of
from provisioner.lifecycle.images import ensure_images
from provisioner.lifecycle.planner import Desired, Plan
from provisioner.lifecycle.progress import Reporter
from provisioner.lifecycle.waits import container_error as _container_error
from provisioner.lifecycle.waits import wait_completed as _wait_completed
from provisioner.lifecycle.waits import wait_healthy as _wait_healthy


class Cancelled(LabupError):
    """The run was interrupted (Ctrl-C or SIGTERM)."""

    exit_code = 130


@dataclass
class ApplyContext:
    engine: Engine
    lab: Lab
    plan: Plan
    instance: str
    reporter: Reporter
    run_id: str
    parallel: int = DEFAULT_PARALLEL
    timeout: float = 120.0  # longest wait for one container's health or completion
    settle: float = 0.1  # a container that exited this soon after its start is reported
    cancel: threading.Event = field(default_factory=threading.Event)
    # the caller's Ctrl-C (a fleet's, shared by its hosts): seen at every point ``cancel`` is
    interrupt: threading.Event | None = None
    without_gpu: set[str] = field(default_factory=set)
    started_at: dict[str, float] = field(default_factory=dict)
    parked: list[Parked] = field(default_factory=list)
    removed_networks: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def check_cancel(self) -> None:
        if self.cancel.is_set() or (self.interrupt is not None and self.interrupt.is_set()):
            raise Cancelled("interrupted")

    def labels(self, desired: Desired) -> dict[str, str]:
        return {
            L.MANAGED: "true",
            L.LAB: self.lab.key,
            L.INSTANCE: self.instance,
            L.KIND: desired.kind,
            L.RESOURCE: desired.key,
            L.CONFIG_HASH: desired.hash,
            CONFIG_JSON: desired.config_json,
            L.RUN_ID: self.run_id,
            L.SPEC_PATH: str(self.lab.path),
            L.ORIGIN: origin_of(self.lab),
        }

    def name(self, kind: str, key: str) -> str:
        return self.plan.desired[(kind, key)].name


# -- the steps of `up`, in order ---------------------------------------------------------------
def check_gpus(ctx: ApplyContext) -> None:
    """Refuse before anything is created when a container needs a GPU the engine lacks."""
    wanting = [c for c in ctx.lab.containers if c.gpus is not None]
    if not wanting or engine_has_gpu(ctx.engine.info()):
        return
    required = [c for c in wanting if c.gpus is not None and not c.gpus.optional]
    if required:
        names = ", ".join(
            f"{ctx.name('container', c.name)} (needs {_gpu_text(c)})" for c in required
        )
        raise EngineError(
            f"the engine has no GPU (no nvidia runtime, no CDI device) but {names}",
            host=ctx.engine.host_label if ctx.engine.host_label != "local" else None,
            hint="run this lab on a host with an NVIDIA GPU and the nvidia container runtime, "
            "or mark the request `optional: true` in the spec",
        )
    for c in wanting:
        ctx.without_gpu.add(c.name)
        ctx.reporter.warn(
            f"{ctx.name('container', c.name)}: no GPU on this engine; starting it without "
            f"the optional {_gpu_text(c)}"
        )


def engine_has_gpu(info: dict[str, Any]) -> bool:
    if "nvidia" in (info.get("Runtimes") or {}):
        return True
    devices = info.get("DiscoveredDevices") or []
    return any(str(d.get("Source", "")).lower() == "cdi" for d in devices)


def _gpu_text(c: Container) -> str:
    assert c.gpus is not None
    count = "all GPUs" if c.gpus.count == "all" else f"{c.gpus.count} GPU(s)"
    return f"{count} with {','.join(c.gpus.capabilities)}"


@dataclass(frozen=True)
class Parked:
    """A container set aside (stopped, renamed) until the run succeeds, so a failed run can
    put it back as it was."""

    id: str
    name: str
    running: bool
    networks: tuple[str, ...]


def park_obsolete(ctx: ApplyContext) -> None:
    """Containers to replace or remove are stopped and renamed, so that their names and host
    ports are free; then networks to replace or remove are removed."""
    doomed = [s for s in ctx.plan.of("container") if s.action in ("remove", "replace")]
    # one at a time: stopping containers of one network in parallel can corrupt dockerd
    # 20.10's endpoint count of that network (see destroy.remove_labelled)
    for s in doomed:
        _park(ctx, s.name, s.action)
    nets = [s for s in ctx.plan.of("network") if s.action in ("remove", "replace")]
    for s in nets:
        err = ctx.engine.remove_network(s.name)
        if err:
            raise EngineError(f"could not remove the network: {err}", resource=s.name)
        ctx.removed_networks.add(s.name)
        ctx.reporter.resource("network", s.name, "removed", detail=s.action)


def _park(ctx: ApplyContext, name: str, why: str) -> None:
    t0 = time.monotonic()
    seen = next((o for o in ctx.plan.observed if o.kind == "container" and o.name == name), None)
    running = seen is not None and seen.state in ("running", "restarting", "paused")
    cid = seen.id if seen is not None else name
    if running:
        ctx.engine.kill_container(cid)
    ctx.engine.rename_container(cid, f"{name}-parked-{ctx.run_id}")
    with ctx.lock:
        ctx.parked.append(Parked(cid, name, running, seen.networks if seen else ()))
    ctx.reporter.resource("container", name, "stopped", time.monotonic() - t0,
                          f"to {why}" if why == "remove" else "to be replaced")


def drop_parked(ctx: ApplyContext) -> None:
    """The run succeeded: remove the containers it set aside."""
    work = [(p.name, partial(_drop, ctx, p)) for p in ctx.parked]
    _parallel(ctx, work)
    ctx.parked.clear()


def _drop(ctx: ApplyContext, parked: Parked) -> None:
    t0 = time.monotonic()
    err = ctx.engine.remove_container(parked.id, force=True)
    if err:
        raise EngineError(f"could not remove the container: {err}", resource=parked.name)
    ctx.reporter.resource("container", parked.name, "removed", time.monotonic() - t0)


def restore_parked(ctx: ApplyContext) -> None:
    """The run failed: put the set-aside containers back under their names, running if they
    were. One whose network the run removed cannot come back: it is removed, and said so."""
    for p in ctx.parked:
        lost = sorted(set(p.networks) & ctx.removed_networks)
        if lost:
            ctx.engine.remove_container(p.id, force=True)
            ctx.reporter.warn(f"{p.name}: not restored, its network {lost[0]} was replaced")
            continue
        try:
            ctx.engine.rename_container(p.id, p.name)
            if p.running:
                ctx.engine.start_container(p.id)
        except EngineError as e:
            ctx.reporter.warn(f"{p.name}: could not be restored ({e.message})")
            continue
        ctx.reporter.resource("container", p.name, "restored")
    ctx.parked.clear()


def pull_and_build(ctx: ApplyContext) -> None:
    ensure_images(ctx.engine, ctx.lab, list(ctx.plan.images), ctx.reporter, run_id=ctx.run_id)


def create_networks_and_volumes(ctx: ApplyContext) -> None:
    work: list[tuple[str, Callable[[], None]]] = []
    for s in ctx.plan.of("network"):
        if s.action in ("create", "replace"):
            work.append((s.name, partial(_create_network, ctx, s.key)))
    for s in ctx.plan.of("volume", "create"):
        work.append((s.name, partial(_create_volume, ctx, s.key)))
    _parallel(ctx, work)


def _create_network(ctx: ApplyContext, key: str) -> None:
    t0 = time.monotonic()
    want = ctx.plan.desired[("network", key)]
    net = next(n for n in ctx.lab.networks if n.name == key)
    labels = {**net.labels, **ctx.labels(want)}
    ctx.engine.create_network(
        want.name, driver=net.driver, internal=net.internal, subnet=net.subnet,
        gateway=net.gateway, labels=labels,
    )
    ctx.reporter.resource("network", want.name, "created", time.monotonic() - t0)


def _create_volume(ctx: ApplyContext, key: str) -> None:
    t0 = time.monotonic()
    want = ctx.plan.desired[("volume", key)]
    vol = next(v for v in ctx.lab.volumes if v.name == key)
    ctx.engine.create_volume(want.name, labels={**vol.labels, **ctx.labels(want)})
    ctx.reporter.resource("volume", want.name, "created", time.monotonic() - t0)


def start_containers(ctx: ApplyContext) -> None:
    """Create and start containers in depends_on order; wait for health and completion."""
    lab = ctx.lab
    todo = {s.key for s in ctx.plan.of("container") if s.action in ("create", "replace")}
    if not todo:
        return
    kept = {c.name for c in lab.containers} - todo
    started, healthy, completed = set(kept), set(kept), set(kept)
    jobs = {d.container for c in lab.containers for d in c.depends_on if d.condition == "completed"}
    waiting = {c.name: c for c in lab.containers if c.name in todo}
    reached = {"started": started, "healthy": healthy, "completed": completed}
    running: dict[Future[None], tuple[str, str]] = {}
    # engine calls are bounded by --parallel; waits (health, completion) poll in their own pool
    pool = ThreadPoolExecutor(max_workers=max(1, min(ctx.parallel, len(todo))),
                              thread_name_prefix="labup-up")
    waits = ThreadPoolExecutor(max_workers=max(1, len(lab.containers)),
                               thread_name_prefix="labup-wait")
    # a kept container still in its health start period (e.g. left by a killed run) is waited for
    names = {ctx.name("container", k): k for k in kept}
    for o in ctx.plan.observed:
        if o.kind == "container" and o.name in names and o.health == "starting":
            healthy.discard(names[o.name])
            running[waits.submit(_wait_healthy, ctx, lab.container(names[o.name]))] = (
                names[o.name], "healthy")
    try:
        while waiting or running:
            ctx.check_cancel()
            for key, c in list(waiting.items()):
                if all(d.container in reached[d.condition] for d in c.depends_on):
                    del waiting[key]
                    running[pool.submit(_create_and_start, ctx, c)] = (key, "started")
            if not running:
                blocked = ", ".join(sorted(waiting))
                raise EngineError(f"containers can never start (dependency failed): {blocked}")
            done, _ = wait(list(running), timeout=0.5, return_when=FIRST_COMPLETED)
            for fut in done:
                key, phase = running.pop(fut)
                fut.result()  # raises the worker's error
                reached[phase].add(key)
                if phase != "started":
                    continue
                c = lab.container(key)
                if c.healthcheck is not None and c.healthcheck.test[:1] != ("NONE",):
                    running[waits.submit(_wait_healthy, ctx, c)] = (key, "healthy")
                else:
                    healthy.add(key)
                if key in jobs:
                    running[waits.submit(_wait_completed, ctx, c)] = (key, "completed")
    except BaseException:
        ctx.cancel.set()
        pool.shutdown(wait=True, cancel_futures=True)
        waits.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    waits.shutdown(wait=True)


def _create_and_start(ctx: ApplyContext, c: Container) -> None:
    ctx.check_cancel()
    t0 = time.monotonic()
    want = ctx.plan.desired[("container", c.name)]
    nets = []
    for a in c.networks:
        aliases = [c.name, *[x for x in a.aliases if x != c.name]]
        nets.append((ctx.name("network", a.network), tuple(aliases), a.ipv4_address))
    volumes = {v.name: ctx.name("volume", v.name) for v in ctx.lab.volumes}
    if any(m.type == "bind" for m in c.mounts):  # resolved again, right before the create
        from provisioner.lifecycle.bind_guard import check_binds, resolver

        check_binds(ctx.lab, c, resolver(ctx.engine), name=want.name)
    ctx.engine.create_container(
        want.name,
        c,
        networks=nets,
        volume_names=volumes,
        labels={**c.labels, **ctx.labels(want)},
        use_gpu=c.name not in ctx.without_gpu,
    )
    ctx.check_cancel()
    try:
        ctx.engine.start_container(want.name)
    except EngineError as e:
        hint = None
        if "port is already allocated" in e.message or "address already in use" in e.message:
            ports = ", ".join(f"{p.host_ip}:{p.host}" for p in c.ports if p.host)
            hint = f"a host port ({ports}) is taken: free it, or choose another with --set"
        raise EngineError(e.message, hint=hint) from e
    ctx.started_at[c.name] = time.monotonic()
    ctx.reporter.resource("container", want.name, "started", time.monotonic() - t0)


def settle_check(ctx: ApplyContext) -> None:
    """One list call: a container of this run that exited at once (or is restarting) fails up."""
    if not ctx.started_at:
        return
    remaining = ctx.settle - (time.monotonic() - max(ctx.started_at.values()))
    if remaining > 0:
        time.sleep(remaining)
    jobs = {d.container for c in ctx.lab.containers for d in c.depends_on
            if d.condition == "completed"}
    mine = ctx.engine.list_resources("container", {**L.selector(ctx.lab.key, ctx.instance),
                                                   L.RUN_ID: ctx.run_id})
    for o in mine:
        key = o.labels.get(L.RESOURCE, "")
        if key in jobs or o.state in ("running", "paused"):
            continue
        if o.state == "exited" and o.exit_code == 0:
            ctx.reporter.warn(f"{o.name} exited at once (code 0): is its command meant to "
                              "keep running?")
            continue
        raise _container_error(ctx, o.name, f"exited at once ({o.status or o.state})")


def _parallel(ctx: ApplyContext, work: Sequence[tuple[str, Callable[[], None]]]) -> None:
    """Run independent calls in a bounded pool; the first error wins, the rest finish."""
    if not work:
        return
    ctx.check_cancel()
    if len(work) == 1:
        work[0][1]()
        return
    with ThreadPoolExecutor(max_workers=min(ctx.parallel, len(work))) as pool:
        futures = [pool.submit(fn) for _, fn in work]
        errors = [f.exception() for f in futures]
    for err in errors:
        if err is not None:
            raise err


UP_STEPS: tuple[tuple[str, Callable[[ApplyContext], None]], ...] = (
    ("check gpus", check_gpus),
    ("set aside obsolete containers", park_obsolete),
    ("images", pull_and_build),
    ("networks and volumes", create_networks_and_volumes),
    ("containers", start_containers),
    ("settle", settle_check),
    ("remove what was set aside", drop_parked),
)
