"""`labup check --watch` against what a learner would do instead: `watch -n 2 labup check`.

Same engine, same lab, same run. A small lab (a busybox container with a healthcheck every
second, so the engine emits an exec event each second, and an exec task check) is brought up;
then, for each tool:

- **idle CPU**: the CPU time (user + system, the whole process tree) spent over ``--idle``
  seconds in which nothing changes;
- **reaction**: the time from a learner's change (``docker exec ... touch /tmp/done``) to the
  moment the tool shows the check passing, over ``--rounds`` changes (median).

labup's figures come from ``/proc/PID/stat`` of the one `labup check --watch --json` process
(its threads included) and its JSON lines; the loop's from ``RUSAGE_CHILDREN`` of a
``while true; do labup check ...; sleep 2; done`` shell (what ``watch -n 2`` runs).

    .venv/bin/python bench/watch_bench.py [--idle 60] [--rounds 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

LABUP = str(Path(sys.executable).parent / "labup")
TICK = os.sysconf("SC_CLK_TCK")

SPEC = """\
apiVersion: labup/v1
kind: Lab
name: {name}
title: Watch bench
containers:
  box:
    image: labup-test/busybox:latest
    command: [sh, -c, "trap 'exit 0' TERM INT; sleep 3600 & wait"]
    healthcheck: {{test: "true", interval: 1s}}
checks:
  - id: box-runs
    stage: env
    container: {{container: box}}
  - id: done
    exec: {{container: box, command: [cat, /tmp/done]}}
"""


def cpu_of(pid: int) -> float:
    """utime + stime of a process, all its threads, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def docker(*args: str) -> None:
    subprocess.run(["docker", *args], check=True, capture_output=True)


def bench_watch(spec: Path, box: str, env: dict[str, str], idle: float, rounds: int) -> dict:
    proc = subprocess.Popen([LABUP, "check", str(spec), "--watch", "--json"], env=env,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    json.loads(proc.stdout.readline())  # the first run
    time.sleep(1.0)  # past its grace period
    before = cpu_of(proc.pid)
    time.sleep(idle)
    idle_cpu = cpu_of(proc.pid) - before
    reactions = []
    for _ in range(rounds):
        docker("exec", box, "rm", "-f", "/tmp/done")
        while json.loads(proc.stdout.readline())["ok"]:
            pass
        t0 = time.monotonic()
        docker("exec", box, "touch", "/tmp/done")
        while not json.loads(proc.stdout.readline())["ok"]:
            pass
        reactions.append(time.monotonic() - t0)
    proc.send_signal(2)
    proc.communicate(timeout=20)
    return {"idle_cpu_s": round(idle_cpu, 3), "idle_cpu_percent": round(100 * idle_cpu / idle, 3),
            "reaction_median_s": round(statistics.median(reactions), 2),
            "reactions_s": [round(r, 2) for r in reactions]}


def bench_loop(spec: Path, box: str, env: dict[str, str], idle: float, rounds: int) -> dict:
    log = Path(tempfile.mkdtemp()) / "loop.log"
    loop = (f"while true; do {LABUP} check {spec} --json >/dev/null 2>&1; "
            f"echo $? >> {log}; sleep 2; done")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.Popen(["sh", "-c", loop], env=env)
    time.sleep(idle)
    proc.terminate()
    proc.wait()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    idle_cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    reactions = []
    for _ in range(rounds):
        docker("exec", box, "rm", "-f", "/tmp/done")
        log.write_text("")
        proc = subprocess.Popen(["sh", "-c", loop], env=env)
        time.sleep(0.7)  # a learner's change lands anywhere in the 2 s cycle
        t0 = time.monotonic()
        docker("exec", box, "touch", "/tmp/done")
        while "0" not in log.read_text().split():
            time.sleep(0.02)
        reactions.append(time.monotonic() - t0)
        proc.terminate()
        proc.wait()
    return {"idle_cpu_s": round(idle_cpu, 3), "idle_cpu_percent": round(100 * idle_cpu / idle, 3),
            "reaction_median_s": round(statistics.median(reactions), 2),
            "reactions_s": [round(r, 2) for r in reactions]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--idle", type=float, default=60.0)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    name = f"wbench-{uuid.uuid4().hex[:6]}"
    folder = Path(tempfile.mkdtemp()) / name
    folder.mkdir()
    spec = folder / "lab.yaml"
    spec.write_text(SPEC.format(name=name))
    env = {**os.environ, "LABUP_STATE_DIR": str(folder.parent / "state")}
    subprocess.run([LABUP, "up", str(spec), "-q"], env=env, check=True)
    for _ in range(150):  # healthy first: turning healthy is a change the watch acts on
        state = subprocess.run(["docker", "inspect", "-f", "{{.State.Health.Status}}",
                                f"{name}-box"], capture_output=True, text=True).stdout.strip()
        if state == "healthy":
            break
        time.sleep(0.2)
    try:
        watch = bench_watch(spec, f"{name}-box", env, args.idle, args.rounds)
        loop = bench_loop(spec, f"{name}-box", env, args.idle, args.rounds)
    finally:
        subprocess.run([LABUP, "down", str(spec), "-q"], env=env, check=False)
    result = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "idle_seconds": args.idle, "rounds": args.rounds,
        "labup_watch": watch, "watch_n2_labup_check": loop,
        "idle_cpu_ratio": round(watch["idle_cpu_s"] / loop["idle_cpu_s"], 4)
        if loop["idle_cpu_s"] else None,
        "reaction_ratio": round(watch["reaction_median_s"] / loop["reaction_median_s"], 2),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
