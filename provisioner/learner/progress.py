"""``labup progress``: every lab of the course at a glance, from the learner's state folder.

One row per lab of the catalog (not started yet: an empty row) and per other lab instance the
learner checked: objectives passed, score, when it was last checked, hints used, and how many
objectives ``labup solve`` did. ``--json`` is the same as a document (documented in
docs/checks.md); ``--reset N`` forgets a lab.
"""

from __future__ import annotations

from typing import Any

from labspec.model import Lab
from provisioner.learner.state import LabRecord, LocalStore

JSON_VERSION = 1


def rows(labs: list[Lab], store: LocalStore) -> list[dict[str, Any]]:
    """A row per catalog lab (its default instance) and per other recorded lab instance."""
    records = {(r.lab, r.instance): r for r in store.records()}
    out: list[dict[str, Any]] = []
    for lab in labs:
        record = records.pop((lab.key, "default"), None)
        out.append(_row(lab.key, lab.id, lab.title, "default",
                        sum(1 for c in lab.checks if c.stage == "task"), record))
    for (key, instance), record in sorted(records.items()):
        out.append(_row(key, record.lab_id, record.title, instance, record.objectives, record))
    return out


def _row(key: str, lab_id: int | None, title: str, instance: str, objectives: int,
         record: LabRecord | None) -> dict[str, Any]:
    if record is None or not record.last_checked:
        return {"lab": key, "id": lab_id, "title": title, "instance": instance,
                "started": False, "passed": 0, "objectives": objectives, "score": 0.0,
                "total": 0.0, "last_checked": "", "hints_used": 0, "solved": [],
                "learner": "", "variant": {}}
    return {"lab": key, "id": lab_id, "title": record.title or title, "instance": instance,
            "started": True, "passed": record.passed,
            "objectives": record.objectives or objectives, "score": record.score,
            "total": record.total, "last_checked": record.last_checked,
            "hints_used": record.hints_used, "solved": record.solved,
            "learner": record.learner, "variant": dict(record.variant)}


def document(table: list[dict[str, Any]], store: LocalStore) -> dict[str, Any]:
    started = [r for r in table if r["started"]]
    return {
        "version": JSON_VERSION,
        "state": store.where,
        "labs": table,
        "passed": sum(r["passed"] for r in table),
        "objectives": sum(r["objectives"] for r in table),
        "started": len(started),
        "complete": sum(1 for r in started if r["objectives"] and r["passed"] == r["objectives"]),
    }


def text_rows(table: list[dict[str, Any]]) -> list[list[str]]:
    shown = []
    for r in table:
        name = str(r["id"] if r["id"] is not None else r["lab"])
        if r["instance"] != "default":
            name += f" ({r['instance']})"
        if not r["started"]:
            shown.append([name, r["title"], f"0/{r['objectives']}", "-", "not started", "-", ""])
            continue
        solved = f"{len(r['solved'])} solved by labup" if r["solved"] else ""
        when = r["last_checked"].replace("T", " ").removesuffix("Z")
        shown.append([name, r["title"], f"{r['passed']}/{r['objectives']}",
                      f"{r['score']:g}/{r['total']:g}", when, str(r["hints_used"]), solved])
    return shown
