"""Benchmark: the dashboard's round of checks on 3 and 6 SSH test hosts, and its CPU at rest.

For each host count, a small lab (two containers, five checks: container state, HTTP, a
reachability probe, two `exec`s) is brought up on every host (not timed). Then:

- **the CLI**: `labup check LAB -i INVENTORY`, the whole process, what an instructor would
  otherwise run again and again (median wall time of --runs);
- **one dashboard round**: `labup serve LAB -i INVENTORY --every 0` runs; each round is asked
  for (POST /api/recheck) and the worker's own time for it is read back (median of --runs),
  with the server process's CPU time per round. The CLI and the rounds alternate, so both
  see the same load;
- **at rest** (largest host count only): the server's CPU over --idle seconds with a page's
  event stream open, first with no rounds (`--every 0`), then with a round every 20 s.

    .venv/bin/python bench/dashboard_bench.py [--hosts 3,6] [--runs 5] [--idle 60] [--json F]

The hosts must be up (`bash scripts/testhosts.sh up 6`). They are dockerds and sshds on this
machine, sharing its 2 cores with the client: see bench/fleet_bench.py.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from provisioner.catalog.lab_source import LabKey, LabSource
from provisioner.targets.actions import DownOptions, UpOptions, down_action, up_action
from provisioner.targets.runner import run_fleet
from provisioner.targets.select import load_inventory
from provisioner.targets.target import Target

STATE = Path(os.environ.get("LABUP_TESTHOSTS_DIR", "/tmp/labup-testhosts"))
LABUP = Path(sys.executable).parent / "labup"
NAME = "dashbench"
LEARNERS = ["alice", "bob", "carol", "dave", "erin", "frank"]
TICK = os.sysconf("SC_CLK_TCK")

SPEC = f"""\
apiVersion: labup/v1
kind: Lab
name: {NAME}
title: Dashboard benchmark
networks:
  net:
containers:
  web:
    image: labup-test/busybox:latest
    networks: [net]
    command:
      - sh
      - -c
      - >-
        trap "exit 0" TERM INT; mkdir -p /www; echo hi > /www/index.html;
        httpd -f -p 80 -h /www & wait
  worker:
    image: labup-test/busybox:latest
    networks: [net]
    command: ["sh", "-c", "trap 'exit 0' TERM INT; sleep 3600 & wait"]
checks:
  - id: web-running
    stage: env
    container: {{container: web, state: running}}
  - id: web-answers
    stage: env
    http: {{from: worker, to: web, port: 80, status: 200}}
  - id: worker-reaches-web
    reachable: {{from: worker, to: web, port: 80}}
  - id: notes
    exec: {{container: web, command: [test, -f, /tmp/notes]}}
  - id: greeting
    exec: {{container: web, command: [cat, /tmp/greeting], stdout: "hello"}}
"""


def ensure_image(inv: Path) -> None:
    """The busybox test image on every host (a host added by `testhosts.sh up 6` has none)."""
    from fleet_bench import DOCKERFILE

    from provisioner.engine.ssh_docker import docker_client_over_ssh

    for h in load_inventory(inv).hosts:
        client = docker_client_over_ssh(h.url, key=h.key, known_hosts=h.known_hosts)
        try:
            if not client.images.list(name="labup-test/busybox:latest"):
                buf = io.BytesIO()
                with tarfile.open(fileobj=buf, mode="w") as tar:
                    info = tarfile.TarInfo("Dockerfile")
                    info.size = len(DOCKERFILE)
                    tar.addfile(info, io.BytesIO(DOCKERFILE))
                    tar.add("/bin/busybox", arcname="busybox")
                buf.seek(0)
                client.images.build(fileobj=buf, custom_context=True,
                                    tag="labup-test/busybox:latest", rm=True)
        finally:
            client.close()


def inventory(path: Path, count: int) -> Path:
    lines = ["apiVersion: labup/v1", "kind: Inventory", "defaults:",
             "  address: 127.0.0.1", "  user: root",
             f"  key: {STATE / 'client' / 'id_ed25519'}",
             f"  known_hosts: {STATE / 'client' / 'known_hosts'}", "hosts:"]
    for k in range(1, count + 1):
        lines.append(f"  h{k}: {{port: {22200 + k}, vars: {{learner: {LEARNERS[k - 1]}}}}}")
    path.write_text("\n".join(lines) + "\n")
    return path


def targets(inv: Path) -> tuple[Target, ...]:
    return tuple(Target.from_host(h) for h in load_inventory(inv).hosts)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime, every thread


class Server:
    def __init__(self, spec: Path, inv: Path, every: str) -> None:
        self.proc = subprocess.Popen(
            [str(LABUP), "serve", str(spec), "-i", str(inv), "--port", "0", "--every", every],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            match = re.match(r"dashboard: (http://\S+/)", line)
            if match:
                self.url = match.group(1)
                break
        else:
            sys.exit("labup serve printed no address")
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()
        page = urllib.request.urlopen(self.url, timeout=10).read().decode()
        self.csrf = page.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]

    def state(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.url + "api/state", timeout=10) as answer:
            doc: dict[str, Any] = json.load(answer)
            return doc

    def rounds(self) -> int:
        doc = self.state()["round"]
        return int(doc["count"]) if not doc["running"] else -1

    def wait_rounds(self, count: int, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while self.rounds() < count:
            if time.monotonic() > deadline:
                sys.exit(f"no round {count} after {timeout}s")
            time.sleep(0.05)

    def recheck(self) -> None:
        request = urllib.request.Request(
            self.url + "api/recheck", data=b"{}", method="POST",
            headers={"Content-Type": "application/json", "X-CSRF-Token": self.csrf})
        urllib.request.urlopen(request, timeout=10).read()

    def listen(self) -> None:
        """A page's event stream, read in the background until the server stops."""
        def read() -> None:
            try:
                with urllib.request.urlopen(self.url + "events", timeout=3600) as stream:
                    for _ in stream:
                        pass
            except OSError:
                pass
        threading.Thread(target=read, daemon=True).start()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(60)


