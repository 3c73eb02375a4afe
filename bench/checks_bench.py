"""Benchmark: 40 mixed checks on a running lab.

Brings a 5-container lab up with labup, then measures on the same engine, in the same run:
- each check alone (``labup check --only ID``-style, probe sidecars cold each time): the
  slowest single check and the sum of all of them;
- the 40 checks one by one in a single run (``parallel=1``);
- the 40 checks in parallel (``parallel=8``, the default of ``run_checks``, and 16, the
  default of ``labup check``).
Reports total-parallel / slowest-single (target < 1.5x) and one-by-one / parallel.

    .venv/bin/python bench/checks_bench.py [--repeat 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import labspec
from provisioner.checks import run_checks
from provisioner.engine.connect import connect
from provisioner.engine.probe import close_sidecars
from provisioner.engine.probe_image import ensure_probe_image
from provisioner.lifecycle.progress import QuietReporter
from provisioner.lifecycle.verbs import down, up

IDLE = "trap 'exit 0' TERM INT; sleep 3600 & wait"
SERVE = (
    "trap 'exit 0' TERM INT; mkdir -p /w; echo {body} > /w/index.html; "
    "httpd -f -p {port} -h /w & wait"
)

SPEC = """\
apiVersion: labup/v1
kind: Lab
name: {name}
title: checks benchmark
params:
  web_port: {{type: integer, default: 80}}
networks:
  front: {{}}
  back: {{}}
volumes:
  data: {{}}
containers:
  web:
    image: {image}
    command: [sh, -c, "{web}"]
    ports: ["{{{{ web_port }}}}"]
    networks: [front]
  api:
    image: {image}
    command: [sh, -c, "{api}"]
    ports: ["8000"]
    networks: [front, back]
  client:
    image: {image}
    command: [sh, -c, "{idle}"]
    networks: [front]
  db:
    image: {image}
    command: [sh, -c, "{db}"]
    networks: [back]
  worker:
    image: {image}
    command: [sh, -c, "{idle}"]
    user: "0"
    networks: [back]
    mounts: [{{type: volume, source: data, target: /data}}]
