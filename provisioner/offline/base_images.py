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

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from labspec.errors import EngineError, LabupError, UserInputError
from provisioner.offline.recipes import (
    OFFLINE_LABEL,
    RECIPE_LABEL,
    RECIPES,
    OfflineImageError,
    Progress,
    Recipe,
    normalise_ref,
    recipe_for,
    split_ref,
)
from provisioner.offline.rootfs import busybox_rootfs_tar, cached_rootfs


@dataclass(frozen=True)
class PrepareResult:
    ref: str
    action: Literal["present", "built", "pulled", "failed"]
    seconds: float
    detail: str = ""
    offline: bool = False  # the image present carries labup.offline=true


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

    changes = [
        *recipe.changes,
        f"LABEL {OFFLINE_LABEL}=true",
        f"LABEL {RECIPE_LABEL}={recipe.recipe_id}",
    ]
    try:
        # the whole reference as `repo`, as the docker CLI sends it: Podman 4.3 ignores a
        # separate `tag` and would name the image `python:latest`
        client.api.import_image(src=src, repository=recipe.ref, changes=changes)
    except docker.errors.APIError as e:
        raise OfflineImageError(
            f"{recipe.ref}: import into the engine failed: {e.explanation or e}"
        ) from e
    if image_labels(client, recipe.ref) is None:
        raise OfflineImageError(f"{recipe.ref}: the engine imported it under another name")


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


