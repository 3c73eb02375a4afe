"""``--only-failed``: the hosts that failed in the last fleet run, kept next to the inventory.

``classroom.yml`` keeps them in ``.classroom.yml.labup-failed.json``, per command verb (``up``
reruns what the last ``up`` left failed, even if a ``status`` ran since) and as the last run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from labspec.errors import UserInputError

FAILED_FILE_SUFFIX = ".labup-failed.json"



def failed_file(inventory_path: Path) -> Path:
    """``classroom.yml`` keeps its last failures in ``.classroom.yml.labup-failed.json``."""
    return inventory_path.with_name(f".{inventory_path.name}{FAILED_FILE_SUFFIX}")


def record_failed(
    inventory_path: Path, command: str, failed: Sequence[str], ran: Sequence[str]
) -> Path | None:
    """Remember which hosts failed (an empty list when none did), per command verb and as the
    last run; None when the inventory's folder is not writable."""
    path = failed_file(inventory_path)
    entry = {
        "command": command,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "failed": list(failed),
        "ran": list(ran),
    }
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
        by_verb = dict(old.get("by_command", {})) if isinstance(old, dict) else {}
    except (OSError, ValueError):
        by_verb = {}
    by_verb[_verb(command)] = entry
    doc = {**entry, "by_command": by_verb}
    try:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)
    except OSError:
        return None
    return path


def _verb(command: str) -> str:
    return command.split()[0] if command.split() else command


def load_failed(inventory_path: Path, command: str | None = None) -> tuple[str, tuple[str, ...]]:
    """(command, failed hosts) of the last recorded run of the same verb as ``command`` (``up``
    reruns what the last ``up`` left failed, even if a ``status`` ran since), else of the last
    run; a clear error when nothing is recorded."""
    path = failed_file(inventory_path)
    try:
        doc: Mapping[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        entry = doc
        if command is not None:
            entry = doc.get("by_command", {}).get(_verb(command), doc)
        failed = tuple(str(h) for h in entry["failed"])
        recorded = str(entry.get("command", "?"))
    except FileNotFoundError as e:
        raise UserInputError(
            f"--only-failed: no earlier fleet run is recorded for {inventory_path}",
            hint="run the command once without --only-failed",
        ) from e
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise UserInputError(f"--only-failed: cannot read {path}: {e}") from e
    return recorded, failed
