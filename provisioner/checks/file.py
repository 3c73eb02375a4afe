"""``file``: a file exists (or not), with content, mode, owner; in a container or a volume.

```yaml
file: {container: web, path: /etc/nginx/conf.d/app.conf, content_regex: "proxy_pass"}
file: {volume: data, path: notes.txt, mode: "0644", owner: "1000"}   # path inside the volume
file: {container: web, path: /root/.ssh/id_rsa, exists: false}
```
In a container, existence, type and mode come from the engine (nothing runs in the
container); ``content_regex`` runs ``cat`` there, ``owner`` / ``group`` run ``stat`` (the
image needs them then). In a volume, a running container that mounts it is asked the same
way; without one, a probe mounts the volume read-only.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from provisioner.checks.context import (
    VOLUME_MOUNT,
    CheckBlocked,
    CheckContext,
    CheckError,
    regex,
    shorten,
)
from provisioner.checks.results import Outcome, failed, passed

STAT_FORMAT = "%F|%a|%u|%U|%g|%G"
_SEPARATOR = "@@labup-content@@"
_VOLUME_SCRIPT = (
    'stat -c "$1" -- "$2" || exit 3; '
    'if [ "$3" = 1 ] && [ -f "$2" ]; then echo "$4"; cat -- "$2"; fi'
)


@dataclass(frozen=True)
class FileFacts:
    exists: bool
    kind: str = ""
    mode: int = 0
    uid: str = ""
    user: str = ""
    gid: str = ""
    group: str = ""
    content: str | None = None
    error: str = ""


def _parse_stat(line: str) -> FileFacts:
    parts = line.strip().split("|")
    if len(parts) != 6:
        raise CheckError(f"unexpected stat output {line[:80]!r}")
    kind, mode, uid, user, gid, group = parts
    return FileFacts(True, kind, int(mode, 8), uid, user, gid, group)


def _facts_in_container(
    ctx: CheckContext, key: str, path: str, content: bool, names: bool = False
) -> FileFacts:
    """Facts of ``path`` in container ``key``. Type and mode come from the engine's own stat
    (no exec, no tools needed in the image); content costs one ``cat`` exec; owner and group
    (``names``) one ``stat`` exec, which also gives the user and group names."""
    if not names:
        stat = ctx.engine.stat_path(ctx.container_id(key), path)
        if stat is None:
            return FileFacts(False, error="No such file or directory")
        facts = facts_from_engine_stat(stat)
    else:
        result = ctx.exec(key, ["stat", "-c", STAT_FORMAT, "--", path])
        if result.rc in (126, 127) or "executable file not found" in result.stderr:
            raise CheckError(
                f"`stat` is not available in {ctx.name(key)}: {shorten(result.stderr)}"
            )
        if result.rc != 0:
            return FileFacts(False, error=shorten(result.stderr))
        facts = _parse_stat(result.stdout.splitlines()[0] if result.stdout else "")
    if content and facts.kind.startswith("regular"):
        cat = ctx.exec(key, ["cat", "--", path])
        if cat.rc != 0:
            raise CheckError(f"cannot read {path}: {shorten(cat.stderr)}")
        facts = FileFacts(**{**facts.__dict__, "content": cat.stdout})
    return facts


# Go's os.FileMode, as the engine reports it: type bits above the permission bits
_GO_TYPES = (
    (1 << 31, "directory"),
    (1 << 27, "symbolic link"),
    (1 << 25, "fifo"),
    (1 << 24, "socket"),
)
_GO_DEVICE, _GO_CHAR_DEVICE = 1 << 26, 1 << 21
_GO_SPECIAL = ((1 << 23, 0o4000), (1 << 22, 0o2000), (1 << 20, 0o1000))  # setuid, setgid, sticky


def facts_from_engine_stat(stat: Mapping[str, Any]) -> FileFacts:
    """FileFacts from ``Engine.stat_path``, in the words of ``stat -c %F`` (busybox's)."""
    mode = int(stat.get("mode") or 0)
    kind = next((name for bit, name in _GO_TYPES if mode & bit), "")
    if not kind and mode & _GO_DEVICE:
        kind = "character special file" if mode & _GO_CHAR_DEVICE else "block special file"
    if not kind:
        kind = "regular empty file" if int(stat.get("size") or 0) == 0 else "regular file"
    perm = mode & 0o777
    for bit, extra in _GO_SPECIAL:
        if mode & bit:
            perm |= extra
    return FileFacts(True, kind, perm)


def _mounting_container(ctx: CheckContext, volume: str) -> tuple[str, str] | None:
    """A running lab container that mounts ``volume``, and where: (key, mount point)."""
    docker_name = ctx.name(volume)
    for container in ctx.lab.containers:
        if not any(m.type == "volume" and m.source == volume for m in container.mounts):
            continue
        try:
            data = ctx.lookup(container.name)
        except CheckBlocked:
            continue  # replaced by someone else's: never read through it
        if data is None or not (data.get("State") or {}).get("Running"):
            continue
        for mount in data.get("Mounts") or []:
            if mount.get("Type") == "volume" and mount.get("Name") == docker_name:
                return container.name, str(mount.get("Destination"))
    return None


def _facts_in_volume(
    ctx: CheckContext, volume: str, path: str, content: bool, names: bool
) -> tuple[FileFacts, str]:
    """Facts of a file in a volume, and through what they were read. A running lab
    container that mounts the volume is asked first (an exec is much cheaper than a probe
    container); without one, or without stat/cat or the rights there, a probe mounts the
    volume read-only."""
    relative = posixpath.normpath("/" + path.lstrip("/")).lstrip("/")
    via = _mounting_container(ctx, volume)
    if via is not None:
        key, dest = via
        target = posixpath.join(dest, relative) if relative else dest
        try:
            facts = _facts_in_container(ctx, key, target, content, names)
        except CheckError:
            facts = None  # no stat/cat there, or unreadable: a probe reads it below
        if facts is not None and "Permission denied" not in facts.error:
            return facts, f" (read through {ctx.name(key)})"
    full = posixpath.join(VOLUME_MOUNT, relative) if relative else VOLUME_MOUNT
    argv = [
        "sh",
        "-c",
        _VOLUME_SCRIPT,
        "sh",
        STAT_FORMAT,
        full,
        "1" if content else "0",
        _SEPARATOR,
    ]
    result = ctx.probe_volume(volume, argv, read_only=True)
    if result.rc == 3:
        return FileFacts(False, error=shorten(result.stderr)), ""
    if result.rc != 0:
        raise CheckError(f"probe failed (exit {result.rc}): {shorten(result.stderr)}")
    head, sep, body = result.stdout.partition(_SEPARATOR + "\n")
    facts = _parse_stat(head.splitlines()[0] if head else "")
    if sep:
        facts = FileFacts(**{**facts.__dict__, "content": body})
    return facts, ""


def check_file(ctx: CheckContext, spec: Mapping[str, Any]) -> Outcome:
    path = str(spec["path"])
    want_exists = spec.get("exists", True) is not False
    needs_content = "content_regex" in spec
    names = "owner" in spec or "group" in spec
    via = ""
    if "volume" in spec:
        where = f"volume {ctx.name(str(spec['volume']))}"
        facts, via = _facts_in_volume(ctx, str(spec["volume"]), path, needs_content, names)
    else:
        where = ctx.name(str(spec["container"]))
        facts = _facts_in_container(
            ctx, str(spec["container"]), path, needs_content, names
        )
    label = f"{path} in {where}{via}"
    if not facts.exists:
        if want_exists:
            return failed(f"{label} does not exist" + (f" ({facts.error})" if facts.error else ""))
        return passed(f"{label} does not exist, as expected")
    if not want_exists:
        return failed(f"{label} exists ({facts.kind}), expected it to be absent")
    found = [facts.kind]
    kind = spec.get("type")
    if kind == "file" and not facts.kind.startswith("regular"):
        return failed(f"{label} is a {facts.kind}, expected a regular file")
    if kind == "directory" and facts.kind != "directory":
        return failed(f"{label} is a {facts.kind}, expected a directory")
    if "mode" in spec:
        want_mode = int(str(spec["mode"]), 8)
        if facts.mode != want_mode:
            return failed(f"{label} has mode {facts.mode:04o}, expected {want_mode:04o}")
        found.append(f"mode {facts.mode:04o}")
    for field_name, ident, name in (
        ("owner", facts.uid, facts.user),
        ("group", facts.gid, facts.group),
    ):
        if field_name in spec:
            want = str(spec[field_name])
            if want not in (ident, name):
                return failed(f"{label} {field_name} is {name} ({ident}), expected {want}")
            found.append(f"{field_name} {name if name != 'UNKNOWN' else ident}")
    if needs_content:
        pattern = regex(str(spec["content_regex"]), "content_regex")
        if facts.content is None:
            return failed(f"{label} is a {facts.kind}, cannot match content")
        if not pattern.search(facts.content):
            return failed(f"{label} content does not match /{pattern.pattern}/")
        found.append(f"content matches /{pattern.pattern}/")
    return passed(f"{label}: " + ", ".join(found))
