"""``volume``: data a container writes survives the container being replaced.

```yaml
volume: {volume: data, container: db, path: /var/lib/postgresql/data}
```
The check proves persistence declaratively, in three steps:

1. the volume exists and the container mounts it (at ``path`` when given): otherwise
   what the container writes lands in its writable layer and dies with it;
2. a marker file (``marker``, default ``.labup-marker``) written *through the container*
   at ``path`` is read back *from the volume* by a probe that mounts only the volume;
3. a marker left by an earlier container is reported: after the container was replaced
   (``labup test`` does this: check, recreate the container, check again) the message says
   which container wrote the data that survived.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from provisioner.checks.context import VOLUME_MOUNT, CheckContext, CheckError, shorten
from provisioner.checks.results import Outcome, failed, passed

MARKER = ".labup-marker"
_WRITE = 'printf "%s\\n" "$1" > "$2"'


def _marker_text(container_id: str) -> str:
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    return f"labup-volume-marker container={container_id[:12]} written={stamp}"


def _writer(marker: str) -> str:
    for word in marker.split():
        if word.startswith("container="):
            return word.removeprefix("container=")
    return ""


def check_volume(ctx: CheckContext, spec: Mapping[str, Any]) -> Outcome:
    volume_key = str(spec["volume"])
    volume = ctx.name(volume_key)
    if ctx.engine.inspect_volume(volume) is None:
        return failed(f"volume {volume} does not exist")
    if "container" not in spec:
        return passed(f"volume {volume} exists")
    key = str(spec["container"])
    data = ctx.container(key)
    name = ctx.name(key)
    want_path = spec.get("path")
    mounts = [
        m for m in data.get("Mounts") or [] if m.get("Type") == "volume" and m.get("Name") == volume
    ]
    if not mounts:
        return failed(
            f"{name} does not mount volume {volume}: what it writes is lost when it is replaced"
        )
    mount = mounts[0]
    if want_path:
        matching = [m for m in mounts if m.get("Destination") == want_path]
        if not matching:
            return failed(
                f"{name} mounts volume {volume} at {mount.get('Destination')}, not at {want_path}"
            )
        mount = matching[0]
    dest = str(mount.get("Destination"))
    marker_name = str(spec.get("marker", MARKER)).strip("/")
    marker_path = posixpath.join(dest, marker_name)

    previous = ctx.exec(key, ["cat", "--", marker_path])
    earlier = _writer(previous.stdout) if previous.rc == 0 else ""
    container_id = str(data.get("Id", ""))
    text = _marker_text(container_id)
    wrote = ctx.exec(key, ["sh", "-c", _WRITE, "sh", text, marker_path])
    if wrote.rc != 0:
        raise CheckError(
            f"cannot write a marker at {marker_path} in {name}: {shorten(wrote.stderr)}"
        )
    seen = ctx.probe_volume(
        volume_key, ["cat", "--", posixpath.join(VOLUME_MOUNT, marker_name)], read_only=True
    )
    if seen.rc != 0 or seen.stdout.strip() != text:
        return failed(
            f"a marker written at {marker_path} in {name} is not in volume {volume}: "
            f"{dest} is not backed by the volume"
        )
    message = f"{name} writes {dest} into volume {volume}"
    if earlier and earlier != container_id[:12]:
        message += f"; data written by an earlier container ({earlier}) survived its replacement"
    return passed(message)
