"""Benchmark: `up` of a small lab on 1, 3 and 6 SSH test hosts (scripts/testhosts.sh).

Each run starts clean (the lab is removed from every host first, not timed) and times what
`labup up LAB -i inventory` does: connect over SSH (key exchange, host key check, auth), render
the spec per host, copy the bind files over SFTP, create the network, volume and containers and
wait for the healthcheck. Reported: the median wall time per host count, the ratio 6 hosts / 1
host and the time per extra host.

    .venv/bin/python bench/fleet_bench.py [--runs 5] [--hosts 1,3,6] [--json out.json]

The test hosts are dockerds and sshds on this machine: they share its cores with each other
and with the client, so the ratio measures how labup overlaps hosts (one SSH connection each,
driven in parallel) under that CPU contention; on real classroom machines each host brings its
own CPU and the ratio can only be lower. For scale, every run is repeated straight against the
hosts' unix sockets (no SSH, the same fleet runner): the ratio of that baseline is what the
engines alone cost on these shared cores.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import labspec
from labspec.model import Host
from provisioner.catalog.lab_source import LabKey, LabSource
from provisioner.engine.ssh_docker import docker_client_over_ssh
from provisioner.targets.actions import DownOptions, UpOptions, down_action, up_action
from provisioner.targets.runner import FleetResult, run_fleet
from provisioner.targets.target import Target

REPO = Path(__file__).resolve().parents[1]
STATE = Path(os.environ.get("LABUP_TESTHOSTS_DIR", "/tmp/labup-testhosts"))
IMAGE = "labup-test/busybox:latest"
NAME = "fleetbench"

SPEC = f"""\
apiVersion: labup/v1
kind: Lab
name: {NAME}
title: "Fleet benchmark for {{{{ host.vars.learner }}}}"
networks:
  net:
volumes:
  data:
containers:
  web:
    image: {IMAGE}
    command: ["sh", "-c", "trap 'exit 0' TERM INT; httpd -f -p 80 -h /site & wait"]
    env: {{LEARNER: "{{{{ host.vars.learner }}}}"}}
    ports: ["{{{{ 18000 + host.vars.port_offset }}}}:80"]
    networks: [net]
    mounts:
      - {{type: bind, source: site, target: /site, read_only: true}}
      - {{type: volume, source: data, target: /data}}
    healthcheck:
      test: ["CMD", "wget", "-q", "-O-", "http://127.0.0.1/"]
      interval: 200ms
      retries: 50
  worker:
    image: {IMAGE}
    command: ["sh", "-c", "trap 'exit 0' TERM INT; sleep 3600 & wait"]
    networks: [net]
    depends_on:
      web: {{condition: healthy}}
"""

DOCKERFILE = b"""FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN ["/bin/busybox", "mkdir", "-p", "/tmp", "/root", "/etc", "/var/www"]
CMD ["/bin/sh"]
"""


def hosts_up_before() -> int:
    env = STATE / "hosts.env"
    if not env.exists():
        return 0
    for line in env.read_text().splitlines():
        if line.startswith("LABUP_TESTHOSTS_COUNT="):
            return int(line.split("=", 1)[1])
    return 0


def ensure_hosts(count: int) -> list[Host]:
    subprocess.run(["bash", str(REPO / "scripts" / "testhosts.sh"), "up", str(count)], check=True)
    inventory = labspec.load_inventory(STATE / "inventory-good.yml")
    hosts = list(inventory.hosts)[:count]
    if len(hosts) < count:
        sys.exit(f"only {len(hosts)} test hosts are up")
    for h in hosts:
        client = docker_client_over_ssh(h.url, key=h.key, known_hosts=h.known_hosts)
        try:
            if not client.images.list(name=IMAGE):
                buf = io.BytesIO()
                with tarfile.open(fileobj=buf, mode="w") as tar:
                    info = tarfile.TarInfo("Dockerfile")
                    info.size = len(DOCKERFILE)
                    tar.addfile(info, io.BytesIO(DOCKERFILE))
                    tar.add("/bin/busybox", arcname="busybox")
                buf.seek(0)
                client.images.build(fileobj=buf, custom_context=True, tag=IMAGE, rm=True)
        finally:
            client.close()
    return hosts


def write_lab(folder: Path) -> Path:
    (folder / "site").mkdir(parents=True, exist_ok=True)
    (folder / "site" / "index.html").write_text("<h1>bench</h1>\n")
    spec = folder / "lab.yaml"
    spec.write_text(SPEC)
    return spec


def clean(hosts: list[Host]) -> None:
    result = run_fleet(targets(hosts), down_action(DownOptions(LabKey(NAME, True), volumes=True)),
                       parallel=len(hosts))
    if result.failed:
        sys.exit(f"cleanup failed: {result.as_dict()}")


class PhaseView:
    """Records when each host reached each phase: connected, files copied, up done."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.marks: dict[str, dict[str, float]] = {}

    def started(self, host: str) -> None:
        self.marks[host] = {}

    def step(self, host: str, text: str) -> None:
        now = time.perf_counter() - self.t0
        marks = self.marks.setdefault(host, {})
        if text == "connected":
            marks.setdefault("connected", now)
        elif text.startswith("lab files"):
            marks.setdefault("files", now)

    def finished(self, outcome: Any) -> None:
        self.marks.setdefault(outcome.host, {})["done"] = time.perf_counter() - self.t0

    def phases(self) -> dict[str, float]:
        """Slowest host's time to connect, connect->files copied, files->up done."""
        conn = max(m.get("connected", 0.0) for m in self.marks.values())
        files = max(m.get("files", 0.0) - m.get("connected", 0.0) for m in self.marks.values())
        up = max(m.get("done", 0.0) - m.get("files", 0.0) for m in self.marks.values())
        return {"connect": round(conn, 2), "spec+files": round(files, 2), "up": round(up, 2)}


