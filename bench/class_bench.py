"""Benchmark: a virtual classroom on the test swarm (scripts/testswarm.sh: 3 nodes on this machine).

For each class size (3, 6, 12 learners by default), from nothing of the class (the class
registry already holds the images: that is a once-per-cluster cost, reported separately):

- **class up**: the wall time of `labup class up NAME --swarm URL --learners N` until it
  returns, i.e. every sandbox placed, running, and its engine answering over SSH with the
  pinned host key; the inventory written;
- **baseline**: what Swarm alone takes for the same sandboxes made by hand with the docker CLI
  (`docker service create -d` per sandbox: same image, start script, capabilities and limits,
  on its own internal network; no door, no keys, no SSH), until every task runs. The ratio
  class up / baseline is what labup adds (keys, secrets and configs, doors, SSH readiness);
- **memory per sandbox**: the working set (cgroup usage less inactive file cache) of each
  sandbox container and of each door, read on the nodes, idle and with lab 5 up;
- **lab 5 up** and **check** on the whole class through the generated inventory
  (`labup up 5 -i class.yml`, `labup check 5 -i class.yml`);
- **class down**.

    .venv/bin/python bench/class_bench.py [--sizes 3,6,12] [--json out.json]

The three nodes are dockerds in network namespaces sharing this machine's 2 cores, so every
figure here is CPU-bound on those two cores; on a real cluster each node brings its own.
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
from typing import Any

REPO = Path(__file__).resolve().parents[1]
STATE = Path(os.environ.get("LABUP_TESTSWARM_DIR", "/tmp/labup-testswarm"))
LABUP = str(Path(sys.executable).parent / "labup")


def swarm_env() -> dict[str, str]:
    subprocess.run(["bash", str(REPO / "scripts" / "testswarm.sh"), "up"], check=True)
    env = {}
    for line in (STATE / "swarm.env").read_text().splitlines():
        key, _, value = line.partition("=")
        env[key] = value
    return env


def run(argv: list[str], env: dict[str, str], *, check: bool = True) -> tuple[float, str]:
    t0 = time.monotonic()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    took = time.monotonic() - t0
    if check and done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return took, done.stdout


def working_set(node: str, container_id: str) -> int:
    """A container's memory on a test node, as `docker stats` counts it (usage - inactive)."""
    folder = Path(f"/sys/fs/cgroup/memory/labup-sw-{node}/{container_id}")
    usage = int((folder / "memory.usage_in_bytes").read_text())
    stats = dict(line.split() for line in (folder / "memory.stat").read_text().splitlines())
    return usage - int(stats.get("total_inactive_file", 0))


def class_memory(env: dict[str, str], name: str) -> dict[str, list[int]]:
    import docker

    found: dict[str, list[int]] = {"sandbox": [], "door": []}
    for sock in env["LABUP_TESTSWARM_SOCKETS"].split(","):
        node = sock.rsplit("/", 2)[-2]
        client = docker.DockerClient(base_url=sock)
        for c in client.containers.list(filters={"label": f"labup.class={name}"}):
            part = c.labels.get("labup.class.part", "")
            if part in found:
                found[part].append(working_set(node, c.id))
        client.close()
    return found


def mib(values: list[int]) -> float:
    return round(statistics.median(values) / 2**20, 1) if values else 0.0


