"""Images a lab needs: pull when missing, build from the lab folder when the context changed.

A built image carries ``labup.build-hash``, a hash of its context files, Dockerfile, build args
and target; when the hash matches, nothing is rebuilt. Errors show the failing build step and
its output, or the image, the registry's error and how to prepare images offline.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from labspec.errors import EngineError
from labspec.model import BuildSpec, Lab
from provisioner.engine import labels as L
from provisioner.lifecycle.config_hash import BUILD_HASH

if TYPE_CHECKING:
    from provisioner.engine.protocol import Engine
    from provisioner.lifecycle.progress import Reporter


class ImageInspector(Protocol):
    def inspect_image(self, ref: str) -> dict[str, Any] | None: ...


class ImageStep(NamedTuple):
    key: str  # images key, or the reference for plain container images
    ref: str
    action: str  # "create" (pull or build) / "keep"
    reason: str = ""  # "pull", "build", "context changed", ...
    build: BuildSpec | None = None
    build_hash: str | None = None
    pull: str = "missing"


def build_hash(build: BuildSpec) -> str:
    """Hash of everything that decides a build's result: context files, Dockerfile, args, target."""
    h = hashlib.sha256()
    h.update(f"dockerfile={build.dockerfile}\ntarget={build.target}\n".encode())
    for k, v in sorted(build.args.items()):
        h.update(f"arg {k}={v}\n".encode())
    context = Path(build.context)
    ignore = _dockerignore(context)
    for path in sorted(_walk(context)):
        rel = path.relative_to(context).as_posix()
        if rel != ".dockerignore" and _ignored(rel, ignore) and rel != build.dockerfile:
            continue
        mode = "x" if os.access(path, os.X_OK) else "-"
        h.update(f"file {rel} {mode} {path.stat().st_size}\n".encode())
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()[:16]


def _walk(root: Path) -> list[Path]:
    files: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        files.extend(Path(dirpath) / f for f in filenames)
    return files


def _dockerignore(context: Path) -> list[str]:
    path = context / ".dockerignore"
    if not path.is_file():
        return []
    patterns = []
    for line in path.read_text(errors="replace").splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "!")):
            patterns.append(line.strip("/"))
    return patterns


def _ignored(rel: str, patterns: list[str]) -> bool:
    parts = rel.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(fnmatch.fnmatch(p, pat) for pat in patterns for p in prefixes)


def plan_images(engine: ImageInspector, lab: Lab) -> list[ImageStep]:
    """Which images to pull or build (one inspect per distinct image)."""
    steps: list[ImageStep] = []
    seen: set[str] = set()
    for image in lab.images:
        seen.add(image.ref)
        present = engine.inspect_image(image.ref)
        if image.build is not None:
            wanted = build_hash(image.build)
            have = ((present or {}).get("Config") or {}).get("Labels") or {}
            if present is None:
                steps.append(
                    ImageStep(image.name, image.ref, "create", "build", image.build, wanted)
                )
            elif have.get(BUILD_HASH) != wanted:
                steps.append(ImageStep(image.name, image.ref, "create", "build: context changed",
                                       image.build, wanted))
            else:
                steps.append(ImageStep(image.name, image.ref, "keep", "", image.build, wanted))
        elif image.pull == "always" or (present is None and image.pull != "never"):
            steps.append(ImageStep(image.name, image.ref, "create", "pull", pull=image.pull))
        elif present is None:
            steps.append(ImageStep(image.name, image.ref, "create", "missing (pull: never)",
                                   pull="never"))
        else:
            steps.append(ImageStep(image.name, image.ref, "keep", pull=image.pull))
    for c in lab.containers:
        if c.image_key is None and c.image not in seen:
            seen.add(c.image)
            if engine.inspect_image(c.image) is None:
                steps.append(ImageStep(c.image, c.image, "create", "pull"))
            else:
                steps.append(ImageStep(c.image, c.image, "keep"))
    return steps


