"""What wakes ``labup check --watch``: the engine's events for the lab (the lab folder is
:mod:`provisioner.learner.folder_watch`).

Each source runs in a thread that blocks (in ``recv`` on the events stream, in ``read`` on an
inotify descriptor) and puts a :class:`Trigger` on a queue; the watch loop blocks on that queue.
Nothing polls while nothing happens, so an idle watch costs no CPU.

**Engine events.** One stream, filtered by the engine to containers, networks and volumes, and
here to the lab instance: a container carrying the lab's labels (``labup.lab``,
``labup.instance``) or named like one of the lab's or the learner's containers (``lab1-web``),
a network or a volume of the lab. (Docker ANDs different filter keys and puts no labels on
network and volume events, so no one server-side filter says "this lab"; a stream per key
would hold three or four connections, which over SSH are most of the API channels.)
What is noise is dropped: attach/resize/top, stats of files (``archive-path``), healthcheck
execs (their command is the container's healthcheck), the execs of labup's own checks (their
commands are recorded as the checks run them: :class:`RecordingEngine`), and the volume mounts
of labup's probe containers (labelled ``labup.kind=probe``). A learner's own exec, even right
after a check run, is a change.

"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from labspec.model import Lab
from provisioner.engine.labels import INSTANCE, LAB, resource_name
from provisioner.engine.protocol import CheckEngine, CommandResult

if TYPE_CHECKING:
    from provisioner.engine.probe_agent import ProbeAgent
    from provisioner.engine.protocol import Engine, EventStream

# what never changes a check's outcome (archive-path: a stat or a copy out of a container)
NOISE = ("attach", "resize", "top", "export", "detach", "exec_create", "exec_start",
         "archive-path")
GRACE = 0.5  # seconds after a check run during which its own events still arrive


class Trigger(NamedTuple):
    source: str  # "engine", "folder", "timer", "settle"
    what: str  # for the status line: "network connect lab5-backend", "site/index.html"


class Busy:
    """When labup's own checks run (and a moment after), their side effects are not changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0
        self._until = 0.0

    def __enter__(self) -> Busy:
        with self._lock:
            self._running += 1
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._running -= 1
            self._until = time.monotonic() + GRACE

    def now(self) -> bool:
        with self._lock:
            return self._running > 0 or time.monotonic() < self._until