checks:
{checks}
"""

CHECKS = [
    # container (8)
    *[
        f"{{id: up-{c}, container: {{container: {c}}}}}"
        for c in ("web", "api", "client", "db", "worker")
    ],
    "{id: web-steady, container: {container: web, max_restarts: 0}}",
    "{id: api-steady, container: {container: api, max_restarts: 0}}",
    "{id: worker-user, container: {container: worker, user: '0'}}",
    # http from the host (6)
    "{id: web-index, http: {to: web, port: '{{ web_port }}', path: /index.html, body_regex: web}}",
    "{id: web-404, http: {to: web, port: '{{ web_port }}', path: /nope, status: 404}}",
    "{id: web-type, http: {to: web, port: '{{ web_port }}', path: /index.html,"
    " headers: {Content-Type: html}}}",
    "{id: api-index, http: {to: api, port: 8000, path: /index.html, body_regex: api}}",
    "{id: api-404, http: {to: api, port: 8000, path: /missing, status: [404]}}",
    "{id: web-head, http: {to: web, port: '{{ web_port }}', path: /index.html, method: HEAD}}",
    # http from a container (4)
    "{id: client-web, http: {from: client, to: web, port: '{{ web_port }}',"
    " path: /index.html, body: web}}",
    "{id: client-api, http: {from: client, to: api, port: 8000, path: /index.html}}",
    "{id: api-db, http: {from: api, to: db, port: 5432, path: /index.html, body_regex: db}}",
    "{id: worker-db, http: {from: worker, to: db, port: 5432, path: /index.html}}",
    # tcp from the host (4)
    "{id: web-open, tcp: {to: web, port: '{{ web_port }}'}}",
    "{id: api-open, tcp: {to: api, port: 8000}}",
    "{id: db-closed, tcp: {to: db, port: 5432, open: false}}",
    "{id: client-closed, tcp: {to: client, port: 22, open: false}}",
    # tcp from a container (3)
    "{id: api-db-tcp, tcp: {from: api, to: db, port: 5432}}",
    "{id: client-web-tcp, tcp: {from: client, to: web, port: '{{ web_port }}'}}",
    "{id: client-web-81, tcp: {from: client, to: web, port: 81, open: false}}",
    # reachable (5)
    "{id: client-reaches-web, reachable: {from: client, to: web, port: '{{ web_port }}'}}",
    "{id: api-reaches-db, reachable: {from: api, to: db, port: 5432}}",
    "{id: worker-reaches-db, reachable: {from: worker, to: db}}",
    "{id: client-not-db, reachable: {from: client, to: db, port: 5432, reachable: false}}",
    "{id: web-not-worker, reachable: {from: web, to: worker, reachable: false}}",
    # exec (5)
    "{id: web-cat, exec: {container: web, command: [cat, /w/index.html], stdout: web}}",
    "{id: api-env, exec: {container: api, command: [sh, -c, 'echo $X'], env: {X: '1'},"
    " stdout: '1'}}",
    "{id: db-ls, exec: {container: db, command: [ls, /w], stdout_regex: index}}",
    "{id: client-id, exec: {container: client, command: [id, -u], stdout: '0'}}",
    "{id: worker-df, exec: {container: worker, command: [df, /data], exit_code: 0}}",
    # file (3), volume (1), image (1)
    "{id: web-file, file: {container: web, path: /w/index.html, content_regex: web, type: file}}",
    "{id: api-no-secret, file: {container: api, path: /root/.ssh/id_rsa, exists: false}}",
    "{id: data-root, file: {volume: data, path: /, type: directory}}",
    "{id: data-persists, volume: {volume: data, container: worker, path: /data}}",
    "{id: image-small, image: {image: '{image}', max_size: 10MB, max_layers: 10}}",
]


def spec_text(name: str, image: str) -> str:
    checks = "\n".join("  - " + c.replace("{image}", image) for c in CHECKS)
    return SPEC.format(
        name=name,
        image=image,
        idle=IDLE,
        web=SERVE.format(body="web", port="{{ web_port }}"),
        api=SERVE.format(body="api", port=8000),
        db=SERVE.format(body="db", port=5432),
        checks=checks,
    )


def timed(engine: Any, lab: Any, **kw: Any) -> tuple[float, Any]:
    close_sidecars(engine.sdk_client())
    t0 = time.monotonic()
    run = run_checks(engine, lab, **kw)
    return time.monotonic() - t0, run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--parallel", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    assert len(CHECKS) == 40, len(CHECKS)

    engine = connect(None)
    image = ensure_probe_image(engine.sdk_client())  # a busybox image that exists offline
    name = f"ckbench-{uuid.uuid4().hex[:6]}"
    folder = Path(tempfile.mkdtemp(prefix="labup-checks-bench-"))
    (folder / "lab.yaml").write_text(spec_text(name, image))
    lab = labspec.load_lab(folder / "lab.yaml")
    reporter = QuietReporter()
    up(engine, lab, reporter=reporter, checks=False)
    try:
        _, warm = timed(engine, lab, parallel=max(args.parallel))  # warm-up (image, DNS)
        bad = [f"{r.id}: {r.message}" for r in warm.results if r.status != "pass"]
        if bad:
            print("checks that do not pass:\n  " + "\n  ".join(bad), file=sys.stderr)
            return 1
        singles: dict[str, list[float]] = {}
        for check in lab.checks:
            singles[check.id] = [
                timed(engine, lab, only=(check.id,))[0] for _ in range(args.repeat)
            ]
        serial = [timed(engine, lab, parallel=1)[0] for _ in range(args.repeat)]
        parallels = {
            n: [timed(engine, lab, parallel=n)[0] for _ in range(args.repeat)]
            for n in args.parallel
        }
    finally:
        close_sidecars(engine.sdk_client())
        down(engine, lab.key, volumes=True, reporter=reporter)
        engine.close()

    # The engine is shared with whatever else runs on the machine: report the best of the
    # repeats (the least disturbed) and the median, and compute ratios from both.
    stats: dict[str, Any] = {}
    for label, pick in (("best", min), ("median", statistics.median)):
        single = {k: pick(v) for k, v in singles.items()}
        slowest_id = max(single, key=lambda k: single[k])
        slowest, ser, total = single[slowest_id], pick(serial), sum(single.values())
        entry: dict[str, Any] = {
            "one_by_one_run_s": round(ser, 3),
            "sum_of_singles_s": round(total, 3),
            "slowest_single_s": round(slowest, 3),
            "slowest_single_id": slowest_id,
        }
        for n, samples in parallels.items():
            par = pick(samples)
            entry[f"parallel_{n}"] = {
                "seconds": round(par, 3),
                "ratio_to_slowest_single": round(par / slowest, 2),
                "speedup_vs_one_by_one": round(ser / par, 2),
                "speedup_vs_sum_of_singles": round(total / par, 2),
            }
        stats[label] = entry
    result = {
        "checks": len(lab.checks),
        "repeat": args.repeat,
        "cpus": os.cpu_count(),
        "load_average": [round(x, 1) for x in os.getloadavg()],
        **stats,
    }
    best, median = stats["best"], stats["median"]
    print(f"| measure | best of {args.repeat} | median |\n| --- | --- | --- |")
    for n in parallels:
        b, m = best[f"parallel_{n}"], median[f"parallel_{n}"]
        print(f"| 40 checks, parallel={n} | {b['seconds']:.2f} s | {m['seconds']:.2f} s |")
    for key, text in (
        ("one_by_one_run_s", "40 checks one by one in one run (parallel=1)"),
        ("sum_of_singles_s", "sum of the 40 checks, each run alone"),
        ("slowest_single_s", "slowest single check alone"),
    ):
        print(f"| {text} | {best[key]:.2f} s | {median[key]:.2f} s |")
    for n in parallels:
        b, m = best[f"parallel_{n}"], median[f"parallel_{n}"]
        for key, text in (
            ("ratio_to_slowest_single", f"parallel={n} / slowest single (target < 1.5)"),
            ("speedup_vs_one_by_one", f"one by one / parallel={n}"),
            ("speedup_vs_sum_of_singles", f"sum of singles / parallel={n}"),
        ):
            print(f"| {text} | {b[key]:.2f}x | {m[key]:.2f}x |")
    print(
        f"\nslowest single: {best['slowest_single_id']} (best), {median['slowest_single_id']} "
        f"(median); load average {result['load_average']} on {result['cpus']} CPUs"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
