"""A target: one engine a verb runs on, from ``--host URL`` (or the default engine) or from one
host of an inventory. One engine is a classroom of one: both make the same :class:`Target`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

from labspec.model import Host
from provisioner.engine.protocol import Engine


class Target(NamedTuple):
    """Where to run and what the lab's templates see of that machine."""

    name: str  # "local", the URL, or the inventory's host name (messages, reports)
    url: str  # unix://..., tcp://..., ssh://user@host:port
    vars: Mapping[str, Any] = MappingProxyType({})  # host.vars in templates
    gpus: int | None = None  # GPUs the inventory says the host has; None: probe
    key: Path | None = None  # SSH private key (default LABUP_SSH_KEY, ssh-agent, ~/.ssh)
    known_hosts: Path | None = None  # default LABUP_KNOWN_HOSTS, else ~/.ssh/known_hosts
    docker_host: str | None = None  # DOCKER_HOST on the far side, when not its default
    proxy_jump: str | None = None  # jump hosts (ssh -J); default: the ssh_config's
    ssh_config: Path | None = None  # default: LABUP_SSH_CONFIG, else ~/.ssh/config
    from_inventory: bool = False

    @property
    def is_remote(self) -> bool:
        return self.url.startswith("ssh://")

    @property
    def learner(self) -> str:
        """Who works on this machine (the inventory's ``learner`` var), for class reports."""
        return str(self.vars.get("learner", self.name))

    @property
    def labup_dir(self) -> str | None:
        """The folder on the far side that holds copies of lab files (``vars.labup_dir``)."""
        value = self.vars.get("labup_dir")
        return str(value) if value else None

    def template_host(self) -> dict[str, Any]:
        """``host`` as the lab's templates see it."""
        return {"name": self.name, "vars": dict(self.vars)}

    def connect(self, *, timeout: float = 10.0, probes: bool = False) -> Engine:
        """One connection to the target's engine (for SSH: verified host key, one transport
        reused for every API call, probe and file copy of the run; ``probes``: the probe
        agent starts at once)."""
        from provisioner.engine.connect import connect

        return connect(self.url, host_label=self.name, key=self.key,
                       known_hosts=self.known_hosts, docker_host=self.docker_host,
                       proxy_jump=self.proxy_jump, ssh_config=self.ssh_config, timeout=timeout,
                       probes=probes)

    @classmethod
    def from_url(cls, url: str | None) -> Target:
        """``--host URL``, else DOCKER_HOST, else the local socket (refused when malformed)."""
        from provisioner.engine.connect import default_label, engine_url

        chosen = engine_url(url)
        return cls(name=default_label(chosen), url=chosen)

    @classmethod
    def from_host(cls, host: Host) -> Target:
        return cls(name=host.name, url=host.url, vars=dict(host.vars), gpus=host.gpus,
                   key=host.key, known_hosts=host.known_hosts, docker_host=host.docker_host,
                   proxy_jump=host.proxy_jump, ssh_config=host.ssh_config, from_inventory=True)
