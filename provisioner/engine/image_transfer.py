"""Images from one engine to another, and into a registry: ``docker save | docker load``
streamed through this process, tags, pushes. Each function takes docker SDK clients (any
transport: ``unix://``, ``tcp://``, ``ssh://``) and raises :class:`~labspec.errors.EngineError`
with the engine's own words.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from labspec.errors import EngineError

CHUNK = 1024 * 1024
Progress = Callable[[str], None]


def _noop(message: str) -> None:
    del message


def _split(ref: str) -> tuple[str, str]:
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    return (ref[:colon], ref[colon + 1:]) if colon > slash else (ref, "latest")


def image_info(client: Any, ref: str) -> dict[str, Any] | None:
    """``docker image inspect``; None when the engine has no such image."""
    import docker

    try:
        info: dict[str, Any] = client.api.inspect_image(ref)
    except docker.errors.ImageNotFound:
        return None
    except docker.errors.APIError as e:
        raise EngineError(f"cannot inspect image: {e.explanation or e}", resource=ref) from e
    return info


def image_id(client: Any, ref: str) -> str | None:
    info = image_info(client, ref)
    return None if info is None else str(info.get("Id", ""))


def copy_image(source: Any, target: Any, ref: str, *, host: str | None = None) -> int:
    """Stream ``ref`` from the engine of ``source`` into the engine of ``target``; bytes sent."""
    import docker

    sent = 0

    def counted(chunks: Iterator[bytes]) -> Iterator[bytes]:
        nonlocal sent
        for chunk in chunks:
            sent += len(chunk)
            yield chunk

    try:
        stream = source.api.get_image(ref, chunk_size=CHUNK)
        for event in target.api.load_image(counted(stream), quiet=True):
            if isinstance(event, dict) and event.get("error"):
                raise EngineError(f"docker load failed: {event['error']}", host=host,
                                  resource=ref)
    except docker.errors.APIError as e:
        raise EngineError(f"cannot copy the image: {e.explanation or e}", host=host,
                          resource=ref) from e
    if image_info(target, ref) is None:
        raise EngineError("the engine did not keep the image after docker load", host=host,
                          resource=ref)
    return sent


def tag_image(client: Any, source: str, ref: str, *, host: str | None = None) -> None:
    import docker

    repo, tag = _split(ref)
    try:
        client.api.tag(source, repo, tag, force=True)
    except docker.errors.APIError as e:
        raise EngineError(f"cannot tag {source} as {ref}: {e.explanation or e}", host=host) from e


def push_image(client: Any, ref: str, *, host: str | None = None,
               progress: Progress = _noop) -> str:
    """``docker push ref`` by the engine of ``client``; the pushed manifest's digest."""
    import docker

    repo, tag = _split(ref)
    digest = ""
    try:
        for event in client.api.push(repo, tag=tag, stream=True, decode=True):
            if event.get("error"):
                raise EngineError(f"push failed: {event['error']}", host=host, resource=ref)
            aux = event.get("aux") or {}
            if aux.get("Digest"):
                digest = str(aux["Digest"])
            status = event.get("status")
            if status and event.get("id") and status in ("Pushed", "Layer already exists"):
                progress(f"{ref}: {event['id']} {status.lower()}")
    except docker.errors.APIError as e:
        raise EngineError(f"push failed: {e.explanation or e}", host=host, resource=ref) from e
    if not digest:
        raise EngineError("the registry acknowledged no digest", host=host, resource=ref)
    return digest


def remove_tag(client: Any, ref: str) -> None:
    """Untag ``ref`` (the image stays while other names point at it); absent is fine."""
    import docker

    try:
        client.api.remove_image(ref, noprune=True)
    except docker.errors.NotFound:
        return
    except docker.errors.APIError as e:
        raise EngineError(f"cannot untag: {e.explanation or e}", resource=ref) from e
