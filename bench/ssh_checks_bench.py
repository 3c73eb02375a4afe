#!/usr/bin/env python3
"""A lab's checks here and over SSH, and on a class of 1, 3 and 6 hosts: whole-process times.

Lab 5 (networking: 9 checks, 6 of them probes from inside containers or from the host) is
brought up and solved on the local engine and on the test classroom's h1..h6 (their images
loaded from a bundle first when missing); then, in interleaved rounds, ``labup check 5`` runs
locally, with ``--host ssh://`` on h1, and with ``-i`` on 1, 3 and 6 hosts. Medians of the
rounds; every check passes in every run (a failing check would time its retries, not the
checks). Two figures per case: the whole process (start, connect, checks, report), and the
checks phase alone (the run's ``duration`` from ``--json``: the slowest host's in a class).

    python bench/ssh_checks_bench.py [--rounds 5] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LABUP = str(Path(sys.executable).with_name("labup"))
STATE = Path(os.environ.get("LABUP_TESTHOSTS_DIR", "/tmp/labup-testhosts"))
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
ENV.update(LABUP_SSH_KEY=str(STATE / "client/id_ed25519"),
           LABUP_KNOWN_HOSTS=str(STATE / "client/known_hosts"))


def labup(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([LABUP, *args], capture_output=True, text=True, env=ENV,
                          stdin=subprocess.DEVNULL, check=False)
    if check and done.returncode != 0:
        sys.exit(f"labup {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done


def inventory(n: int, folder: Path) -> Path:
    path = folder / f"class{n}.yml"
    lines = ["apiVersion: labup/v1", "kind: Inventory", "parallelism: 10", "defaults:",
             "  address: 127.0.0.1", "  user: root", f"  key: {STATE}/client/id_ed25519",
             f"  known_hosts: {STATE}/client/known_hosts", "hosts:"]
    lines += [f"  h{k}: {{port: {22200 + k}, vars: {{labup_dir: {STATE}/h{k}/labup, "
              f"labup_state_dir: {STATE}/h{k}/state}}}}" for k in range(1, n + 1)]
    path.write_text("\n".join(lines) + "\n")
    return path


def solve_everywhere(six: Path) -> None:
    """Lab 5 up and solved (its solution steps, by ``labup solve``) here and on h1..h6."""
    labup("up", "5", "-q")
    labup("solve", "5")
    labup("up", "5", "-i", str(six))
    labup("solve", "5", "-i", str(six))


def timed(*args: str) -> tuple[float, float]:
    """(whole process, checks phase) of ``labup ARGS --json``."""
    t0 = time.perf_counter()
    done = labup(*args, "--json", check=False)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        sys.exit(f"not every check passes: labup {' '.join(args)}\n{done.stdout[-2000:]}")
    doc = json.loads(done.stdout)
    runs = [h["result"] for h in doc["hosts"]] if "hosts" in doc else [doc]
    return seconds, max(float(r["duration"]) for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    subprocess.run(["bash", str(REPO / "scripts/testhosts.sh"), "up", "6"], check=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        invs = {n: inventory(n, folder) for n in (1, 3, 6)}
        if not Path(folder / "course.tar").exists():
            labup("bundle", "5", "-o", str(folder / "course.tar"))
            labup("bundle", "load", str(folder / "course.tar"), "-i", str(invs[6]))
        solve_everywhere(invs[6])
        cases = {
            "local": ("check", "5"),
            "ssh h1 (--host)": ("check", "5", "--host", "ssh://root@127.0.0.1:22201"),
            "1 host (-i)": ("check", "5", "-i", str(invs[1])),
            "3 hosts (-i)": ("check", "5", "-i", str(invs[3])),
            "6 hosts (-i)": ("check", "5", "-i", str(invs[6])),
        }
        times: dict[str, list[float]] = {name: [] for name in cases}
        phase: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.rounds):
            for name, argv in cases.items():
                whole, checks = timed(*argv)
                times[name].append(whole)
                phase[name].append(checks)
        labup("down", "5", "-q")
        labup("down", "5", "-i", str(invs[6]))
    medians = {name: statistics.median(v) for name, v in times.items()}
    checks = {name: statistics.median(v) for name, v in phase.items()}
    print(f"{'case':<18} {'median':>8} {'min':>7} {'max':>7}  ratio  checks phase  ratio")
    for name, values in times.items():
        base = "1 host (-i)" if "hosts" in name else "local"
        print(f"{name:<18} {medians[name]:7.2f}s {min(values):6.2f}s {max(values):6.2f}s "
              f" {medians[name] / medians[base]:.2f}  {checks[name]:11.3f}s  "
              f"{checks[name] / checks[base]:.2f}")
    if args.json:
        args.json.write_text(json.dumps({"rounds": times, "medians": medians,
                                         "checks_phase_rounds": phase,
                                         "checks_phase_medians": checks}, indent=2) + "\n")


if __name__ == "__main__":
    main()
