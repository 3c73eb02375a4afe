"""Load a bundle's images into an engine, sending only what the engine lacks.

For each image of the bundle the engine is asked first, by image ID:

- present with every tag: nothing to send;
- present under another tag (same ID): the tag is added, nothing sent;
- absent: its config and layers go into ONE ``docker load`` stream, re-packed on the fly
  from the bundle's members (a docker-save subset: ``manifest.json`` listing only these
  images, and no tags: ``RepoTags`` is null whatever the bundle's copy of docker's entry
  says). Layers whose chain is already on the engine (because an image of the bundle
  that shares them is present) are left out: the engine's loader reuses its own copy and
  never opens their files. Engines using the containerd image store, and Podman, read
  every layer of the archive, so they get all the layers of the images they lack.

After the load, labup tags each image with exactly the manifest's tags, by image ID (which
the bundle cannot fake: it is the digest of the config, checked at open), and the result names
every tag it applied with the image ID it now points to.

The bundle's checksums are verified before anything is sent. An interrupted stream is
retried: the engine is asked again what it lacks, and only that is sent.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labspec.errors import EngineError
from provisioner.engine.capabilities import is_podman
from provisioner.offline.bundle_format import Bundle, BundledImage
from provisioner.offline.bundle_stream import (
    BLOCK,
    _Counter,
    _stream,
    _subset_parts,
    chain_ids,
)
from provisioner.offline.bundle_stream import diff_ids as _diff_ids

__all__ = ["BLOCK", "LoadPlan", "LoadResult", "_Counter", "_stream", "_subset_parts",
           "chain_ids", "load_bundle_into", "plan_load", "split_tag"]

LoadProgress = Callable[[int, int], None]  # (bytes sent, bytes to send)


@dataclass(frozen=True)
class LoadResult:
    """What a load did on one engine."""

    host: str
    loaded: tuple[str, ...] = ()  # tags of the images whose data was sent
    tagged: tuple[str, ...] = ()  # image already there by ID: only the tag was added
    present: tuple[str, ...] = ()  # already there, same ID and tag
    bytes_sent: int = 0  # bytes of the docker-load stream(s)
    bytes_skipped: int = 0  # layer bytes left out because the engine already had them
    seconds: float = 0.0
    attempts: int = 0  # load streams started (0 when nothing was missing)
    messages: tuple[str, ...] = field(default=(), compare=False)
    applied: tuple[tuple[str, str], ...] = ()  # (tag, image ID) of every tag this load set

    def _with_ids(self, tags: tuple[str, ...]) -> str:
        ids = dict(self.applied)
        return ", ".join(
            f"{t} ({ids[t].split(':', 1)[-1][:12]})" if t in ids else t for t in tags
        )

    @property
    def sent_nothing(self) -> bool:
        return self.bytes_sent == 0

    def summary(self) -> str:
        """One line for people: what was loaded, tagged, already there, and the bytes sent."""
        parts = []
        if self.loaded:
            parts.append(f"loaded {self._with_ids(self.loaded)}")
        if self.tagged:
            parts.append(f"tagged {self._with_ids(self.tagged)}")
        if self.present:
            parts.append(f"{len(self.present)} already present")
        sent = f"sent {self.bytes_sent / 1e6:.1f} MB" if self.bytes_sent else "sent nothing"
        if self.bytes_skipped:
            sent += f" (skipped {self.bytes_skipped / 1e6:.1f} MB of layers it had)"
        return f"{'; '.join(parts) or 'nothing to load'}; {sent} in {self.seconds:.1f}s"

    @property
    def document(self) -> dict[str, Any]:
        """What a fleet run's ``--json`` shows for this host."""
        return self.as_dict()

    def as_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "loaded": list(self.loaded),
            "tagged": list(self.tagged),
            "present": list(self.present),
            "bytes_sent": self.bytes_sent,
            "bytes_skipped": self.bytes_skipped,
            "seconds": round(self.seconds, 3),
            "attempts": self.attempts,
            "applied": [{"tag": tag, "id": image_id} for tag, image_id in self.applied],
        }


@dataclass(frozen=True)
class LoadPlan:
    present: tuple[str, ...]
    tag: tuple[tuple[str, str], ...]  # (image id, tag to add)
    load: tuple[BundledImage, ...]
    present_chains: frozenset[str]  # layer chain IDs the engine has (from present images)


def _image_id(api: Any, ref: str) -> str | None:
    import docker.errors
    import requests

    try:
        return str(api.inspect_image(ref)["Id"])
    except docker.errors.ImageNotFound:
        return None
    except docker.errors.APIError as e:
        raise EngineError(f"cannot inspect image {ref}: {e.explanation or e}") from e
    except (requests.exceptions.RequestException, OSError) as e:
        raise EngineError(f"the engine stopped answering (inspecting {ref}): {e}") from e


def split_tag(ref: str) -> tuple[str, str]:
    """``repo:tag`` -> (repo, tag); ``registry:5000/app`` -> (that, "latest")."""
    repo, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:
        return ref, "latest"
    return repo, tag


def plan_load(api: Any, bundle: Bundle) -> LoadPlan:
    """Ask the engine which images of the bundle it has (by ID, then by tag)."""
    present: list[str] = []
    tag: list[tuple[str, str]] = []
    load: list[BundledImage] = []
    chains: set[str] = set()
    for image in bundle.manifest.images:
        if _image_id(api, image.id) is None:
            load.append(image)
            continue
        chains.update(chain_ids(_diff_ids(bundle, image)))
        for ref in image.tags:
            if "@" in ref or _image_id(api, ref) == image.id:  # a digest cannot be a tag
                present.append(ref)
            else:
                tag.append((image.id, ref))
    return LoadPlan(tuple(present), tuple(tag), tuple(load), frozenset(chains))


