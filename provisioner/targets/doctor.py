"""``labup doctor``: is this engine (or every host of a classroom) ready for a lab?

It looks and never changes anything: the engine answers, its kind (Docker or Podman) and
version and what labup can and cannot do there, whether the lab's needs (network drivers,
swarm) are met, free disk where the engine keeps its data, the images the lab needs (present,
built from the lab folder, or pullable: asked of the registry through the engine without
pulling), GPUs (``nvidia-smi`` over SSH) and an nvidia runtime, and the host ports the lab
publishes (free, or taken by whom).
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from labspec.errors import EngineError, LabupError
from labspec.model import Lab
from provisioner.catalog.lab_source import LabSource
from provisioner.engine import labels as L
from provisioner.engine.capabilities import Capabilities, lab_needs, refusals
from provisioner.engine.gpus import GpuProbe, gpus_needed, probe_gpus
from provisioner.engine.protocol import Engine
from provisioner.targets.runner import Action, ActionFailed, Done, HostOutcome, TargetContext

if TYPE_CHECKING:
    from provisioner.engine.protocol import HostShell

Level = Literal["ok", "warn", "fail", "info"]
LOW_DISK = 2 * 1024**3  # below this much free space: a warning
MIN_API = "1.41"


@dataclass(frozen=True)
class Finding:
    item: str  # engine / disk / image X / gpu / runtime / port N
    level: Level
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {"item": self.item, "level": self.level, "detail": self.detail}


@dataclass
class DoctorReport:
    host: str
    findings: list[Finding] = field(default_factory=list)

    def add(self, item: str, level: Level, detail: str) -> None:
        self.findings.append(Finding(item, level, detail))

    @property
    def ok(self) -> bool:
        return all(f.level != "fail" for f in self.findings)

    def summary(self) -> str:
        bad = [f.item for f in self.findings if f.level == "fail"]
        warn = [f.item for f in self.findings if f.level == "warn"]
        if bad:
            return "problems: " + ", ".join(bad)
        if warn:
            return "ready, with warnings: " + ", ".join(warn)
        return "ready"

    def as_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "ok": self.ok,
            "findings": [f.as_dict() for f in self.findings],
        }


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TiB"


def diagnose(
    engine: Engine,
    lab: Lab | None = None,
    *,
    ssh: HostShell | None = None,
    instance: str = L.DEFAULT_INSTANCE,
    inventory_gpus: int | None = None,
) -> DoctorReport:
    """Everything doctor checks, on one engine. ``ssh`` is the host's SSH session, if remote."""
    report = DoctorReport(engine.host_label)
    try:
        info = engine.info()
    except LabupError as e:
        report.add("engine", "fail", f"no answer: {e.message}")
        return report
    try:
        caps: Capabilities | None = engine.capabilities()
    except LabupError:
        caps = None
    if caps is None:
        version = str(info.get("ServerVersion", "?"))
        report.add("engine", "ok", f"Docker {version} (API ?) at {engine.url}")
    else:
        report.add("engine", "ok", f"{caps.name} at {engine.url} ({caps.product})")
        _engine_features(report, caps, lab, ssh)
    _disk(report, info, ssh)
    _gpus(report, info, ssh, lab, inventory_gpus)
    _tools(report, ssh, lab)
    if ssh is not None:
        _probes(report, engine)
    if lab is not None:
        if caps is not None:
            _lab_needs(report, caps, lab)
        _images(report, engine, lab)
        _ports(report, engine, lab, instance, ssh)
    return report


def _tools(report: DoctorReport, ssh: HostShell | None, lab: Lab | None) -> None:
    """What a learner (and a lab's reference solution) types there: docker, compose, labup."""
    from provisioner.targets.host_tools import probe_tools

    tools = probe_tools(ssh)
    needs_compose = lab is not None and "docker-compose" in lab.requires
    if needs_compose and tools.compose is None:
        report.add("tools", "fail", f"{lab.key if lab else 'the lab'} needs Docker Compose: "
                   f"neither `docker compose` nor `docker-compose` answers ({tools.text()})")
    elif not tools.has("docker"):
        report.add("tools", "warn", f"{tools.text()}: learners type docker commands here")
    else:
        report.add("tools", "ok", tools.text())


def _probes(report: DoctorReport, engine: Engine) -> None:
    """How network checks probe there: labup's own probes on the host, or probe containers."""
    try:
        agent = engine.probe_agent()
    except LabupError as e:
        agent = None
        why = e.message
    else:
        why = "python3 (3.9 or later) as root is not available there"
    if agent is not None:
        hello = agent.hello
        version = ".".join(str(n) for n in hello.get("python") or [])
        report.add("probes", "ok", f"network checks probe from the host itself (python3 "
                   f"{version}, root): no probe containers")
    else:
        report.add("probes", "ok", f"network checks use probe containers ({why})")


