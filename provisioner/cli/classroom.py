"""``labup class up|status|down|connect``: a virtual classroom on a Docker Swarm cluster.

Progress goes to stderr; stdout carries the table, the ssh command, or with ``--json`` one JSON
document (documented in docs/classroom.md). ``--swarm`` defaults to the swarm the class was
made on (remembered on this machine), else ``DOCKER_HOST`` or the local socket.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from labspec.errors import EXIT_FAILED, UserInputError
from provisioner.cli import options as opt
from provisioner.cli.catalog import emit_json, err, table

if TYPE_CHECKING:
    from provisioner.engine.swarm import DockerSwarm

NAME_ARG = typer.Argument(..., help="The class's name (lower-case letters, digits, '-').",
                          metavar="NAME")
SWARM = typer.Option(
    None, "--swarm",
    help="Engine URL of a swarm manager: unix://, tcp:// or ssh://user@host:port (default: the "
    "swarm the class was made on, else DOCKER_HOST or the local socket).",
)

LEARNERS = typer.Option(
    None, "--learners", "-n", metavar="N|ROSTER.CSV",
    help="How many learners (learner01..), or a CSV roster: name[,key=value...] a line.")
DOCUMENT = typer.Option(None, "--class", "-f", help="A Class document (see `labup schema class`).")
OUTPUT = typer.Option(
    None, "--output", "-o", help="Write the inventory here (default: the class's folder).")
MEMORY = typer.Option(None, "--memory", help="Memory limit per sandbox (default 2g).")
MEMORY_RESERVATION = typer.Option(
    None, "--memory-reservation", help="Memory reserved per sandbox on its node (default 256m).")
CPUS = typer.Option(None, "--cpus", min=0.01, help="CPU limit per sandbox (default: none).")
CPU_RESERVATION = typer.Option(
    None, "--cpu-reservation", min=0.01, help="CPUs reserved per sandbox on its node.")
PIDS = typer.Option(None, "--pids", min=64, help="Process limit per sandbox (default 4096).")
GPUS = typer.Option(None, "--gpus", min=0, max=16,
                    help="GPUs reserved for every sandbox (default 0; a roster's gpus=N wins).")
CONSTRAINT = typer.Option(None, "--constraint",
                          help="A Swarm placement constraint for the sandboxes (repeatable).")
LABS = typer.Option(
    None, "--lab", help="Seed the class registry with the images of these labs (default: every "
    "lab of the catalog), from this machine's engine.")
SEED_BUNDLE = typer.Option(
    None, "--bundle", help="Also seed the class registry with the images of this offline bundle.")
READY_TIMEOUT = typer.Option(300.0, "--timeout", min=5.0,
                             help="Longest wait (s) for every sandbox to be ready.")
REGISTRY = typer.Option(False, "--registry", help="Also remove the cluster's class registry "
                        "(refused while another class uses it).")
FORGET = typer.Option(
    False, "--forget", help="Also delete the class's keys and inventory on this machine.")
LEARNER_ARG = typer.Argument(..., help="The learner (their inventory host).")
INSTRUCTOR = typer.Option(False, "--instructor",
                          help="With the class key instead of the learner's own.")
LIVE = typer.Option(None, "--swarm", help="Ask the swarm where the sandbox answers now (default: "
                    "where it answered at the last class up).")


def _swarm_url(name: str, given: str | None) -> str:
    from provisioner.classroom.state import ClassState

    if given:
        return given
    state = ClassState.of(name)
    if state.exists():
        return str(state.load().get("swarm") or "")
    from provisioner.engine.connect import engine_url

    return engine_url(None)


def _connect(url: str) -> DockerSwarm:
    from provisioner.engine.connect import connect
    from provisioner.engine.swarm import DockerSwarm

    return DockerSwarm(connect(url))


def _local_client() -> Any | None:
    """This machine's engine (DOCKER_HOST or the local socket): where images come from."""
    from labspec.errors import EngineUnreachable
    from provisioner.engine.connect import connect

    try:
        return connect(None).sdk_client()
    except EngineUnreachable:
        return None


def _seed_refs(labs: list[str] | None) -> tuple[str, ...]:
    from provisioner.cli.catalog import catalog_labs, load_one
    from provisioner.offline.recipes import refs_for_labs

    loaded = [load_one(ref, None, None) for ref in labs] if labs else catalog_labs()
    return tuple(refs_for_labs(loaded))