def targets(hosts: list[Host]) -> tuple[Target, ...]:
    return tuple(Target.from_host(h) for h in hosts)


def socket_engine(target: Target) -> Any:
    """The host's engine through its unix socket on this machine: no SSH at all (baseline)."""
    from provisioner.engine.docker_engine import DockerEngine

    return DockerEngine(url=f"unix://{STATE}/{target.name}/docker.sock", host_label=target.name)


def timed_up(
    spec: Path, hosts: list[Host], *, direct: bool = False
) -> tuple[float, dict[str, float]]:
    view = PhaseView()
    t0 = time.perf_counter()
    action = up_action(UpOptions(LabSource(spec), checks=False))
    result: FleetResult = run_fleet(targets(hosts), action, parallel=len(hosts), view=view,
                                    connector=socket_engine if direct else None)
    seconds = time.perf_counter() - t0
    if result.failed:
        sys.exit(f"up failed: {json.dumps(result.as_dict(), indent=2)}")
    return seconds, view.phases()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--hosts", default="1,3,6")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    counts = [int(n) for n in args.hosts.split(",")]
    before = hosts_up_before()
    hosts = ensure_hosts(max(counts))
    figures: dict[str, Any] = {"runs": args.runs, "cores": os.cpu_count(), "median_s": {}}
    with tempfile.TemporaryDirectory() as tmp:
        spec = write_lab(Path(tmp))
        try:
            for n in counts:
                subset = hosts[:n]
                times = []
                direct = []
                phases: list[dict[str, float]] = []
                for _ in range(args.runs):
                    clean(subset)
                    seconds, phase = timed_up(spec, subset)
                    times.append(seconds)
                    phases.append(phase)
                    clean(subset)  # the same up straight to the engines' sockets, interleaved
                    direct.append(timed_up(spec, subset, direct=True)[0])
                figures.setdefault("direct_median_s", {})[str(n)] = round(
                    statistics.median(direct), 3)
                med_phase = {k: round(statistics.median(p[k] for p in phases), 2)
                             for k in phases[0]}
                figures["median_s"][str(n)] = round(statistics.median(times), 3)
                figures.setdefault("all_s", {})[str(n)] = [round(t, 3) for t in times]
                figures.setdefault("phases_s", {})[str(n)] = med_phase
                print(f"{n} host(s): median {statistics.median(times):.2f}s "
                      f"(runs: {', '.join(f'{t:.2f}' for t in times)}); slowest host's phases: "
                      + ", ".join(f"{k} {v:.2f}s" for k, v in med_phase.items())
                      + f"; same up on the unix sockets, no SSH: {statistics.median(direct):.2f}s",
                      flush=True)
        finally:
            clean(hosts)
            if 0 < before < max(counts):  # put the classroom back as it was
                subprocess.run(["bash", str(REPO / "scripts" / "testhosts.sh"), "trim",
                                str(before)], check=False)
    med = figures["median_s"]
    first, last = str(counts[0]), str(counts[-1])
    if counts[0] != counts[-1]:
        ratio = med[last] / med[first]
        per_extra = (med[last] - med[first]) / (counts[-1] - counts[0])
        figures["ratio"] = round(ratio, 2)
        dmed = figures["direct_median_s"]
        figures["direct_ratio"] = round(dmed[last] / dmed[first], 2)
        print(f"without SSH (unix sockets) the ratio is {figures['direct_ratio']:.2f}x: "
              "the rest is the engines sharing this machine's cores")
        figures["per_extra_host_s"] = round(per_extra, 3)
        print(f"ratio {last} hosts / {first} host: {ratio:.2f}x; "
              f"each extra host adds {per_extra:.2f}s")
    figures["load_average"] = [round(x, 1) for x in os.getloadavg()]
    print(f"load average at the end: {figures['load_average']}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