def _engine_features(
    report: DoctorReport, caps: Capabilities, lab: Lab | None, ssh: HostShell | None
) -> None:
    """What labup can do on this engine, and what it cannot (``limit`` lines)."""
    swarm = "no swarm mode" if caps.kind == "podman" else f"swarm {caps.swarm_state or '?'}"
    at_create = ("every network attached at create" if caps.endpoints_at_create
                 else "one network attached at create, the others before start")
    report.add("features", "info", f"network drivers: {', '.join(caps.network_drivers)}; "
                                   f"{swarm}; {at_create}")
    for limit in caps.limits():
        level: Level = "info"
        if "healthcheck" in limit:
            if _has_systemd(ssh):
                continue  # Podman's timers run them
            wants = lab is not None and (any(c.healthcheck for c in lab.containers)
                                         or "docker-compose" in lab.requires)
            level = "warn" if wants else "info"
        report.add("limit", level, limit)


def _has_systemd(ssh: HostShell | None) -> bool:
    """systemd runs the engine's host (Podman's healthcheck timers need it)."""
    if ssh is None:
        return Path("/run/systemd/system").is_dir()
    try:
        return ssh.run(["test", "-d", "/run/systemd/system"], timeout=15).rc == 0
    except LabupError:
        return False


def _lab_needs(report: DoctorReport, caps: Capabilities, lab: Lab) -> None:
    needs = lab_needs(lab)
    if not needs:
        return
    reasons = refusals(caps, needs)
    for reason in reasons:
        report.add("lab needs", "fail", f"{reason}: `labup up` refuses this lab here")
    if not reasons:
        report.add("lab needs", "ok", ", ".join(n.feature for n in needs) + ": available")


def _disk(report: DoctorReport, info: dict[str, Any], ssh: HostShell | None) -> None:
    root = str(info.get("DockerRootDir") or "/var/lib/docker")
    free: int | None = None
    if ssh is not None:
        try:
            res = ssh.run(["df", "-Pk", root], timeout=15)
        except LabupError as e:
            report.add("disk", "warn", f"cannot read free space of {root}: {e.message}")
            return
        lines = res.stdout.strip().splitlines()
        if res.rc == 0 and len(lines) >= 2 and len(lines[-1].split()) >= 4:
            free = int(lines[-1].split()[3]) * 1024
        else:
            report.add("disk", "warn", f"df {root} failed: {(res.stderr or res.stdout).strip()}")
            return
    else:
        import shutil

        try:
            free = shutil.disk_usage(root if Path(root).exists() else "/").free
        except OSError as e:
            report.add("disk", "warn", f"cannot read free space of {root}: {e}")
            return
    level: Level = "warn" if free < LOW_DISK else "ok"
    report.add("disk", level, f"{_human(free)} free at {root}")


def _gpus(
    report: DoctorReport,
    info: dict[str, Any],
    ssh: HostShell | None,
    lab: Lab | None,
    inventory_gpus: int | None,
) -> None:
    need = gpus_needed(lab) if lab is not None else 0
    wants_any = lab is not None and any(c.gpus is not None for c in lab.containers)
    found: GpuProbe = (
        GpuProbe(inventory_gpus, source="inventory")
        if inventory_gpus is not None
        else probe_gpus(ssh)
    )
    if found.count >= max(need, 1):
        report.add("gpu", "ok", found.text())
    elif need:
        report.add("gpu", "fail", f"the lab needs {need} GPU(s); {found.text()}")
    else:
        report.add("gpu", "warn" if wants_any else "info", found.text())
    runtimes = sorted((info.get("Runtimes") or {}).keys())
    has_nvidia = "nvidia" in runtimes
    text = f"runtimes: {', '.join(runtimes) or 'none listed'}"
    if has_nvidia:
        report.add("runtime", "ok", text)
    elif need:
        report.add("runtime", "fail", f"no nvidia runtime ({text})")
    else:
        report.add("runtime", "warn" if wants_any or found.count else "info",
                   f"no nvidia runtime ({text})")


def _images(report: DoctorReport, engine: Engine, lab: Lab) -> None:
    seen: set[str] = set()
    for image in lab.images:
        seen.add(image.ref)
        _image(report, engine, image.ref, built=image.build is not None)
    for c in lab.containers:
        if c.image not in seen:
            seen.add(c.image)
            _image(report, engine, c.image, built=False)


def _image(report: DoctorReport, engine: Engine, ref: str, *, built: bool) -> None:
    item = f"image {ref}"
    try:
        present = engine.inspect_image(ref)
    except LabupError as e:
        report.add(item, "fail", e.message)
        return
    if present is not None:
        size = present.get("Size")
        report.add(item, "ok", "present" + (f" ({_human(size)})" if size else ""))
        return
    if built:
        report.add(item, "ok", "missing; up builds it from the lab folder")
        return
    try:
        engine.inspect_distribution(ref)
    except EngineError as e:
        report.add(
            item, "fail",
            f"missing and not pullable: {e.detail}; load it from an offline bundle "
            "(labup bundle load FILE, or labup up --bundle FILE) or build it "
            "(labup images prepare --offline)",
        )
        return
    report.add(item, "ok", "missing; pullable (up pulls it)")


