"""The labels every resource labup creates carries; the engine is the source of truth."""

from __future__ import annotations

PREFIX = "labup."
LAB = "labup.lab"  # lab key: "lab5" or the slug
INSTANCE = "labup.instance"  # instance name; "default" when none is given
KIND = "labup.kind"  # "container" | "network" | "volume" | "image"
RESOURCE = "labup.resource"  # the resource's key in the spec
CONFIG_HASH = "labup.config-hash"  # hash of the desired configuration
RUN_ID = "labup.run"  # id of the `up` run that created it (cleanup of a failed run)
SPEC_PATH = "labup.spec"  # the spec file it came from (for status)
ORIGIN = "labup.origin"  # "catalog" or "spec:PATH": with the lab key, the lab's identity
MANAGED = "labup.managed"  # "true": present on everything labup made

DEFAULT_INSTANCE = "default"


def resource_name(lab_key: str, instance: str, key: str) -> str:
    """Readable, predictable Docker name: ``lab5-web``, or ``lab5-alice-web`` with an instance."""
    if instance == DEFAULT_INSTANCE:
        return f"{lab_key}-{key}"
    return f"{lab_key}-{instance}-{key}"


def selector(lab_key: str, instance: str | None = None) -> dict[str, str]:
    """Label filter for everything of one lab (and instance)."""
    sel = {MANAGED: "true", LAB: lab_key}
    if instance is not None:
        sel[INSTANCE] = instance
    return sel