def ensure_images(
    engine: Engine,
    lab: Lab,
    steps: list[ImageStep],
    reporter: Reporter,
    *,
    run_id: str,
    parallel: int = 4,
) -> None:
    """Pull and build what the plan says, in parallel; raise EngineError on the first failure."""
    todo = [s for s in steps if s.action == "create"]
    if not todo:
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(parallel, len(todo))) as pool:
        futures = [pool.submit(_ensure_one, engine, lab, s, reporter, run_id) for s in todo]
        errors = [f.exception() for f in futures]
    for err in errors:
        if err is not None:
            raise err


def _ensure_one(
    engine: Engine, lab: Lab, step: ImageStep, reporter: Reporter, run_id: str
) -> None:
    t0 = time.monotonic()
    if step.build is not None:
        build_image(engine, lab, step, reporter, run_id=run_id)
        reporter.resource("image", step.ref, "built", time.monotonic() - t0)
        return
    if step.pull == "never":
        raise EngineError(
            "image is not present and the spec says `pull: never`",
            resource=f"image {step.ref}",
            hint=_offline_hint(lab),
        )
    try:
        engine.pull_image(step.ref, lambda text: reporter.progress(step.ref, text))
    except EngineError as e:
        # the engine's error already says "could not pull" and names the image
        raise EngineError(e.detail, resource=f"image {step.ref}", hint=_offline_hint(lab)) from e
    reporter.resource("image", step.ref, "pulled", time.monotonic() - t0)


def _offline_hint(lab: Lab) -> str:
    ref = lab.id if lab.id is not None else lab.key
    return (
        "no registry reachable? bring the images from an offline bundle: "
        f"`labup bundle {ref} -o course.tar` where they are present, then "
        f"`labup up {ref} --bundle course.tar` (a classroom: "
        "`labup bundle load course.tar -i INVENTORY`); or build them offline for this engine: "
        f"`labup images prepare {ref} --offline`"
    )


def build_image(
    engine: Engine, lab: Lab, step: ImageStep, reporter: Reporter, *, run_id: str
) -> None:
    assert step.build is not None
    labels: Mapping[str, str] = {
        L.MANAGED: "true",
        L.LAB: lab.key,
        L.KIND: "image",
        L.RESOURCE: step.key,
        L.RUN_ID: run_id,
        BUILD_HASH: step.build_hash or "",
    }
    from provisioner.lifecycle.bind_guard import check_build_context

    check_build_context(Path(step.build.context), image=step.ref)
    output: list[str] = []
    current_step = ""
    step_output: list[str] = []
    for event in engine.build_image(
        context=str(step.build.context),
        dockerfile=step.build.dockerfile,
        tag=step.ref,
        buildargs=step.build.args,
        target=step.build.target,
        labels=labels,
    ):
        text = str(event.get("stream", ""))
        for line in text.splitlines():
            if line.startswith("Step ") and " : " in line:
                current_step = line.strip()
                step_output = []
            elif line.strip() and not line.startswith((" ---> ", "Removing intermediate")):
                step_output.append(line.rstrip())
            output.append(line.rstrip())
            if line.strip():
                reporter.progress(step.ref, line.strip()[:100])
        if "error" in event or "errorDetail" in event:
            message = str(event.get("error") or (event.get("errorDetail") or {}).get("message"))
            tail = "\n".join(f"    {line}" for line in step_output[-15:])
            where = f"failed at {current_step}" if current_step else "failed"
            body = f"build {where}: {message.strip()}"
            if tail:
                body += f"\n  output of that step:\n{tail}"
            # A FROM whose base image is missing and cannot be pulled (no registry): say how
            # to get base images without one.
            offline = current_step.split(" : ", 1)[-1].upper().startswith("FROM ")
            hint = None
            if offline:
                hint = _offline_hint(lab)
            raise EngineError(body, resource=f"image {step.ref}", hint=hint)
