"""A hostile bundle against the real engine: the tags applied are exactly the manifest's."""

from __future__ import annotations

import contextlib
import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from provisioner.offline.bundle_format import MANIFEST_NAME, BundleError
from provisioner.offline.bundle_load import load_bundle_into
from provisioner.offline.bundle_write import write_bundle

pytestmark = pytest.mark.docker


def _build(client: Any, base: str, token: str, tag: str) -> str:
    dockerfile = f"FROM {base}\nRUN echo {token} > /token\n".encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
    buf.seek(0)
    image, _ = client.images.build(fileobj=buf, custom_context=True, tag=tag, rm=True)
    return str(image.id)


def _image_id(client: Any, ref: str) -> str | None:
    try:
        return str(client.images.get(ref).id)
    except docker.errors.ImageNotFound:
        return None


def _rewrite_manifest(path: Path, out: Path, change: Any) -> Path:
    """A copy of the bundle whose manifest went through ``change`` (everything else as is)."""
    with tarfile.open(path) as src, tarfile.open(out, "w") as dst:
        for member in src.getmembers():
            data = src.extractfile(member) if member.isfile() else None
            if member.name == MANIFEST_NAME:
                assert data is not None
                doc = change(json.loads(data.read()))
                raw = json.dumps(doc).encode()
                member.size = len(raw)
                dst.addfile(member, io.BytesIO(raw))
            else:
                dst.addfile(member, data)
    return out


@pytest.fixture
def hostile(docker_client: Any, test_image: str, unique: str) -> Iterator[dict[str, str]]:
    names = {
        "shown": f"labup-sec-test/shown:{unique}",
        "victim": f"labup-sec-test/victim:{unique}",
    }
    names["id"] = _build(docker_client, test_image, unique, names["shown"])
    victim_id = _build(docker_client, test_image, unique + "-victim", names["victim"])
    names["victim_id"] = victim_id
    try:
        yield names
    finally:
        for ref in (names["shown"], names["victim"], names["id"], victim_id):
            with contextlib.suppress(docker.errors.ImageNotFound, docker.errors.APIError):
                docker_client.images.remove(ref, force=True)


def test_a_bundle_cannot_put_a_tag_it_does_not_show_on_an_image(
    docker_client: Any, hostile: dict[str, str], tmp_path: Path
) -> None:
    honest = tmp_path / "honest.tar"
    write_bundle(docker_client, [], honest, images=[hostile["shown"]])

    def retag(doc: dict[str, Any]) -> dict[str, Any]:
        # docker's own entry (what `docker load` applies) names the victim; the manifest,
        # which labup shows, names another tag
        for image in doc["images"]:
            image["save_entry"]["RepoTags"] = [hostile["victim"]]
        return doc

    bundle = _rewrite_manifest(honest, tmp_path / "retag.tar", retag)
    docker_client.images.remove(hostile["shown"], force=True)
    assert _image_id(docker_client, hostile["id"]) is None

    result = load_bundle_into(docker_client, bundle)

    assert result.loaded == (hostile["shown"],)
    assert dict(result.applied) == {hostile["shown"]: hostile["id"]}
    assert f"loaded {hostile['shown']} ({hostile['id'][7:19]})" in result.summary()
    assert _image_id(docker_client, hostile["shown"]) == hostile["id"]
    # the victim tag still points where it did: the bundle's RepoTags never reached the engine
    assert _image_id(docker_client, hostile["victim"]) == hostile["victim_id"]


def test_a_bundle_cannot_claim_an_image_id_it_does_not_carry(
    docker_client: Any, hostile: dict[str, str], tmp_path: Path
) -> None:
    honest = tmp_path / "honest.tar"
    write_bundle(docker_client, [], honest, images=[hostile["shown"]])

    def claim(doc: dict[str, Any]) -> dict[str, Any]:
        doc["images"][0]["id"] = hostile["victim_id"]  # "you have it already, just tag it"
        return doc

    bundle = _rewrite_manifest(honest, tmp_path / "claim.tar", claim)
    with pytest.raises(BundleError, match="does not match its config"):
        load_bundle_into(docker_client, bundle)
    assert _image_id(docker_client, hostile["shown"]) == hostile["id"]
