"""Root filesystems for offline images: the host's static busybox, or a debootstrap of Debian.

The trimmed debootstrap root is cached as a tarball under the cache folder (``LABUP_CACHE_DIR``),
so a second build is a plain import.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

from provisioner.offline.recipes import OfflineImageError, Progress, Recipe

DEFAULT_MIRROR = "http://deb.debian.org/debian"


def cache_dir() -> Path:
    """Where cached root filesystems live: ``$LABUP_CACHE_DIR`` or ``~/.cache/labup``."""
    override = os.environ.get("LABUP_CACHE_DIR")
    if override:
        return Path(override).expanduser() / "offline"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "labup" / "offline"


def _noop(ref: str, message: str) -> None:
    """Progress that goes nowhere."""


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
    slug = f"{recipe.cache_name or recipe.method}-{recipe.suite}"
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
        # root filesystems of older versions of this recipe (NAME-SUITE-KEY.tar, nothing else)
        for stale in folder.glob(f"{slug}-*.tar"):
            own = re.fullmatch(rf"{re.escape(slug)}-[0-9a-f]{{12}}\.tar", stale.name)
            if stale != target and own:
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