def bench_hosts(spec: Path, inv: Path, runs: int) -> dict[str, Any]:
    """The CLI and a dashboard round, alternating, so both see the same machine."""
    cli, rounds, cpu = [], [], []
    server = Server(spec, inv, "0")
    try:
        server.wait_rounds(1)
        for i in range(runs):
            t0 = time.perf_counter()
            subprocess.run([str(LABUP), "check", str(spec), "-i", str(inv)],
                           capture_output=True, check=False)
            cli.append(time.perf_counter() - t0)
            before = cpu_seconds(server.proc.pid)
            server.recheck()
            server.wait_rounds(i + 2)
            cpu.append(cpu_seconds(server.proc.pid) - before)
            rounds.append(server.state()["round"]["seconds"])
    finally:
        server.stop()
    return {"cli_s": round(statistics.median(cli), 3), "cli_all_s": [round(t, 3) for t in cli],
            "round_s": round(statistics.median(rounds), 3),
            "round_all_s": [round(t, 3) for t in rounds],
            "round_cpu_s": round(statistics.median(cpu), 3),
            "ratio": round(statistics.median(rounds) / statistics.median(cli), 2)}


def bench_idle(spec: Path, inv: Path, seconds: float, every: str) -> dict[str, Any]:
    server = Server(spec, inv, every)
    try:
        server.wait_rounds(1)
        server.listen()
        time.sleep(1.0)
        start, before = time.monotonic(), cpu_seconds(server.proc.pid)
        count = server.state()["round"]["count"]
        time.sleep(seconds)
        used = cpu_seconds(server.proc.pid) - before
        spent = time.monotonic() - start
        done = server.state()["round"]["count"] - count
    finally:
        server.stop()
    return {"every": every, "seconds": round(spent, 1), "cpu_s": round(used, 3),
            "cpu_percent_of_one_core": round(100 * used / spent, 2), "rounds": done}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", default="3,6")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--idle", type=float, default=60.0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    counts = [int(n) for n in args.hosts.split(",")]
    figures: dict[str, Any] = {"runs": args.runs, "cores": os.cpu_count(), "hosts": {}}
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "lab.yaml"
        spec.write_text(SPEC)
        biggest = inventory(Path(tmp) / f"class{max(counts)}.yml", max(counts))
        ensure_image(biggest)
        every = targets(biggest)
        down = down_action(DownOptions(LabKey(NAME, True), volumes=True))
        try:
            up = run_fleet(every, up_action(UpOptions(LabSource(spec), checks=False)),
                           parallel=len(every))
            if up.failed:
                sys.exit(f"up failed: {json.dumps(up.as_dict(), indent=2)}")
            for n in counts:
                inv = inventory(Path(tmp) / f"class{n}.yml", n)
                figures["hosts"][str(n)] = found = bench_hosts(spec, inv, args.runs)
                print(f"{n} hosts: dashboard round {found['round_s']:.2f}s "
                      f"(CPU {found['round_cpu_s']:.2f}s) vs `labup check -i` "
                      f"{found['cli_s']:.2f}s: ratio {found['ratio']:.2f}", flush=True)
            for every_s in ("0", "20s"):
                idle = bench_idle(spec, biggest, args.idle, every_s)
                figures.setdefault("idle", []).append(idle)
                print(f"{max(counts)} hosts, --every {every_s}, a page open: "
                      f"{idle['cpu_s']:.2f} CPU-s in {idle['seconds']:.0f}s "
                      f"({idle['cpu_percent_of_one_core']:.2f}% of one core, "
                      f"{idle['rounds']} round(s))", flush=True)
        finally:
            run_fleet(every, down, parallel=len(every))
    figures["load_average"] = [round(x, 1) for x in os.getloadavg()]
    print(f"load average at the end: {figures['load_average']}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