def baseline(env: dict[str, str], n: int, tag: str) -> float:
    """The same sandboxes with the docker CLI, until every task runs (then removed)."""
    import docker

    from provisioner.classroom.scripts import SANDBOX_SCRIPT

    manager = env["LABUP_TESTSWARM_MANAGER"]
    denv = {**os.environ, "DOCKER_HOST": manager}
    image = f"{env['LABUP_TESTSWARM_MANAGER_ADDR']}:5000/labup/sandbox:1"
    folder = Path(tempfile.mkdtemp(prefix="classbench-"))
    (folder / "sandbox.sh").write_text(SANDBOX_SCRIPT)
    (folder / "keys").write_text("\n")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / "hk")],
                   check=True)
    names = [f"{tag}-{i}" for i in range(n)]
    t0 = time.monotonic()
    subprocess.run(["docker", "config", "create", f"{tag}-sh", str(folder / "sandbox.sh")],
                   env=denv, check=True, capture_output=True)
    subprocess.run(["docker", "config", "create", f"{tag}-keys", str(folder / "keys")],
                   env=denv, check=True, capture_output=True)
    subprocess.run(["docker", "secret", "create", f"{tag}-hk", str(folder / "hk")],
                   env=denv, check=True, capture_output=True)
    for name in names:
        subprocess.run(["docker", "network", "create", "-d", "overlay", "--internal", name],
                       env=denv, check=True, capture_output=True)
        subprocess.run([
            "docker", "service", "create", "-d", "--quiet", "--name", name, "--network", name,
            "--endpoint-mode", "dnsrr", "--cap-add", "ALL", "--cap-drop", "CAP_SYS_RESOURCE",
            "--sysctl", "net.ipv4.ip_forward=1", "--limit-memory", "2g", "--limit-pids", "4096",
            "--reserve-memory", "256m", "--mount", "type=volume,target=/var/lib/docker",
            "--config", f"source={tag}-sh,target=/run/labup/sandbox.sh,mode=0555",
            "--config", f"source={tag}-keys,target=/run/labup/authorized_keys",
            "--secret", f"source={tag}-hk,target=labup-host-key,mode=0400",
            "--env", "LABUP_MIRROR=nowhere:5000", "--no-resolve-image", image,
            "/usr/bin/tini", "-g", "--", "/bin/sh", "/run/labup/sandbox.sh"],
            env=denv, check=True, capture_output=True)
    client = docker.DockerClient(base_url=manager)
    while True:
        tasks = client.api.tasks(filters={"desired-state": "running"})
        running = {t["ServiceID"] for t in tasks if t["Status"]["State"] == "running"}
        ids = {s.id for s in client.services.list() if s.name in names}
        if ids and ids <= running:
            break
        time.sleep(0.2)
    took = time.monotonic() - t0
    for name in names:
        subprocess.run(["docker", "service", "rm", name], env=denv, capture_output=True)
    time.sleep(3)
    for name in names:
        for _ in range(40):
            if subprocess.run(["docker", "network", "rm", name], env=denv,
                              capture_output=True).returncode == 0:
                break
            time.sleep(0.5)
    subprocess.run(["docker", "config", "rm", f"{tag}-sh", f"{tag}-keys"], env=denv,
                   capture_output=True)
    subprocess.run(["docker", "secret", "rm", f"{tag}-hk"], env=denv, capture_output=True)
    client.close()
    return took


def one_size(env: dict[str, str], n: int) -> dict[str, Any]:
    name = f"bench{n}"
    folder = Path(tempfile.mkdtemp(prefix=f"classbench{n}-"))
    cenv = {**os.environ, "LABUP_CLASS_DIR": str(folder / "state")}
    inventory = str(folder / "class.yml")
    manager = env["LABUP_TESTSWARM_MANAGER"]
    row: dict[str, Any] = {"learners": n}
    row["baseline_s"] = round(baseline(env, n, f"cbase{n}"), 2)
    took, out = run([LABUP, "class", "up", name, "--swarm", manager, "--learners", str(n),
                     "-o", inventory, "--lab", "5", "--json"], cenv)
    doc = json.loads(out)
    row["class_up_s"] = round(took, 2)
    row["ratio"] = round(took / row["baseline_s"], 2)
    row["nodes"] = sorted({d["node"] for d in doc["sandboxes"]})
    time.sleep(5)  # let the engines settle before reading their memory
    idle = class_memory(env, name)
    row["sandbox_idle_mib"] = mib(idle["sandbox"])
    row["door_mib"] = mib(idle["door"])
    took, _ = run([LABUP, "up", "5", "-i", inventory, "--json"], cenv)
    row["lab5_up_s"] = round(took, 2)
    took, out = run([LABUP, "check", "5", "-i", inventory, "--json"], cenv, check=False)
    row["lab5_check_s"] = round(took, 2)
    hosts = json.loads(out)["hosts"]
    row["env_checks_pass"] = all(
        r["status"] == "pass" for h in hosts for r in h["result"]["results"] if r["stage"] == "env")
    row["sandbox_lab5_mib"] = mib(class_memory(env, name)["sandbox"])
    took, _ = run([LABUP, "class", "down", name, "--swarm", manager, "--forget"], cenv)
    row["class_down_s"] = round(took, 2)
    print(json.dumps(row), flush=True)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="3,6,12")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    env = swarm_env()
    # once per cluster: the class registry and its images (not part of any size's figure)
    cenv = {**os.environ, "LABUP_CLASS_DIR": tempfile.mkdtemp(prefix="classbench-warm-")}
    took, _ = run([LABUP, "class", "up", "warm", "--swarm", env["LABUP_TESTSWARM_MANAGER"],
                   "--learners", "3", "--lab", "5"], cenv)
    run([LABUP, "class", "down", "warm", "--swarm", env["LABUP_TESTSWARM_MANAGER"],
         "--forget"], cenv)
    print(json.dumps({"warm_up_s": round(took, 2)}), flush=True)
    rows = [one_size(env, int(n)) for n in args.sizes.split(",")]
    result = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "nodes": 3,
              "cores": os.cpu_count(), "warm_class_up_s": round(took, 2), "sizes": rows}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
