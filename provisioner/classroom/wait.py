"""Waiting for a class: every sandbox placed and running with its door published, then every
sandbox's engine answering over SSH (host key pinned, class key), all within one deadline."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

from labspec.errors import EngineError, LabupError
from provisioner.classroom.state import Door
from provisioner.engine.swarm import SwarmManager, SwarmNode, SwarmTask

Progress = Callable[[str], None]
POLL = 0.5


class ClassNotReady(EngineError):
    """Some sandboxes of a class did not become ready in time."""


class Services(NamedTuple):
    """A learner's two services, by id."""

    sandbox: str
    door: str


def current_task(tasks: Sequence[SwarmTask], service_id: str) -> SwarmTask | None:
    """The task Swarm wants running for a one-replica service (else the latest one)."""
    mine = [t for t in tasks if t.service_id == service_id]
    wanted = [t for t in mine if t.desired_state == "running"]
    chosen = wanted or mine
    return chosen[-1] if chosen else None


def door_of(learner: str, door: SwarmTask | None, nodes: Mapping[str, SwarmNode]) -> Door | None:
    """Where a running door answers: its node's address and its published SSH port."""
    if door is None or door.state != "running":
        return None
    node = nodes.get(door.node_id)
    port = next((published for target, published in door.ports if target == 22), 0)
    if node is None or not port:
        return None
    return Door(learner, node.address, port, node.hostname)


def why(task: SwarmTask | None) -> str:
    if task is None:
        return "no task yet"
    said = task.error or task.message
    return f"{task.state}: {said}" if said else task.state


STUCK = 20.0  # seconds the scheduler may say "no suitable node" before labup believes it


def wait_assigned(
    swarm: SwarmManager, sandboxes: Mapping[str, str], *, deadline: float
) -> dict[str, str]:
    """The node each learner's sandbox (service id) was placed on: learner -> node id. A
    sandbox the scheduler finds no node for (too little memory, no free GPU) fails after
    ``STUCK`` seconds: nothing changes that by itself."""
    stuck_since: float | None = None
    while True:
        tasks = swarm.tasks(list(sandboxes.values()))
        placed: dict[str, str] = {}
        late: dict[str, str] = {}
        for learner, service_id in sandboxes.items():
            task = current_task(tasks, service_id)
            if task is not None and task.node_id:
                placed[learner] = task.node_id
            else:
                late[learner] = why(task)
        if not late:
            return placed
        now = time.monotonic()
        unplaceable = all("no suitable node" in v for v in late.values())
        stuck_since = (stuck_since or now) if unplaceable else None
        if now > deadline or (stuck_since is not None and now - stuck_since > STUCK):
            raise ClassNotReady(
                f"{len(late)} of {len(sandboxes)} sandboxes found no node: "
                + "; ".join(f"{k} ({v})" for k, v in sorted(late.items())[:6]),
                hint="the nodes lack the memory, CPUs or GPUs the sandboxes reserve, or match "
                "none of the constraints; `docker node ls` and `labup class status NAME`",
            )
        time.sleep(POLL / 2)


def wait_placed(
    swarm: SwarmManager,
    services: Mapping[str, Services],
    *,
    deadline: float,
    progress: Progress,
) -> dict[str, Door]:
    """Every sandbox running and every door running with its port published: the doors."""
    doors: dict[str, Door] = {}
    last: dict[str, str] = {}
    shown = 0
    while True:
        nodes = {n.id: n for n in swarm.nodes()}
        ids = [i for s in services.values() for i in s]
        tasks = swarm.tasks(ids)
        for learner, pair in services.items():
            box = current_task(tasks, pair.sandbox)
            door = door_of(learner, current_task(tasks, pair.door), nodes)
            if box is not None and box.state == "running" and door is not None:
                doors[learner] = door
            else:
                doors.pop(learner, None)
                last[learner] = why(box) if box is None or box.state != "running" else (
                    "door: " + why(current_task(tasks, pair.door)))
        if len(doors) == len(services):
            return doors
        if len(doors) != shown:
            shown = len(doors)
            progress(f"{shown}/{len(services)} sandboxes running")
        if time.monotonic() > deadline:
            late = {k: v for k, v in last.items() if k not in doors}
            raise ClassNotReady(
                f"{len(late)} of {len(services)} sandboxes did not start: "
                + "; ".join(f"{k} ({v})" for k, v in sorted(late.items())[:6]),
                hint="`labup class status NAME` shows each sandbox; a node that cannot pull the "
                "sandbox image must trust the class registry (insecure-registries)",
            )
        time.sleep(POLL)


def _engine_answers(door: Door, key: Path, known_hosts: Path, deadline: float) -> str | None:
    """None once the sandbox's engine answers over SSH; else why not, at the deadline."""
    from provisioner.engine.connect import connect
    from provisioner.engine.ssh_keys import HostKeyError

    last = "not tried"
    while True:
        try:
            engine = connect(f"ssh://root@{door.address}:{door.port}", host_label=door.learner,
                             key=key, known_hosts=known_hosts, timeout=5.0)
            engine.close()
            return None
        except HostKeyError as e:  # never retried, never trusted on first use
            return e.message
        except LabupError as e:
            last = e.message
        if time.monotonic() > deadline:
            return last
        time.sleep(POLL)


def wait_ssh(
    doors: Sequence[Door],
    *,
    key: Path,
    known_hosts: Path,
    deadline: float,
    progress: Progress,
) -> None:
    """Every sandbox's engine answering over SSH, checked in parallel."""
    progress(f"waiting for {len(doors)} engines to answer over SSH")
    with ThreadPoolExecutor(max_workers=min(16, max(1, len(doors)))) as pool:
        results = dict(zip((d.learner for d in doors), pool.map(
            lambda d: _engine_answers(d, key, known_hosts, deadline), doors), strict=True))
    late = {k: v for k, v in results.items() if v is not None}
    if late:
        raise ClassNotReady(
            f"{len(late)} of {len(doors)} sandboxes do not answer over SSH: "
            + "; ".join(f"{k} ({v})" for k, v in sorted(late.items())[:6]),
            hint="`labup class status NAME` shows where each one runs",
        )
