"""What an engine is and what labup can do there, from its ``/version`` and ``/info``.

Learners run Docker Engine (Docker Desktop, Docker CE, Debian's ``docker.io``) and Podman's
Docker-compatible API service. :func:`from_answers` names the engine's kind and version and
what it offers (network drivers, swarm); :func:`lab_needs` says what a lab asks of an engine
beyond the basics; :func:`refusals` says, before anything is created, why a lab cannot run
on an engine (an overlay network on Podman, swarm where there is none). ``labup doctor``
prints the same facts and ``labup up`` refuses a lab for those reasons, up front.

Nothing here talks to an engine: ``DockerEngine.capabilities()`` asks once and calls
:func:`from_answers`, so the rules are unit-tested on recorded answers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from labspec.errors import EngineError
from labspec.model import Lab

if TYPE_CHECKING:
    from provisioner.engine.protocol import Engine

DOCKER = "docker"
PODMAN = "podman"
SWARM_FEATURE = "swarm"  # a lab's ``requires: [swarm]``


class Capabilities(NamedTuple):
    """One engine as labup sees it (from ``/version`` and ``/info``)."""

    kind: str  # "docker" | "podman"
    product: str  # what the engine calls itself: "Docker Engine - Community", "Podman Engine"
    version: str  # "26.1.5+dfsg1", "4.3.1"
    api_version: str  # the Docker API version it serves: "1.45", "1.41"
    network_drivers: tuple[str, ...] = ("bridge",)
    swarm_state: str = ""  # docker's Swarm.LocalNodeState: "inactive", "active", ...

    @property
    def name(self) -> str:
        """``Docker 26.1.5+dfsg1 (API 1.45)``, ``Podman 4.3.1 (Docker API 1.41)``."""
        if self.kind == PODMAN:
            return f"Podman {self.version} (Docker API {self.api_version})"
        return f"Docker {self.version} (API {self.api_version})"

    @property
    def endpoints_at_create(self) -> bool:
        """API >= 1.44 takes every network endpoint at container create; older ones one."""
        return _version_tuple(self.api_version) >= (1, 44)

    @property
    def swarm(self) -> bool:
        """Swarm mode is on (this engine is a swarm node and can run services)."""
        return self.kind == DOCKER and self.swarm_state == "active"

    def limits(self) -> list[str]:
        """What labup cannot do on this engine, or does differently, for people."""
        said: list[str] = []
        if self.kind == PODMAN:
            said.append("no swarm mode and no overlay networks (labs that need them are refused)")
            said.append("loaded images are named localhost/NAME, built ones docker.io/NAME: "
                        "labup finds them by the names labs use")
            said.append("without systemd Podman runs no healthchecks by itself: labup runs a "
                        "container's healthcheck when it looks at it; docker-compose's "
                        "`condition: service_healthy` waits for ever there")
        elif not self.swarm:
            said.append("swarm mode is off (`docker swarm init` turns it on): labs that need "
                        "swarm or overlay networks are refused")
        return said


class Need(NamedTuple):
    """One thing a lab asks of the engine: ``feature`` (``network driver overlay``,
    ``swarm``) and where the lab asks it (``network lab5-mesh``)."""

    feature: str
    where: str


class EngineCannotRunLab(EngineError):
    """The engine lacks what the lab needs; said before anything is created."""


def from_answers(version: Mapping[str, Any], info: Mapping[str, Any]) -> Capabilities:
    """The engine described by its ``GET /version`` and ``GET /info`` answers."""
    components = {str(c.get("Name", "")): c for c in version.get("Components") or []
                  if isinstance(c, Mapping)}
    platform = str((version.get("Platform") or {}).get("Name") or "")
    podman = "Podman Engine" in components or "BuildahVersion" in info or \
        "podman" in platform.lower()
    if podman:
        kind, product = PODMAN, "Podman Engine"
        number = str((components.get("Podman Engine") or {}).get("Version")
                     or version.get("Version") or info.get("ServerVersion") or "?")
    else:
        kind = DOCKER
        product = platform or "Docker Engine"
        number = str(version.get("Version") or info.get("ServerVersion") or "?")
    plugins = info.get("Plugins") or {}
    drivers = tuple(sorted({str(d) for d in plugins.get("Network") or ()})) or ("bridge",)
    swarm = info.get("Swarm") or {}
    return Capabilities(
        kind=kind,
        product=product,
        version=number,
        api_version=str(version.get("ApiVersion") or "1.41"),
        network_drivers=drivers,
        swarm_state="" if podman else str(swarm.get("LocalNodeState") or ""),
    )


def is_podman(info: Mapping[str, Any]) -> bool:
    """Podman's ``/info`` (it names the buildah it builds with; Docker's never does)."""
    return "BuildahVersion" in info


def lab_needs(lab: Lab) -> list[Need]:
    """What ``lab`` asks of an engine beyond containers, bridge networks and volumes."""
    needs = [Need(f"network driver {n.driver}", f"network {n.name}")
             for n in lab.networks if n.driver and n.driver != "bridge"]
    if SWARM_FEATURE in lab.requires:
        needs.append(Need(SWARM_FEATURE, "requires: [swarm]"))
    return needs


def refusals(caps: Capabilities, needs: Sequence[Need]) -> list[str]:
    """Why the engine cannot give each need (empty: it can give them all)."""
    said: list[str] = []
    for need in needs:
        if need.feature == SWARM_FEATURE:
            if caps.kind == PODMAN:
                said.append(f"{need.where}: Podman has no swarm mode")
            elif not caps.swarm:
                said.append(f"{need.where}: swarm mode is off on this engine "
                            "(`docker swarm init`)")
            continue
        driver = need.feature.removeprefix("network driver ")
        if driver not in caps.network_drivers:
            why = " (overlay networks belong to Docker Swarm)" if driver == "overlay" else ""
            said.append(f"{need.where} uses driver {driver}, which {caps.name} does not have"
                        f"{why}; it has {', '.join(caps.network_drivers)}")
        elif driver == "overlay" and not caps.swarm:
            said.append(f"{need.where} uses driver overlay, which needs swarm mode "
                        "(`docker swarm init`)")
    return said


def ensure_can_run(engine: Engine, lab: Lab, *, host: str | None = None) -> None:
    """Raise :class:`EngineCannotRunLab` when ``engine`` lacks what ``lab`` needs. A lab that
    needs nothing special costs no engine call (a no-op ``up`` stays as fast)."""
    needs = lab_needs(lab)
    if needs:
        refuse(engine.capabilities(), lab, needs, host)


def refuse(caps: Capabilities, lab: Lab, needs: Sequence[Need], host: str | None) -> None:
    """Raise :class:`EngineCannotRunLab` when the engine lacks what ``lab`` needs."""
    reasons = refusals(caps, needs)
    if not reasons:
        return
    listed = "\n".join(f"  - {r}" for r in reasons)
    raise EngineCannotRunLab(
        f"{lab.key} cannot run on {caps.name}: nothing was created\n{listed}",
        host=host,
        hint="`labup doctor LAB` shows what this engine can do; run the lab on an engine "
             "that has it",
    )


def _version_tuple(text: str) -> tuple[int, int]:
    try:
        major, minor = (int(x) for x in text.split(".")[:2])
    except ValueError:
        return (1, 41)
    return major, minor
