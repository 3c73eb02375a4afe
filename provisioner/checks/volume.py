"""``volume``: data a container writes survives the container being replaced.

```yaml
volume: {volume: data, container: db, path: /var/lib/postgresql/data}
```
The check proves persistence declaratively, in three steps:

1. the volume exists and the container mounts it (at ``path`` when given), as the engine
   reports it: otherwise what the container writes lands in its writable layer and dies
   with it;
2. a marker file (``marker``, default ``.labup-marker``) recording the container's id is
   written *through the container* at the mount point and read back;
3. a marker left by an earlier container is reported: after the container was replaced
   (``labup test`` does this: check, recreate the container, check again) the message says
   which container wrote the data that survived.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from provisioner.checks.context import CheckContext, CheckError, shorten
from provisioner.checks.results import Outcome, failed, passed

MARKER = ".labup-marker"
_SEPARATOR = "@@labup-marker@@"
_SWAP = 'cat -- "$2" 2>/dev/null; echo "$3"; printf "%s\\n" "$1" > "$2" && cat -- "$2"'


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

    container_id = str(data.get("Id", ""))
    text = _marker_text(container_id)
    # one exec: print the marker an earlier container left (if any), then write ours
    result = ctx.exec(key, ["sh", "-c", _SWAP, "sh", text, marker_path, _SEPARATOR])
    if result.rc != 0:
        raise CheckError(
            f"cannot write a marker at {marker_path} in {name}: {shorten(result.stderr)}"
        )
    before, _, after = result.stdout.partition(_SEPARATOR + "\n")
    if after.strip() != text:
        return failed(f"a marker written at {marker_path} in {name} does not read back")
    earlier = _writer(before)
    message = f"{name} writes {dest} into volume {volume}"
    if earlier and earlier != container_id[:12]:
        message += f"; data written by an earlier container ({earlier}) survived its replacement"
    return passed(message)
