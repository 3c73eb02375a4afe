"""Desired configuration of each resource, as compact JSON, and its hash.

Every container and network labup creates carries two labels: ``labup.config-hash`` (a short
hash of the desired configuration) and ``labup.config`` (that configuration as compact JSON).
The planner compares hashes only (no inspect when they match) and, when they differ, names the
fields that changed by comparing the stored JSON with the new one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from labspec.model import Container, Lab, Network, Volume
from provisioner.engine.labels import resource_name

CONFIG_JSON = "labup.config"  # label holding the desired configuration as compact JSON
BUILD_HASH = "labup.build-hash"  # label on built images: hash of context + Dockerfile + args

JsonDict = dict[str, Any]


def compact(config: Mapping[str, Any]) -> str:
    """Canonical compact JSON: sorted keys, no spaces."""
    return json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def config_hash(config: Mapping[str, Any]) -> str:
    """A short, stable hash of a configuration."""
    return hashlib.sha256(compact(config).encode()).hexdigest()[:16]


def network_config(net: Network) -> JsonDict:
    return {
        "driver": net.driver,
        "internal": net.internal,
        "subnet": net.subnet,
        "gateway": net.gateway,
        "labels": dict(sorted(net.labels.items())),
    }


def volume_config(vol: Volume) -> JsonDict:
    return {"labels": dict(sorted(vol.labels.items()))}


def container_config(
    lab: Lab, c: Container, instance: str, *, image_hash: str | None = None
) -> JsonDict:
    """Every field that shapes the container, with spec keys resolved to Docker names.

    ``image_hash`` is the build hash of a built image, so a rebuilt image replaces the container.
    ``depends_on`` is left out: it orders the work but does not change the container.
    """
    networks = {
        resource_name(lab.key, instance, a.network): {
            "aliases": sorted(a.aliases),
            "ipv4_address": a.ipv4_address,
        }
        for a in c.networks
    }
    mounts = [
        {
            "type": m.type,
            "target": m.target,
            "source": (
                resource_name(lab.key, instance, m.source)
                if m.type == "volume" and m.source
                else m.source
            ),
            "read_only": m.read_only,
            "size": m.size,
        }
        for m in c.mounts
    ]
    return {
        "image": c.image,
        "image_build": image_hash,
        "command": list(c.command) if c.command is not None else None,
        "entrypoint": list(c.entrypoint) if c.entrypoint is not None else None,
        "env": dict(sorted(c.env.items())),
        "working_dir": c.working_dir,
        "hostname": c.hostname,
        "ports": [
            {"container": p.container, "host": p.host, "host_ip": p.host_ip, "protocol": p.protocol}
            for p in c.ports
        ],
        "networks": networks,
        "network_mode": c.network_mode,
        "mounts": mounts,
        "resources": {
            "cpus": c.resources.cpus,
            "memory": c.resources.memory,
            "pids": c.resources.pids,
        },
        "gpus": (
            None
            if c.gpus is None
            else {
                "count": c.gpus.count,
                "capabilities": list(c.gpus.capabilities),
                "optional": c.gpus.optional,
            }
        ),
        "healthcheck": (
            None
            if c.healthcheck is None
            else {
                "test": list(c.healthcheck.test),
                "interval": c.healthcheck.interval,
                "timeout": c.healthcheck.timeout,
                "retries": c.healthcheck.retries,
                "start_period": c.healthcheck.start_period,
            }
        ),
        "user": c.user,
        "read_only": c.read_only,
        "privileged": c.privileged,
        "init": c.init,
        "cap_add": list(c.cap_add),
        "cap_drop": list(c.cap_drop),
        "restart": c.restart,
        "labels": dict(sorted(c.labels.items())),
        "stop_timeout": c.stop_timeout,
    }


def changed_fields(old_json: str | None, new: Mapping[str, Any]) -> list[str]:
    """Names of the fields that differ (``env.GREETING``, ``image``); ``["config"]`` if unknown."""
    if not old_json:
        return ["config"]
    try:
        old = json.loads(old_json)
    except ValueError:
        return ["config"]
    if not isinstance(old, dict):
        return ["config"]
    new_norm = json.loads(compact(new))  # tuples -> lists, like the stored side
    changed: list[str] = []
    for key in sorted(set(old) | set(new_norm)):
        before, after = old.get(key), new_norm.get(key)
        if before == after:
            continue
        if isinstance(before, dict) and isinstance(after, dict) and key in ("env", "labels"):
            for sub in sorted(set(before) | set(after)):
                if before.get(sub) != after.get(sub):
                    changed.append(f"{key}.{sub}")
        else:
            changed.append(key)
    return changed or ["config"]
