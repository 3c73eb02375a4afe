"""The public base images the labs name, provided without a registry.

Learners on connected machines pull ``python:3.11-slim`` and ``busybox:1.36``. This machine,
CI and many classrooms reach no registry, so labup builds those names locally from Debian's
packages and tags them with the names the labs use:

- ``busybox:1.36``: the host's static busybox (Debian's ``busybox-static``) in an image built
  FROM scratch, one symlink per applet in ``/bin``, ``/etc/passwd`` and ``/etc/group`` like the
  official image; under a second.
- ``python:3.11-slim``: ``debootstrap --variant=minbase --include=python3 bookworm`` (Debian
  bookworm's python3 is 3.11), trimmed (apt lists, docs, man pages, locales), with
  ``/usr/local/bin/python`` and ``python3`` symlinks, ``PATH``, ``LANG`` and ``CMD ["python3"]``
  as in the official image. The trimmed root filesystem is cached as a tarball, so a second
  build is a plain import (seconds).

Every image built here carries the label ``labup.offline=true`` (and the recipe it came from);
images already present are left alone. Nothing here prints: progress goes to a callback.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from labspec.errors import EngineError, LabupError, UserInputError
from labspec.model import Lab

OFFLINE_LABEL = "labup.offline"
RECIPE_LABEL = "labup.offline.recipe"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

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


# ---------------------------------------------------------------------------------------
# Which images a lab needs
# ---------------------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------------------
# Preparing images
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PrepareResult:
    ref: str
    action: Literal["present", "built", "pulled", "failed"]
    seconds: float
    detail: str = ""
    offline: bool = False  # the image present carries labup.offline=true


def cache_dir() -> Path:
    """Where cached root filesystems live: ``$LABUP_CACHE_DIR`` or ``~/.cache/labup``."""
    override = os.environ.get("LABUP_CACHE_DIR")
    if override:
        return Path(override).expanduser() / "offline"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "labup" / "offline"


def _noop(ref: str, message: str) -> None:
    del ref, message


def image_labels(client: Any, ref: str) -> dict[str, str] | None:
    """Labels of a local image, {} when it has none, None when it is absent."""
    import docker

    try:
        attrs = client.api.inspect_image(ref)
    except docker.errors.ImageNotFound:
        return None
    except docker.errors.APIError as e:
        raise EngineError(f"cannot inspect image: {e.explanation or e}", resource=ref) from e
    labels = (attrs.get("Config") or {}).get("Labels") or {}
    return dict(labels)


def prepare_images(
    client: Any,
    refs: Sequence[str],
    *,
    offline: bool,
    force: bool = False,
    mirror: str | None = None,
    progress: Progress = _noop,
) -> list[PrepareResult]:
    """Make every image of ``refs`` present on the engine of ``client`` (a docker SDK client).

    Present images are skipped unless ``force`` (which rebuilds offline images only). Missing
    ones are built from their recipe when ``offline``, pulled otherwise. A failure of one image
    is reported in its result and the others go on; the caller decides the exit code."""
    results: list[PrepareResult] = []
    built: set[str] = set()
    for ref in dict.fromkeys(normalise_ref(r) for r in refs):
        start = time.monotonic()
        labels = image_labels(client, ref)
        is_offline = labels is not None and labels.get(OFFLINE_LABEL) == "true"
        if labels is not None and not (force and is_offline):
            detail = "built offline by labup" if is_offline else "present"
            progress(ref, detail)
            results.append(PrepareResult(ref, "present", 0.0, detail, is_offline))
            continue
        try:
            if offline:
                recipe = recipe_for(ref)
                if recipe is None:
                    known = ", ".join(sorted(RECIPES))
                    raise UserInputError(
                        f"{ref}: no offline recipe for this image",
                        hint=f"offline recipes exist for: {known}; or `docker load` it from a file",
                    )
                if recipe.ref not in built and (
                    ref == recipe.ref or force or image_labels(client, recipe.ref) is None
                ):
                    detail = build_offline(client, recipe, mirror=mirror, progress=progress)
                    built.add(recipe.ref)
                if ref != recipe.ref:  # an alias: the recipe's image under one more name
                    tag_image(client, recipe.ref, ref)
                    detail = f"tagged from {recipe.ref} (offline stand-in)"
                    progress(ref, detail)
                action: Literal["built", "pulled"] = "built"
            else:
                detail = pull(client, ref, progress=progress)
                action = "pulled"
        except LabupError as err:
            progress(ref, f"failed: {err.message}")
            results.append(PrepareResult(ref, "failed", time.monotonic() - start, str(err)))
            continue
        results.append(
            PrepareResult(ref, action, time.monotonic() - start, detail, action == "built")
        )
    return results


def tag_image(client: Any, source: str, ref: str) -> None:
    """Give the local image ``source`` the extra name ``ref``."""
    import docker

    repo, tag = split_ref(ref)
    try:
        client.api.tag(source, repo, tag)
    except docker.errors.APIError as e:
        raise OfflineImageError(f"{ref}: cannot tag {source}: {e.explanation or e}") from e


def pull(client: Any, ref: str, *, progress: Progress = _noop) -> str:
    """Pull ``ref`` from its registry, reporting layer progress."""
    import docker

    repo, tag = split_ref(ref)
    progress(ref, "pulling")
    try:
        for event in client.api.pull(repo, tag=tag or None, stream=True, decode=True):
            if "error" in event:
                raise OfflineImageError(f"{ref}: pull failed: {event['error']}")
            status = event.get("status")
            if status and event.get("id"):
                progress(ref, f"{event['id']}: {status}")
    except docker.errors.APIError as e:
        raise OfflineImageError(
            f"{ref}: pull failed: {e.explanation or e}",
            hint="no registry reachable? build it locally: `labup images prepare --offline`",
        ) from e
    return "pulled"


def build_offline(
    client: Any, recipe: Recipe, *, mirror: str | None = None, progress: Progress = _noop
) -> str:
    """Build ``recipe`` and tag it ``recipe.ref``; returns a one-line summary."""
    if recipe.method == "busybox":
        data = busybox_rootfs_tar()
        progress(recipe.ref, f"importing busybox root filesystem ({len(data) // 1024} KiB)")
        _import(client, recipe, data)
        return "built from the host's busybox"
    tarball = cached_rootfs(recipe, mirror=mirror, progress=progress)
    size_mb = tarball.stat().st_size / 1e6
    progress(recipe.ref, f"importing {tarball.name} ({size_mb:.0f} MB)")
    _import(client, recipe, str(tarball))
    return f"imported from {tarball}"


def _import(client: Any, recipe: Recipe, src: str | bytes) -> None:
    import docker

    repo, tag = split_ref(recipe.ref)
    changes = [
        *recipe.changes,
        f"LABEL {OFFLINE_LABEL}=true",
        f"LABEL {RECIPE_LABEL}={recipe.recipe_id}",
    ]
    try:
        client.api.import_image(src=src, repository=repo, tag=tag, changes=changes)
    except docker.errors.APIError as e:
        raise OfflineImageError(
            f"{recipe.ref}: import into the engine failed: {e.explanation or e}"
        ) from e


# -- busybox ---------------------------------------------------------------------------

_PASSWD = """root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
"""  # noqa: S105 (an /etc/passwd file, no password in it)
_GROUP = """root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
wheel:x:10:root
mail:x:12:
www-data:x:33:
operator:x:37:
users:x:100:
nogroup:x:65534:
"""


def find_busybox() -> Path:
    """The host's static busybox binary (Debian's ``busybox-static``)."""
    for candidate in ("/bin/busybox", "/usr/bin/busybox"):
        if Path(candidate).is_file():
            return Path(candidate)
    found = shutil.which("busybox")
    if found:
        return Path(found)
    raise OfflineImageError(
        "busybox is not installed on this host",
        hint="apt-get install busybox-static (scripts/engine.sh installs it)",
    )


def busybox_applets(busybox: Path) -> list[str]:
    """Applet names the binary provides (``busybox --list``)."""
    try:
        out = subprocess.run(
            [str(busybox), "--list"], capture_output=True, text=True, check=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError) as e:
        raise OfflineImageError(f"{busybox} --list failed: {e}") from e
    return [a for a in out.split() if a and a != "busybox" and "/" not in a]


def busybox_rootfs_tar(busybox: Path | None = None) -> bytes:
    """An uncompressed tar of a busybox root filesystem, built in memory."""
    binary = busybox or find_busybox()
    _ensure_static(binary)
    buf = io.BytesIO()
    now = int(time.time())
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:

        def add_dir(name: str, mode: int = 0o755) -> None:
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            info.mode = mode
            info.mtime = now
            tar.addfile(info)

        def add_file(name: str, data: bytes, mode: int = 0o644) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = mode
            info.mtime = now
            tar.addfile(info, io.BytesIO(data))

        for d in ("bin", "etc", "home", "root", "usr", "usr/bin", "usr/sbin", "sbin", "var"):
            add_dir(d, 0o700 if d == "root" else 0o755)
        for d in ("var/www", "var/spool", "var/spool/mail", "var/log"):
            add_dir(d)
        add_dir("tmp", 0o1777)
        add_file("bin/busybox", binary.read_bytes(), 0o755)
        for applet in busybox_applets(binary):
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type = tarfile.SYMTYPE
            link.linkname = "busybox"
            link.mode = 0o777
            link.mtime = now
            tar.addfile(link)
        add_file("etc/passwd", _PASSWD.encode())
        add_file("etc/group", _GROUP.encode())
        add_file("etc/shadow", b"root:*:10933:0:99999:7:::\n", 0o600)
    return buf.getvalue()


def _ensure_static(binary: Path) -> None:
    """A dynamically linked busybox would not run FROM scratch: refuse it clearly."""
    with binary.open("rb") as f:
        head = f.read(4096)
    if head[:4] != b"\x7fELF":
        raise OfflineImageError(f"{binary} is not an ELF binary")
    if b"/lib64/ld-linux" in head or b"/lib/ld-linux" in head or b"ld-musl" in head:
        raise OfflineImageError(
            f"{binary} is dynamically linked and cannot run in an image FROM scratch",
            hint="apt-get install busybox-static",
        )


# -- debootstrap -----------------------------------------------------------------------


def cached_rootfs(recipe: Recipe, *, mirror: str | None = None, progress: Progress = _noop) -> Path:
    """The recipe's trimmed root filesystem as a tarball, built once and cached."""
    folder = cache_dir()
    # named by what shapes the rootfs, not by the image name: two names, one cache file
    slug = f"{recipe.method}-{recipe.suite}"
    target = folder / f"{slug}-{recipe.key}.tar"
    if target.is_file():
        progress(recipe.ref, f"cached root filesystem {target}")
        return target
    debootstrap = shutil.which("debootstrap")
    if debootstrap is None:
        raise OfflineImageError(
            f"{recipe.ref}: debootstrap is not installed",
            hint="apt-get install debootstrap (scripts/engine.sh installs it)",
        )
    if os.geteuid() != 0:
        raise OfflineImageError(
            f"{recipe.ref}: debootstrap needs root to build the root filesystem",
            hint="run `sudo labup images prepare --offline` once; later runs use the cache",
        )
    folder.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="rootfs-", dir=folder))
    try:
        rootfs = work / "rootfs"
        _debootstrap(debootstrap, recipe, rootfs, mirror or _mirror(), progress)
        progress(recipe.ref, "trimming and packing the root filesystem")
        _trim(rootfs, recipe)
        partial = work / "rootfs.tar"
        _run(
            ["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(partial), "."],
            recipe.ref,
            "tar",
        )
        os.replace(partial, target)
        for stale in folder.glob(f"{slug}-*.tar"):  # root filesystems of older recipes
            if stale != target:
                stale.unlink(missing_ok=True)
    finally:
        _unmount_under(work)
        shutil.rmtree(work, ignore_errors=True)
    return target


def _mirror() -> str:
    return os.environ.get("LABUP_DEBIAN_MIRROR") or DEFAULT_MIRROR


_SHOWN_STEPS = ("I: Retrieving", "I: Extracting", "I: Unpacking", "I: Configuring", "I: Base")


def _debootstrap(
    debootstrap: str, recipe: Recipe, rootfs: Path, mirror: str, progress: Progress
) -> None:
    argv = [debootstrap, "--variant=minbase"]
    if recipe.include:
        argv.append("--include=" + ",".join(recipe.include))
    argv += [recipe.suite, str(rootfs), mirror]
    progress(recipe.ref, f"debootstrap {recipe.suite} from {mirror} (about a minute, once)")
    tail: list[str] = []
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip()
            if not line:
                continue
            tail = [*tail[-14:], line]
            if line.startswith(_SHOWN_STEPS):
                progress(recipe.ref, line[3:])
        rc = proc.wait()
    if rc != 0:
        shown = "\n    ".join(tail)
        raise OfflineImageError(
            f"{recipe.ref}: debootstrap failed (exit {rc}):\n    {shown}",
            hint="check that the Debian mirror answers (LABUP_DEBIAN_MIRROR sets another)",
        )


def _trim(rootfs: Path, recipe: Recipe) -> None:
    for pattern in recipe.trim:
        for path in rootfs.glob(pattern):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
    for rel, target in recipe.symlinks:
        link = rootfs / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target)