def _containerd_store(api: Any) -> bool:
    try:
        info = api.info()
    except Exception:  # an engine that cannot say: send every layer, the safe choice
        return True
    if is_podman(info):  # its loader reads every layer of the archive: never leave one out
        return True
    status = info.get("DriverStatus") or []
    return any("containerd.snapshotter" in str(v) for row in status for v in row)


def _send(api: Any, body: Iterator[bytes], timeout: float) -> list[str]:
    """POST /images/load with a streamed body; returns the engine's messages."""
    import docker.errors

    try:
        response = api._post(
            api._url("/images/load"),
            data=body,
            params={"quiet": "1"},
            headers={"Content-Type": "application/x-tar"},
            stream=True,
            timeout=timeout,
        )
        api._raise_for_status(response)
    except docker.errors.APIError as e:
        raise EngineError(f"docker load failed: {e.explanation or e}") from e
    messages: list[str] = []
    try:
        for line in response.iter_lines():
            if not line.strip():
                continue
            item = json.loads(line)
            if item.get("error"):
                raise EngineError(f"docker load failed: {item['error']}")
            text = str(item.get("stream", "")).strip()
            if text:
                messages.append(text)
    finally:
        response.close()
    return messages


def load_bundle_into(
    client: Any,
    bundle_path: str | Path,
    *,
    progress: LoadProgress | None = None,
    host: str = "local",
    verify: bool = True,
    only_missing: bool = True,
    attempts: int = 2,
    timeout: float = 900.0,
) -> LoadResult:
    """Load the images of ``bundle_path`` that the engine of ``client`` lacks.

    ``client`` is a docker SDK client (local socket or SSH). ``verify`` checks every
    checksum of the bundle before anything is sent (pass False when the caller verified the
    same file already, e.g. once for a whole fleet). ``only_missing=False`` sends every image
    (the plain ``docker load`` of the whole bundle, for comparison). ``progress(sent, total)``
    is called as the stream goes. A failed stream is retried up to ``attempts`` times in all,
    each time sending only what is still missing. Raises :class:`BundleError` for a bad
    bundle (before anything is sent) and :class:`EngineError` when the engine fails.
    """
    try:
        return _load(
            client.api, Path(bundle_path), progress=progress, host=host, verify=verify,
            only_missing=only_missing, attempts=attempts, timeout=timeout,
        )
    except EngineError as e:
        if e.host is None:
            raise EngineError(e.message, host=host, hint=e.hint) from e
        raise


def _load(
    api: Any,
    bundle_path: Path,
    *,
    progress: LoadProgress | None,
    host: str,
    verify: bool,
    only_missing: bool,
    attempts: int,
    timeout: float,
) -> LoadResult:
    import requests

    started = time.monotonic()
    with Bundle.open(bundle_path) as bundle:
        if verify:
            bundle.verify()
        plan = plan_load(api, bundle)
        if not only_missing:
            plan = LoadPlan((), (), bundle.manifest.images, frozenset())
        for image_id, ref in plan.tag:
            _tag(api, image_id, ref, host)
        tagged = tuple(ref for _, ref in plan.tag)
        applied = list(plan.tag)
        loaded: list[str] = []
        messages: list[str] = []
        sent = skipped = tries = 0
        todo = plan.load
        use_skip = only_missing and bool(todo) and not _containerd_store(api)
        chains = plan.present_chains
        while todo:
            tries += 1
            parts, skipped = _subset_parts(bundle, todo, chains if use_skip else frozenset())
            counter = _Counter(sum(p.length for p in parts) + 2 * BLOCK, progress)
            try:
                messages += _send(api, _stream(bundle, parts, counter), timeout)
                sent += counter.sent
            except (requests.exceptions.RequestException, OSError, EngineError) as e:
                sent += counter.sent
                if tries >= attempts:
                    if isinstance(e, EngineError):
                        raise EngineError(str(e), host=host) from e
                    raise EngineError(
                        f"loading images failed after {tries} attempt(s): {e}", host=host
                    ) from e
                messages.append(f"attempt {tries} failed ({e}); retrying what is missing")
                fresh = plan_load(api, bundle)
                todo, chains = fresh.load, fresh.present_chains
                continue
            still = [img for img in todo if _image_id(api, img.id) is None]
            if still:
                raise EngineError(
                    "the engine did not keep "
                    + ", ".join(t for img in still for t in img.tags)
                    + " after docker load",
                    host=host,
                )
            for img in todo:
                for ref in img.tags:
                    if "@" not in ref:  # a digest reference is not a tag
                        _tag(api, img.id, ref, host)
                        applied.append((img.id, ref))
                    loaded.append(ref)
            todo = ()
    return LoadResult(
        host=host,
        loaded=tuple(loaded),
        tagged=tagged,
        present=plan.present,
        bytes_sent=sent,
        bytes_skipped=skipped,
        seconds=time.monotonic() - started,
        attempts=tries,
        messages=tuple(messages),
        applied=tuple((ref, image_id) for image_id, ref in applied),
    )


def _tag(api: Any, image_id: str, ref: str, host: str) -> None:
    """Put tag ``ref`` on the image with ID ``image_id`` (moving it from any other image)."""
    repo, tag = split_tag(ref)
    try:
        api.tag(image_id, repo, tag, force=True)
    except Exception as e:
        raise EngineError(f"cannot tag {image_id[:19]} as {ref}: {e}", host=host) from e
