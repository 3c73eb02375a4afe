"""The recipes of the public base images labup can build offline, and which images a lab needs.

A :class:`Recipe` says how one public name (``busybox:1.36``, ``python:3.11-slim``) is made
from Debian's packages; :func:`images_for_lab` finds every image a lab needs, the bases of its
Dockerfiles and compose files included.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from labspec.errors import LabupError
from labspec.model import Lab

OFFLINE_LABEL = "labup.offline"
RECIPE_LABEL = "labup.offline.recipe"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# the image of a class's sandboxes, doors and registry on a Swarm cluster (provisioner/classroom)
SANDBOX_IMAGE = "labup/sandbox:1"

Progress = Callable[[str, str], None]  # (image ref, message)
Method = Literal["busybox", "debootstrap"]


class OfflineImageError(LabupError):
    """An offline image could not be built (missing tool, failed debootstrap, failed import)."""


@dataclass(frozen=True)
class Recipe:
    """How to build one public image name locally."""

    ref: str
    method: Method
    summary: str
    suite: str = "bookworm"
    include: tuple[str, ...] = ()
    trim: tuple[str, ...] = ()  # globs under the rootfs whose matches are deleted
    symlinks: tuple[tuple[str, str], ...] = ()  # (path in image, link target)
    changes: tuple[str, ...] = ()  # Dockerfile instructions applied at import
    version: int = 1  # bump to invalidate cached root filesystems
    aliases: tuple[str, ...] = field(default=())
    # names the cached root filesystem (``NAME-SUITE-KEY.tar``); the default, the method,
    # is the python image's, so one recipe's rebuild never deletes another's cache
    cache_name: str = ""

    @property
    def key(self) -> str:
        """Short hash of everything that shapes the root filesystem (names the cache file)."""
        parts = [self.method, self.suite, ",".join(self.include), ",".join(self.trim)]
        text = "|".join([*parts, str(self.version)])
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    @property
    def recipe_id(self) -> str:
        return f"{self.method}:{self.suite if self.method == 'debootstrap' else 'host'}:{self.key}"


_PY_TRIM = (
    "var/cache/apt/*.bin",
    "var/cache/apt/archives/*.deb",
    "var/cache/apt/archives/partial/*",
    "var/lib/apt/lists/*",
    "usr/share/doc/*",
    "usr/share/man/*",
    "usr/share/info/*",
    "usr/share/locale/*",
    "var/log/*.log",
    "var/log/apt/*",
    # pip installs into the image's Python, as in the official image (no PEP 668 refusal)
    "usr/lib/python3.*/EXTERNALLY-MANAGED",
)

RECIPES: dict[str, Recipe] = {
    r.ref: r
    for r in (
        Recipe(
            ref="busybox:1.36",
            method="busybox",
            summary="host busybox-static FROM scratch (sh, wget, nc, httpd, tar, ...)",
            changes=(f"ENV {PATH_ENV}", 'CMD ["sh"]'),
        ),
        Recipe(
            ref="python:3.11-slim",
            method="debootstrap",
            summary="Debian bookworm minbase + python3 (3.11) and pip, trimmed",
            include=("python3", "python3-pip"),
            trim=_PY_TRIM,
            symlinks=(
                ("usr/local/bin/python", "/usr/bin/python3"),
                ("usr/local/bin/python3", "/usr/bin/python3"),
            ),
            changes=(
                f"ENV {PATH_ENV}",
                "ENV LANG=C.UTF-8",
                'CMD ["python3"]',
            ),
            # `FROM python` in a learner's first, unpinned Dockerfile (lab 4) needs a stand-in
            aliases=("python:latest",),
        ),
        Recipe(
            ref=SANDBOX_IMAGE,
            method="debootstrap",
            summary="Debian bookworm minbase + docker.io, openssh-server, tini, iproute2, socat, "
            "docker-registry, docker-compose: a class sandbox (docker-in-docker with sshd), its "
            "door and the class registry",
            include=(
                "docker.io", "docker-compose", "openssh-server", "tini", "iproute2", "socat",
                "docker-registry", "procps", "less", "nano",
            ),
            # host keys made by openssh-server's postinst would be shared by every sandbox:
            # labup gives each sandbox its own (a Swarm secret)
            trim=(*_PY_TRIM, "etc/ssh/ssh_host_*", "etc/machine-id", "var/lib/dbus/machine-id"),
            changes=(f"ENV {PATH_ENV}", "ENV LANG=C.UTF-8", 'CMD ["/bin/bash"]'),
            cache_name="sandbox",
        ),
    )
}


def recipe_for(ref: str) -> Recipe | None:
    """The recipe that builds ``ref`` offline, or None."""
    ref = normalise_ref(ref)
    for recipe in RECIPES.values():
        if ref == recipe.ref or ref in recipe.aliases:
            return recipe
    return None


def normalise_ref(ref: str) -> str:
    """``docker.io/library/python:3.11-slim`` -> ``python:3.11-slim``; adds ``:latest``."""
    for prefix in ("docker.io/library/", "index.docker.io/library/", "library/"):
        if ref.startswith(prefix):
            ref = ref[len(prefix) :]
    repo, tag = split_ref(ref)
    return f"{repo}:{tag}"


def split_ref(ref: str) -> tuple[str, str]:
    """``python:3.11-slim`` -> (``python``, ``3.11-slim``); a registry port is not a tag."""
    if "@" in ref:
        return ref, ""
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        return ref[:colon], ref[colon + 1 :]
    return ref, "latest"


# -- which images a lab needs ------------------------------------------------------------


_FROM = re.compile(r"^\s*FROM\s+(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", re.I | re.M)
_COMPOSE_IMAGE = re.compile(r"^\s*image:\s*['\"]?([^'\"\s#]+)", re.M)


def dockerfile_bases(text: str) -> list[str]:
    """Base images of a Dockerfile: FROM references that are not earlier stages or scratch."""
    stages: set[str] = set()
    bases: list[str] = []
    for match in _FROM.finditer(text):
        ref, alias = match.group(1), match.group(2)
        if ref.lower() not in stages and ref != "scratch" and "$" not in ref:
            bases.append(ref)
        if alias:
            stages.add(alias.lower())
    return bases


def _is_dockerfile(path: Path) -> bool:
    name = path.name.lower()
    return name == "dockerfile" or name.startswith("dockerfile.") or name.endswith(".dockerfile")


def _is_compose(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith((".yml", ".yaml")) and ("compose" in name)


def images_for_lab(lab: Lab) -> list[str]:
    """Public images ``lab`` needs: pulled images, container images, and the bases named by
    Dockerfiles and compose files anywhere in its folder (starters and solution alike).
    Images the lab builds itself are not listed."""
    built = {normalise_ref(i.ref) for i in lab.images if i.build is not None}
    found: list[str] = []
    for image in lab.images:
        if image.build is None:
            found.append(image.ref)
    for container in lab.containers:
        if container.image_key is None:
            found.append(container.image)
    for path in sorted(lab.folder.rglob("*")):
        if not path.is_file() or any(p.startswith(".") for p in path.relative_to(lab.folder).parts):
            continue
        if _is_dockerfile(path):
            found.extend(dockerfile_bases(path.read_text(encoding="utf-8", errors="replace")))
        elif _is_compose(path):
            found.extend(_COMPOSE_IMAGE.findall(path.read_text(encoding="utf-8", errors="replace")))
    result: list[str] = []
    for ref in found:
        if "{" in ref or "$" in ref:
            continue
        norm = normalise_ref(ref)
        if norm in built or norm in result:
            continue
        # images built by a compose file or a script of the lab carry the lab's key
        if norm.startswith((f"{lab.key}-", f"{lab.key}/", "labup/")):
            continue
        result.append(norm)
    return result


def refs_for_labs(labs: Iterable[Lab]) -> list[str]:
    """Union of :func:`images_for_lab` over several labs, in first-seen order."""
    seen: dict[str, None] = {}
    for lab in labs:
        for ref in images_for_lab(lab):
            seen.setdefault(ref, None)
    return list(seen)