def _ports(
    report: DoctorReport, engine: Engine, lab: Lab, instance: str, ssh: HostShell | None
) -> None:
    wanted = [(c.name, p, p.host) for c in lab.containers for p in c.ports if p.host is not None]
    if not wanted:
        return
    ours = {L.resource_name(lab.key, instance, c.name) for c in lab.containers}
    taken = _engine_ports(engine, ours)
    listening = _listening_remote(ssh) if ssh is not None else None
    for cname, port, number in wanted:
        item = f"port {port.host_ip}:{number}/{port.protocol}"
        owner = taken.get((number, port.protocol))
        if owner:
            report.add(item, "fail", f"published by container {owner} (for {cname})")
        elif listening is not None and port.protocol == "tcp" and number in listening:
            report.add(item, "fail", f"something on the host listens on {number} (for {cname})")
        elif listening is None and port.protocol == "tcp" and not _bindable(port.host_ip, number):
            report.add(item, "fail", f"in use on this machine (for {cname})")
        else:
            report.add(item, "ok", f"free (for {cname})")


def _engine_ports(engine: Engine, ours: set[str]) -> dict[tuple[int, str], str]:
    found: dict[tuple[int, str], str] = {}
    try:
        containers = engine.running_containers()
    except LabupError:  # doctor reports what it can; the engine line already says it answers
        return {}
    for c in containers:
        name = (c.get("Names") or ["?"])[0].lstrip("/")
        if name in ours:
            continue
        for p in c.get("Ports") or []:
            if p.get("PublicPort"):
                found[(int(p["PublicPort"]), str(p.get("Type", "tcp")))] = name
    return found


def _listening_remote(ssh: HostShell) -> set[int] | None:
    """TCP ports listening on the remote host (from /proc/net/tcp{,6}); None when unknown."""
    try:
        res = ssh.run(["cat", "/proc/net/tcp", "/proc/net/tcp6"], timeout=15)
    except LabupError:
        return None
    if res.rc not in (0, 1) or not res.stdout:
        return None
    ports: set[int] = set()
    for line in res.stdout.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 3 and fields[3] == "0A" and ":" in fields[1]:
            ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def _bindable(host_ip: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host_ip else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        try:
            s.bind((host_ip or "0.0.0.0", port))  # noqa: S104 - a bind test, closed at once
        except OSError:
            return False
    return True


def render_table(reports: Sequence[DoctorReport], *, stream: Any = None) -> None:
    """One table: host, item, level, detail (rich on a terminal, plain text otherwise)."""
    import sys

    out = stream or sys.stdout
    rows = [(r.host, f.item, f.level, f.detail) for r in reports for f in r.findings]
    if out.isatty():
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        table = Table(title="labup doctor")
        for col in ("host", "item", "result", "detail"):
            table.add_column(col)
        colors = {"ok": "green", "warn": "yellow", "fail": "red", "info": "dim"}
        for host, item, level, detail in rows:
            mark = f"[{colors[level]}]{level}[/]"
            table.add_row(escape(host), escape(item), mark, escape(detail))
        Console(file=out).print(table)
    else:
        hw = max([4, *(len(r[0]) for r in rows)])
        iw = max([4, *(len(r[1]) for r in rows)])
        print(f"{'host':<{hw}}  {'item':<{iw}}  result  detail", file=out)
        for host, item, level, detail in rows:
            print(f"{host:<{hw}}  {item:<{iw}}  {level:<6}  {detail}", file=out)
    bad = [r.host for r in reports if not r.ok]
    print(("not ready: " + ", ".join(bad)) if bad else "all ready", file=out)


@dataclass(frozen=True)
class DoctorOptions:
    source: LabSource | None = None  # also check what this lab needs


def doctor_action(opts: DoctorOptions) -> Action[DoctorReport]:
    def action(ctx: TargetContext) -> Done[DoctorReport]:
        lab = None
        if opts.source is not None:
            from provisioner.targets.prepare import render_for

            ctx.step("loading spec")
            lab = render_for(opts.source, ctx.target)
        ctx.step("diagnosing")
        instance = opts.source.instance if opts.source is not None else L.DEFAULT_INSTANCE
        report = diagnose(ctx.engine, lab, ssh=ctx.ssh, instance=instance,
                          inventory_gpus=ctx.target.gpus)
        report.host = ctx.target.name
        done = Done(report, report.summary(), report.as_dict())
        if not report.ok:  # a failure for the exit code; the report is kept
            raise ActionFailed(LabupError(report.summary()), done)
        return done

    return action


def reports_of(outcomes: Sequence[HostOutcome]) -> list[DoctorReport]:
    """One report per target; a target that could not be asked gets an engine failure line."""
    reports = []
    for o in outcomes:
        if o.done is not None and isinstance(o.done.value, DoctorReport):
            reports.append(o.done.value)
            continue
        bad = DoctorReport(o.host)
        bad.add("engine", "fail", o.message.splitlines()[0] if o.message else o.status)
        reports.append(bad)
    return reports