class RecordingEngine:
    """The checks' engine, remembering the commands they exec (how the engine spells them in
    its events), so that the watch knows its own execs from the learner's."""

    def __init__(self, engine: CheckEngine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self._commands: dict[str, float] = {}  # command -> when it last ran

    def ran(self, command: str) -> bool:
        """Did a check exec ``command`` in the last minute?"""
        with self._lock:
            when = self._commands.get(command)
        return when is not None and time.monotonic() - when < 60.0

    @property
    def url(self) -> str:
        return self._engine.url

    @property
    def host_label(self) -> str:
        return self._engine.host_label

    @property
    def is_local(self) -> bool:
        return self._engine.is_local

    def exec(self, container: str, argv: Sequence[str], *, user: str | None = None,
             workdir: str | None = None, env: Mapping[str, str] | None = None,
             timeout: float | None = None) -> CommandResult:
        with self._lock:
            self._commands[" ".join(argv)] = time.monotonic()
        return self._engine.exec(container, argv, user=user, workdir=workdir, env=env,
                                 timeout=timeout)

    def inspect_container(self, name: str) -> dict[str, Any] | None:
        return self._engine.inspect_container(name)

    def stat_path(self, container: str, path: str) -> dict[str, Any] | None:
        return self._engine.stat_path(container, path)

    def inspect_image(self, ref: str) -> dict[str, Any] | None:
        return self._engine.inspect_image(ref)

    def inspect_volume(self, name: str) -> dict[str, Any] | None:
        return self._engine.inspect_volume(name)

    def inspect_network(self, name: str) -> dict[str, Any] | None:
        return self._engine.inspect_network(name)

    def run_probe(self, argv: Sequence[str], *, network_mode: str | None = None,
                  mounts: Sequence[Mapping[str, Any]] = (),
                  timeout: float | None = None) -> CommandResult:
        return self._engine.run_probe(argv, network_mode=network_mode, mounts=mounts,
                                      timeout=timeout)

    def probe_agent(self) -> ProbeAgent | None:
        return self._engine.probe_agent()  # its probes make no engine events

    def info(self) -> dict[str, Any]:
        return self._engine.info()

    def close(self) -> None:
        """The engine belongs to whoever made it."""


class LabEvents:
    """Which engine events are changes to one lab instance (see the module docstring)."""

    def __init__(self, lab: Lab, instance: str,
                 inspect: Callable[[str], Mapping[str, Any] | None] | None = None,
                 ours: Callable[[str], bool] = lambda command: False) -> None:
        self.key = lab.key
        self.instance = instance
        keys = [c.name for c in lab.containers] + list(lab.learner_containers)
        self.containers = {resource_name(lab.key, instance, k) for k in keys}
        self.networks = {resource_name(lab.key, instance, n.name) for n in lab.networks}
        self.volumes = {resource_name(lab.key, instance, v.name) for v in lab.volumes}
        self._inspect = inspect
        self._ours = ours
        self._healthchecks: dict[str, set[str]] = {}  # container id -> its probe commands
        self._probes: dict[str, bool] = {}  # container id -> is one of labup's probes
        self._execs: dict[str, str] = {}  # exec id -> command (from exec_create / exec_start)

    FILTERS: Mapping[str, list[str]] = {"type": ["container", "network", "volume"]}

    def change(self, event: Mapping[str, Any], *, busy: bool) -> str | None:
        """A few words on what changed, or None when the event is not a change of this lab."""
        kind = str(event.get("Type", ""))
        action = str(event.get("Action", ""))
        actor = event.get("Actor") or {}
        attrs = actor.get("Attributes") or {}
        base = action.split(":", 1)[0]
        if kind == "container":
            name = str(attrs.get("name", ""))
            ours = (attrs.get(LAB) == self.key and attrs.get(INSTANCE) == self.instance)
            if not ours and name not in self.containers:
                return None
            return self._container(action, base, name, str(actor.get("ID", "")), attrs, busy)
        if kind == "network":
            name = str(attrs.get("name", ""))
            if name not in self.networks:
                return None
            return f"network {action} {name}"
        if kind == "volume":
            name = str(actor.get("ID", ""))
            if name not in self.volumes:
                return None
            if base in ("mount", "unmount") and self._probe(str(attrs.get("container", "")),
                                                            busy):
                return None
            return f"volume {action} {name}"
        return None

    def _container(self, action: str, base: str, name: str, cid: str,
                   attrs: Mapping[str, Any], busy: bool) -> str | None:
        exec_id = str(attrs.get("execID", ""))
        if base in ("exec_create", "exec_start") and exec_id:
            self._execs[exec_id] = action.split(":", 1)[1].strip() if ":" in action else ""
        if base in NOISE:
            return None
        if base == "exec_die":
            if exec_id not in self._execs:  # it began before the stream opened: the first
                return None                 # check run saw its effect, or the timer will
            command = self._execs.pop(exec_id)
            if self._ours(command) or command in self._probe_commands(cid):
                return None
            return f"docker exec in {name}" + (f": {command}" if command else "")
        return f"{name} {action}"

    def _probe(self, cid: str, busy: bool) -> bool:
        """Is the container that mounted a volume one of labup's probes? (A throwaway probe
        may be gone already: then a mount while checks run is taken for one.)"""
        if cid not in self._probes:
            info = self._inspect(cid) if self._inspect is not None and cid else None
            if info is None:
                return busy
            labels = (info.get("Config") or {}).get("Labels") or {}
            self._probes[cid] = labels.get("labup.kind") == "probe"
        return self._probes[cid]

    def _probe_commands(self, cid: str) -> set[str]:
        """How the engine spells the container's healthcheck command in its exec events."""
        if cid not in self._healthchecks:
            found: set[str] = set()
            info = self._inspect(cid) if self._inspect is not None else None
            test = (((info or {}).get("Config") or {}).get("Healthcheck") or {}).get("Test")
            if isinstance(test, list) and len(test) > 1:
                if test[0] == "CMD-SHELL":
                    found.add(f"/bin/sh -c {' '.join(map(str, test[1:]))}")
                elif test[0] == "CMD":
                    found.add(" ".join(map(str, test[1:])))
            self._healthchecks[cid] = found
        return self._healthchecks[cid]


class EngineWatch:
    """A thread that follows the engine's events and queues the lab's changes."""

    def __init__(self, engine: Engine, filt: LabEvents, out: queue.Queue[Trigger],
                 busy: Busy) -> None:
        self.engine = engine
        self.filt = filt
        self.out = out
        self.busy = busy
        self._stop = threading.Event()
        self._stream: EventStream | None = None
        self._lock = threading.Lock()
        self.error = ""
        self.thread = threading.Thread(target=self._run, name="labup-events", daemon=True)

    def start(self) -> EngineWatch:
        self.thread.start()
        return self

    def _run(self) -> None:
        since: float | None = None
        delay = 1.0
        while not self._stop.is_set():
            opened = time.time()
            try:
                stream = self.engine.events(self.filt.FILTERS, since=since)
            except Exception as e:  # the engine went away: the periodic re-check still runs
                self.error = str(e).splitlines()[0]
                self._stop.wait(delay)
                delay = min(delay * 2, 30.0)
                continue
            with self._lock:
                self._stream = stream
            if self._stop.is_set():
                stream.close()
                return
            self.error = ""
            delay = 1.0
            since = opened
            for event in stream:
                since = float(event.get("timeNano", 0)) / 1e9 or float(event.get("time", 0))
                what = self.filt.change(event, busy=self.busy.now())
                if what is not None:
                    self.out.put(Trigger("engine", what))
                if self._stop.is_set():
                    break
            if since is not None:
                since += 1e-6  # the last event was seen: replay from just after it

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            stream = self._stream
        if stream is not None:
            stream.close()
        self.thread.join(timeout=5)