def register(app: typer.Typer) -> None:
    """Add the ``class`` group."""
    group = typer.Typer(
        name="class", no_args_is_help=True,
        help="A virtual classroom on a Docker Swarm cluster: one sandbox (its own Docker engine "
        "and sshd) per learner, used through an inventory like physical machines.",
    )

    @group.command("up")
    def up_cmd(
        name: str = NAME_ARG,
        swarm: str | None = SWARM,
        learners: str | None = LEARNERS,
        document: Path | None = DOCUMENT,
        output: Path | None = OUTPUT,
        memory: str | None = MEMORY,
        memory_reservation: str | None = MEMORY_RESERVATION,
        cpus: float | None = CPUS,
        cpu_reservation: float | None = CPU_RESERVATION,
        pids: int | None = PIDS,
        gpus: int | None = GPUS,
        constraint: list[str] | None = CONSTRAINT,
        labs: list[str] | None = LABS,
        bundle: Path | None = SEED_BUNDLE,
        timeout: float = READY_TIMEOUT,
        keep_on_failure: bool = opt.KEEP_ON_FAILURE,
        json_out: bool = opt.JSON,
    ) -> None:
        """Make the class (or bring it to what is asked): one sandbox per learner, ready over
        SSH, and an inventory for `labup up 5 -i class.yml`, check, reset, doctor and test."""
        from labspec.class_spec import resolve_class
        from labspec.units import parse_size
        from provisioner.classroom.up import UpOptions, class_up

        def size(value: str | None, flag: str) -> int | None:
            try:
                return parse_size(value) if value is not None else None
            except ValueError as e:
                raise UserInputError(f"{flag}: {e}") from e

        overrides: dict[str, Any] = {
            "memory": size(memory, "--memory"),
            "memory_reservation": size(memory_reservation, "--memory-reservation"),
            "cpus": cpus, "cpu_reservation": cpu_reservation, "pids": pids, "gpus": gpus,
            "constraints": tuple(constraint) if constraint else None,
        }
        spec = resolve_class(name=name, document=document, learners=learners,
                             overrides=overrides)
        if bundle is not None:
            from provisioner.offline.bundle_format import Bundle

            with Bundle.open(bundle) as opened:
                opened.verify()
        refs = _seed_refs(labs)
        url = _swarm_url(name, swarm)
        result = class_up(_connect(url), UpOptions(spec, output, refs, bundle, timeout,
                                                   keep_on_failure),
                          local=_local_client(), progress=err)
        if json_out:
            emit_json({
                "class": result.name, "swarm": url, "inventory": str(result.inventory),
                "seconds": round(result.seconds, 2),
                "sandboxes": [d._asdict() for d in result.doors],
                "seeded": result.seeded._asdict(),
                "created": result.created, "kept": result.kept, "removed": result.removed,
            })
            return
        print(table([[d.learner, d.node, f"{d.address}:{d.port}"] for d in result.doors],
                    ["LEARNER", "NODE", "SSH"]))
        err(f"class {name}: {len(result.doors)} sandboxes ready in {result.seconds:.1f} s "
            f"({result.created} made, {result.kept} kept, {result.removed} removed); "
            f"inventory {result.inventory}")
        err(f"next: labup up 1 -i {result.inventory}   |   labup class connect {name} LEARNER")

    @group.command("status")
    def status_cmd(name: str = NAME_ARG, swarm: str | None = SWARM,
                   json_out: bool = opt.JSON) -> None:
        """Each sandbox of the class: node, state, address, learner. Exit 1 unless all run."""
        from provisioner.classroom.status import class_status

        rows = class_status(_connect(_swarm_url(name, swarm)), name)
        if json_out:
            emit_json({"class": name, "sandboxes": [r.as_dict() for r in rows]})
        else:
            print(table([[r.learner, r.node or "-", r.state,
                          f"{r.address}:{r.port}" if r.port else "-", r.gpus or "-",
                          r.detail] for r in rows],
                        ["LEARNER", "NODE", "STATE", "SSH", "GPUS", "DETAIL"]))
        if not rows or any(r.state != "running" or not r.port for r in rows):
            if not rows and not json_out:
                err(f"no class {name!r} on this swarm")
            raise typer.Exit(EXIT_FAILED)

    @group.command("down")
    def down_cmd(
        name: str = NAME_ARG,
        swarm: str | None = SWARM,
        registry: bool = REGISTRY,
        forget: bool = FORGET,
        json_out: bool = opt.JSON,
    ) -> None:
        """Remove the class: its services, networks, secrets, configs and volumes, by label."""
        from provisioner.classroom.state import ClassState
        from provisioner.classroom.status import class_down, classes_using_registry

        target = _connect(_swarm_url(name, swarm))
        if registry:
            others = classes_using_registry(target) - {name}
            if others:
                raise UserInputError(
                    f"the class registry serves other classes too: {', '.join(sorted(others))}",
                    hint="take those down first, or leave out --registry")
        report = class_down(target, name, registry=registry, progress=err)
        if forget and report.ok:
            ClassState.of(name).forget()
        if json_out:
            emit_json({"class": name, **report.as_dict()})
        else:
            shown = ", ".join(f"{n} {k}{'s' if n != 1 else ''}"
                              for k, n in sorted(report.removed.items())) or "nothing"
            err(f"class {name}: removed {shown}")
            for kind, what, why in report.failed:
                err(f"labup: could not remove {kind} {what}: {why}")
        if not report.ok:
            raise typer.Exit(EXIT_FAILED)

    @group.command("connect")
    def connect_cmd(
        name: str = NAME_ARG,
        learner: str = LEARNER_ARG,
        instructor: bool = INSTRUCTOR,
        swarm: str | None = LIVE,
        json_out: bool = opt.JSON,
    ) -> None:
        """Print the ssh command that opens a shell on a learner's sandbox (host key pinned)."""
        import shlex

        from provisioner.classroom.state import ClassState

        state = ClassState.of(name)
        record = state.load()
        door = (record.get("learners") or {}).get(learner)
        if swarm is not None:
            from provisioner.classroom.status import class_status

            live = {r.learner: r for r in class_status(_connect(swarm), name)}
            if learner in live and live[learner].port:
                door = {"address": live[learner].address, "port": live[learner].port}
        if not door:
            known = ", ".join(sorted(record.get("learners") or {})) or "none"
            raise UserInputError(f"no learner {learner!r} in class {name!r}",
                                 hint=f"learners: {known}")
        key = state.key if instructor else state.learner_key(learner)
        argv = ["ssh", "-i", str(key), "-o", f"UserKnownHostsFile={state.known_hosts}",
                "-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes",
                "-p", str(door["port"]), f"root@{door['address']}"]
        if json_out:
            emit_json({"class": name, "learner": learner, "argv": argv, "key": str(key)})
        else:
            print(shlex.join(argv))

    app.add_typer(group)
