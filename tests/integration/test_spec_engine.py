"""The model labspec builds is what a real engine accepts and means.

A spec is loaded with labspec, and a container is created from the model's values with the
docker SDK directly (not through the provisioner), so this proves the spec language's own
normalisation: argv split from a command string, env values as strings, sizes in bytes,
CPUs, a CMD-SHELL healthcheck, an absolute bind path into the lab folder, a tmpfs size, a
read-only root, a user, and a port published on 127.0.0.1.
"""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

import labspec

pytestmark = pytest.mark.docker

SPEC = """\
apiVersion: labup/v1
kind: Lab
name: engine-{unique}
title: Spec values on a real engine
params:
  greeting: {{type: string, default: "hello engine"}}
containers:
  web:
    image: {image}
    command: sh -c 'trap "exit 0" TERM INT; httpd -f -p 8080 -h /www & wait'
    env: {{GREETING: "{{{{ greeting }}}}", FLAG: true, COUNT: 3}}
    user: "65534"
    read_only: true
    ports: [8080]
    mounts:
      - {{type: bind, source: site, target: /www, read_only: true}}
      - {{type: tmpfs, target: /scratch, size: 4m}}
    resources: {{cpus: 0.5, memory: 32m, pids: 50}}
    healthcheck:
      test: "wget -q -O /dev/null http://127.0.0.1:8080/"
      interval: 500ms
      timeout: 2s
      retries: 20
"""


def create(client: Any, name: str, lab: labspec.Lab) -> Any:
    web = lab.container("web")
    api = client.api
    mounts = []
    tmpfs = {}
    for m in web.mounts:
        if m.type == "bind":
            mounts.append(f"{m.source}:{m.target}:{'ro' if m.read_only else 'rw'}")
        elif m.type == "tmpfs":
            tmpfs[m.target] = f"size={m.size}"
    assert web.resources.cpus is not None and web.healthcheck is not None
    host_config = api.create_host_config(
        binds=mounts,
        tmpfs=tmpfs,
        port_bindings={f"{p.container}/{p.protocol}": (p.host_ip, p.host) for p in web.ports},
        mem_limit=web.resources.memory,
        nano_cpus=int(web.resources.cpus * 1e9),
        pids_limit=web.resources.pids,
        read_only=web.read_only,
    )
    hc = web.healthcheck
    created = api.create_container(
        image=web.image,
        name=name,
        command=list(web.command or ()),
        environment=dict(web.env),
        user=web.user,
        ports=[(p.container, p.protocol) for p in web.ports],
        host_config=host_config,
        healthcheck={
            "test": list(hc.test),
            "interval": int(hc.interval * 1e9),
            "timeout": int(hc.timeout * 1e9),
            "retries": hc.retries,
        },
    )
    return created["Id"]


def test_model_values_run_on_a_real_engine(
    docker_client: Any, test_image: str, unique: str, tmp_path: Path
) -> None:
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "index.html").write_text(f"served from the lab folder {unique}\n")
    (tmp_path / "lab.yaml").write_text(SPEC.format(unique=unique, image=test_image))
    lab = labspec.load_lab(tmp_path / "lab.yaml")
    web = lab.container("web")
    assert web.command == ("sh", "-c", 'trap "exit 0" TERM INT; httpd -f -p 8080 -h /www & wait')
    name = f"labup-spec-{unique}"
    container_id = create(docker_client, name, lab)
    try:
        docker_client.api.start(container_id)
        deadline = time.monotonic() + 30
        while True:
            info = docker_client.api.inspect_container(container_id)
            status = info["State"].get("Health", {}).get("Status")
            if status == "healthy" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert status == "healthy", info["State"]
        config, host = info["Config"], info["HostConfig"]
        assert config["Cmd"] == list(web.command or ())
        assert {"GREETING=hello engine", "FLAG=true", "COUNT=3"} <= set(config["Env"])
        assert config["User"] == "65534"
        assert config["Healthcheck"]["Test"] == [
            "CMD-SHELL",
            "wget -q -O /dev/null http://127.0.0.1:8080/",
        ]
        assert config["Healthcheck"]["Interval"] == 500_000_000
        assert host["Memory"] == 32 * 1024 * 1024
        assert host["NanoCpus"] == 500_000_000
        assert host["PidsLimit"] == 50
        assert host["ReadonlyRootfs"] is True
        assert host["Tmpfs"] == {"/scratch": f"size={4 * 1024 * 1024}"}
        assert host["Binds"] == [f"{tmp_path.resolve() / 'site'}:/www:ro"]
        [binding] = info["NetworkSettings"]["Ports"]["8080/tcp"]
        assert binding["HostIp"] == "127.0.0.1"
        url = f"http://127.0.0.1:{binding['HostPort']}/index.html"
        with urllib.request.urlopen(url, timeout=5) as response:
            assert response.read().decode() == f"served from the lab folder {unique}\n"
        result = docker_client.api.exec_create(
            container_id, ["sh", "-c", "df -k /scratch | tail -1"]
        )
        assert " 4096 " in docker_client.api.exec_start(result["Id"]).decode()
    finally:
        docker_client.api.remove_container(container_id, force=True)