def _unmount_under(path: Path) -> None:
    """Unmount anything an interrupted debootstrap left mounted inside ``path`` (proc, sys),
    so that removing the work folder never descends into a live filesystem."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return
    prefix = str(path.resolve()) + "/"
    points = [m.split()[1] for m in mounts if len(m.split()) > 1]
    for point in sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)


def _run(argv: list[str], ref: str, what: str) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, errors="replace", check=False)
    if proc.returncode != 0:
        tail = proc.stderr[-800:]
        raise OfflineImageError(f"{ref}: {what} failed (exit {proc.returncode}): {tail}")


def offline_images(client: Any) -> list[dict[str, Any]]:
    """Local images carrying ``labup.offline=true``: ref, id, size, recipe, created."""
    import docker

    try:
        images = client.api.images(filters={"label": f"{OFFLINE_LABEL}=true"})
    except docker.errors.APIError as e:
        raise EngineError(f"cannot list images: {e.explanation or e}") from e
    rows: list[dict[str, Any]] = []
    for image in images:
        for tag in image.get("RepoTags") or ["<untagged>"]:
            rows.append(
                {
                    "ref": tag,
                    "id": str(image.get("Id", ""))[7:19],
                    "size": int(image.get("Size") or 0),
                    "recipe": (image.get("Labels") or {}).get(RECIPE_LABEL, ""),
                    "created": int(image.get("Created") or 0),
                }
            )
    return sorted(rows, key=lambda r: str(r["ref"]))


def refs_for_labs(labs: Iterable[Lab]) -> list[str]:
    """Union of :func:`images_for_lab` over several labs, in first-seen order."""
    seen: dict[str, None] = {}
    for lab in labs:
        for ref in images_for_lab(lab):
            seen.setdefault(ref, None)
    return list(seen)
