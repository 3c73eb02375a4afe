"""Offline bundles: bytes sent and time for a 3-host class, only-missing vs the full bundle.

    .venv/bin/python bench/bundle_bench.py [--repeat 3] [--base python:3.11-slim]

Runs on the SSH classroom of scripts/testhosts.sh (started when it is not up): three hosts,
each with its own dockerd, reached over one SSH connection each, loading in parallel.

The bundle holds three images under bench-only tags: BASE (default python:3.11-slim, built
offline by `labup images prepare --offline`), APP (BASE plus a 1 MB layer, a lab's image) and
APP2 (BASE plus another 1 MB layer, this week's new lab image). Three classroom states:

- empty:    the hosts have none of the images (the first class);
- partial:  the hosts have BASE and APP; APP2 is new (the next class);
- complete: the hosts have everything (a rerun).

In each state the class loads the bundle two ways: ``missing`` (labup: compare image IDs,
send only what a host lacks, leave out layers it has) and ``full`` (every image of the
bundle to every host: what `docker load -i` of the bundle's images would send). Reported:
bytes sent per host and wall time for the whole class (median of --repeat runs).
Removes only the bench tags it created, on the hosts and locally.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import docker

import labspec
from labspec.model import Host
from provisioner.offline.bundle_load import LoadResult, load_bundle_into
from provisioner.offline.bundle_write import write_bundle
from provisioner.targets.runner import Done, TargetContext, run_fleet
from provisioner.targets.select import select_hosts
from provisioner.targets.target import Target

REPO = Path(__file__).resolve().parents[1]
STATE = Path("/tmp/labup-testhosts")


def classroom(count: int = 3) -> tuple[Host, ...]:
    status = subprocess.run(["bash", str(REPO / "scripts/testhosts.sh"), "status"],
                            capture_output=True, text=True, check=False)
    env = STATE / "hosts.env"
    have = 0
    if env.exists():
        for line in env.read_text().splitlines():
            if line.startswith("LABUP_TESTHOSTS_COUNT="):
                have = int(line.split("=", 1)[1])
    if status.returncode != 0 or have < count:
        subprocess.run(["bash", str(REPO / "scripts/testhosts.sh"), "up", str(count)], check=True)
    inventory = labspec.load_inventory(STATE / "inventory.yml")
    return select_hosts(inventory, ["class"])


def build_on(client: Any, base: str, tag: str, token: str) -> None:
    dockerfile = (
        f"FROM {base}\nRUN echo {token} > /bench-token && "
        f"head -c 1048576 /dev/urandom > /bench-blob\n"
    ).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
    buf.seek(0)
    client.images.build(fileobj=buf, custom_context=True, tag=tag, rm=True, forcerm=True)


def fleet_load(
    hosts: tuple[Host, ...], bundle: Path, only_missing: bool
) -> tuple[float, list[LoadResult]]:
    def action(ctx: TargetContext) -> Done[LoadResult]:
        loaded = load_bundle_into(ctx.engine.sdk_client(), bundle, host=ctx.target.name,
                                  verify=False, only_missing=only_missing)
        return Done(loaded, loaded.summary())

    t0 = time.monotonic()
    result = run_fleet(targets(hosts), action, parallel=len(hosts))
    seconds = time.monotonic() - t0
    if result.failed:
        raise SystemExit(f"load failed: {[o.message for o in result.outcomes]}")
    return seconds, [o.done.value for o in result.outcomes if o.done is not None]


def targets(hosts: tuple[Host, ...]) -> tuple[Target, ...]:
    return tuple(Target.from_host(h) for h in hosts)


def remove_tags(hosts: tuple[Host, ...], tags: list[str]) -> None:
    def action(ctx: TargetContext) -> Done[None]:
        client = ctx.engine.sdk_client()
        for tag in tags:
            with contextlib.suppress(docker.errors.ImageNotFound):
                client.images.remove(tag, force=True)
        return Done(None, "")

    run_fleet(targets(hosts), action, parallel=len(hosts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--base", default="python:3.11-slim")
    parser.add_argument("--json", type=Path, default=REPO / "bench/results/bundle_bench.json")
    args = parser.parse_args()

    local = docker.from_env(timeout=600)
    token = uuid.uuid4().hex[:8]
    base, app, app2 = (f"labup-bench/{n}:{token}" for n in ("base", "app", "app2"))
    local.images.get(args.base).tag(base)
    build_on(local, base, app, "app")
    build_on(local, base, app2, "app2")
    hosts = classroom()
    rows: list[dict[str, Any]] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            bundle = Path(tmp) / "bench.tar"
            t0 = time.monotonic()
            manifest = write_bundle(local, [], bundle, images=[base, app, app2])
            write_s = time.monotonic() - t0
            print(f"bundle: {bundle.stat().st_size / 1e6:.1f} MB, {len(manifest.images)} images,"
                  f" written and verified in {write_s:.1f}s", file=sys.stderr)

            def prepare(state: str) -> None:
                remove_tags(hosts, [base, app, app2])
                if state in ("partial", "complete"):
                    fleet_load(hosts, bundle, True)
                if state == "partial":
                    remove_tags(hosts, [app2])

            for state in ("empty", "partial", "complete"):
                times: dict[str, list[float]] = {"missing": [], "full": []}
                sent: dict[str, list[int]] = {"missing": [], "full": []}
                for _ in range(args.repeat):
                    for mode in ("missing", "full"):  # interleaved, so drift hits both alike
                        prepare(state)
                        seconds, results = fleet_load(hosts, bundle, mode == "missing")
                        times[mode].append(seconds)
                        sent[mode].append(max(r.bytes_sent for r in results))
                for mode in ("missing", "full"):
                    row: dict[str, Any] = {"state": state, "mode": mode, "hosts": len(hosts),
                           "bytes_per_host": int(statistics.median(sent[mode])),
                           "seconds": round(statistics.median(times[mode]), 2),
                           "runs": [round(t, 2) for t in times[mode]]}
                    rows.append(row)
                    print(f"{state:<9} {mode:<8} {row['bytes_per_host'] / 1e6:8.1f} MB/host"
                          f" {row['seconds']:6.2f} s  runs {row['runs']}", file=sys.stderr)
    finally:
        remove_tags(hosts, [base, app, app2])
        for tag in (app2, app, base):
            with contextlib.suppress(docker.errors.ImageNotFound):
                local.images.remove(tag, force=True)

    print("| hosts' state | labup (only missing) | full bundle | bytes saved | time ratio |")
    print("| --- | --- | --- | --- | --- |")
    for state in ("empty", "partial", "complete"):
        m = next(r for r in rows if r["state"] == state and r["mode"] == "missing")
        f = next(r for r in rows if r["state"] == state and r["mode"] == "full")
        saved = 1 - m["bytes_per_host"] / f["bytes_per_host"] if f["bytes_per_host"] else 0.0
        ratio = f["seconds"] / m["seconds"] if m["seconds"] else float("inf")
        print(f"| {state} | {m['bytes_per_host'] / 1e6:.1f} MB/host, {m['seconds']:.2f} s"
              f" | {f['bytes_per_host'] / 1e6:.1f} MB/host, {f['seconds']:.2f} s"
              f" | {saved:.0%} | {ratio:.1f}x |")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"base": args.base, "repeat": args.repeat, "rows": rows},
                                    indent=2) + "\n")


if __name__ == "__main__":
    main()
