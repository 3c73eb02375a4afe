"""``image``: objectives of the image-building labs, from ``docker image inspect``.

```yaml
image: {image: app, max_size: 200MB, max_layers: 12, non_root: true, healthcheck: true,
        exposes: [8000], labels: {org.opencontainers.image.source: ".+"}, base_pinned: true}
```
``image`` is a key of the lab's ``images`` (its reference is used) or a plain reference.
``base_pinned`` reads the Dockerfile the lab builds the image from (or ``dockerfile``) with
buildkit's parser; where that parser is not installed, a check whose other assertions hold
is skipped with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provisioner.checks.container import ROOT_USERS
from provisioner.checks.context import (
    CheckContext,
    CheckError,
    as_int,
    human_size,
    parse_size,
    regex,
)
from provisioner.checks.dockerfile import dockerfile_path, parsed
from provisioner.checks.dockerfile_parser import Dockerfile, ParserUnavailable, unpinned_bases
from provisioner.checks.results import Outcome, failed, passed, skipped


def image_reference(ctx: CheckContext, name: str) -> str:
    for image in ctx.lab.images:
        if image.name == name:
            return image.ref
    return name


def check_image(ctx: CheckContext, spec: Mapping[str, Any]) -> Outcome:
    ref = image_reference(ctx, str(spec["image"]))
    data = ctx.engine.inspect_image(ref)
    if data is None:
        return failed(f"image {ref} is not on the engine (build it first)")
    config: dict[str, Any] = data.get("Config") or {}
    facts: list[str] = []
    if "max_size" in spec:
        limit = parse_size(spec["max_size"])
        size = int(data.get("Size") or 0)
        if size > limit:
            return failed(f"{ref} is {human_size(size)}, over the limit of {human_size(limit)}")
        facts.append(f"{human_size(size)} <= {human_size(limit)}")
    if "max_layers" in spec:
        layers = len((data.get("RootFS") or {}).get("Layers") or [])
        limit_layers = as_int(spec["max_layers"], "max_layers")
        if layers > limit_layers:
            return failed(f"{ref} has {layers} layers, at most {limit_layers} allowed")
        facts.append(f"{layers} layers")
    if spec.get("non_root") is True:
        user = str(config.get("User") or "")
        if user.split(":", 1)[0] in ROOT_USERS:
            return failed(f"{ref} runs as {user or 'root (no USER)'}")
        facts.append(f"user {user}")
    if spec.get("healthcheck") is True:
        test = (config.get("Healthcheck") or {}).get("Test") or []
        if not test or test[0] == "NONE":
            return failed(f"{ref} has no HEALTHCHECK")
        facts.append("healthcheck")
    exposed = set((config.get("ExposedPorts") or {}).keys())
    for port in spec.get("exposes") or []:
        text = str(port)
        key = text if "/" in text else f"{as_int(port, 'exposes')}/tcp"
        if key not in exposed:
            shown = ", ".join(sorted(exposed)) or "none"
            return failed(f"{ref} does not expose {key} (exposes {shown})")
        facts.append(f"exposes {key}")
    labels: dict[str, str] = config.get("Labels") or {}
    for name, pattern_text in (spec.get("labels") or {}).items():
        if name not in labels:
            return failed(f"{ref} has no label {name}")
        pattern = regex(str(pattern_text), f"labels.{name}")
        if not pattern.search(labels[name]):
            return failed(f"{ref} label {name}={labels[name]!r} does not match /{pattern.pattern}/")
        facts.append(f"label {name}")
    if spec.get("base_pinned") is True:
        source = (
            {"path": spec["dockerfile"]} if spec.get("dockerfile") else {"image": spec["image"]}
        )
        try:
            path = dockerfile_path(ctx, source)
        except CheckError as e:
            return failed(f"base_pinned: {e.message}")
        df = parsed(path)
        if isinstance(df, ParserUnavailable):  # everything else held: the rest is unknown
            return skipped(f"{ref}: " + ", ".join([*facts, f"base_pinned not checked: {df}"]))
        if not isinstance(df, Dockerfile):
            return failed(f"{ref}: docker build cannot read {path.name}: {df}")
        bad = unpinned_bases(df)
        if bad:
            shown = ", ".join(f"line {line}: FROM {base}" for line, base in bad)
            return failed(f"{ref}: base image not pinned to a tag ({path.name} {shown})")
        facts.append("base pinned")
    return passed(f"{ref}: " + (", ".join(facts) or "present"))
