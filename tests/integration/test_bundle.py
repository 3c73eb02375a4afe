"""Offline bundles against the real engine: write, inspect, load what is missing, refuse damage."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest

import labspec
from provisioner.offline.bundle_format import IMAGES_PREFIX, MANIFEST_NAME, Bundle, BundleError
from provisioner.offline.bundle_load import load_bundle_into
from provisioner.offline.bundle_write import write_bundle

pytestmark = pytest.mark.docker

HELLO = Path(__file__).resolve().parents[1] / "data" / "bundle" / "hello"


@dataclass(frozen=True)
class AppImage:
    ref: str
    id: str
    token: str


def _build(client: Any, dockerfile: str, tag: str) -> str:
    data = dockerfile.encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    image, _ = client.images.build(fileobj=buf, custom_context=True, tag=tag, rm=True, forcerm=True)
    return str(image.id)


def _remove(client: Any, ref: str) -> None:
    with contextlib.suppress(docker.errors.ImageNotFound):
        client.images.remove(ref, force=True)


def _has(client: Any, ref: str) -> str | None:
    try:
        return str(client.images.get(ref).id)
    except docker.errors.ImageNotFound:
        return None


@pytest.fixture
def app_image(docker_client: Any, test_image: str, unique: str) -> Iterator[AppImage]:
    """An image only this test uses: the test image plus one layer with a unique file."""
    ref = f"labup-bundle-test/app:{unique}"
    dockerfile = (
        f"FROM {test_image}\n"
        f"RUN echo {unique} > /token && dd if=/dev/urandom of=/blob bs=1024 count=256\n"
    )
    image_id = _build(docker_client, dockerfile, ref)
    try:
        yield AppImage(ref, image_id, unique)
    finally:
        for tag in (ref, f"{ref}-alias"):
            _remove(docker_client, tag)
        _remove(docker_client, image_id)


@pytest.fixture
def course(docker_client: Any, app_image: AppImage, tmp_path: Path) -> Path:
    """A bundle of the hello lab (its busybox base) plus the unique app image."""
    lab = labspec.load_lab(HELLO / "lab.yaml")
    out = tmp_path / "course.tar"
    write_bundle(docker_client, [lab], out, images=[app_image.ref])
    return out


def _run(client: Any, image: str, argv: list[str]) -> str:
    out = client.containers.run(image, argv, remove=True)
    return out.decode().strip() if isinstance(out, bytes) else str(out).strip()


def test_bundle_holds_lab_files_images_once_and_a_checksummed_manifest(
    docker_client: Any, test_image: str, app_image: AppImage, course: Path
) -> None:
    with Bundle.open(course) as bundle:
        manifest = bundle.manifest
        assert bundle.verify() > 0
        names = bundle.tar.getnames()
        by_tag = {tag: img for img in manifest.images for tag in img.tags}
        # one docker save: the app image's base layers are the test image's, stored once
        # (docker writes a shared layer once and links to it)
        base = {bundle.resolve(name) for name in by_tag[test_image].layers}
        app = {bundle.resolve(name) for name in by_tag[app_image.ref].layers}
    assert names[-1] == MANIFEST_NAME  # written last: a truncated copy has none
    assert [lab.key for lab in manifest.labs] == ["bundle-hello"]
    lab = manifest.labs[0]
    assert lab.spec == "labs/hello/lab.yaml"
    assert lab.images == (test_image,)
    for rel in ("lab.yaml", "README.md", "web/Dockerfile", "web/index.html"):
        member = manifest.members[f"labs/hello/{rel}"]
        assert member.size == (HELLO / rel).stat().st_size
    assert by_tag[app_image.ref].id == app_image.id
    assert by_tag[test_image].id == docker_client.images.get(test_image).id
    assert by_tag[test_image].labs == ("bundle-hello",)
    assert base < app
    assert len(app) == len(by_tag[app_image.ref].layers)
    layer_files = [m for m in manifest.members.values() if m.name.endswith("/layer.tar")]
    assert sum(1 for m in layer_files if m.type == "file") == len(app)


def test_load_restores_a_removed_image_with_the_same_id_sending_only_what_is_missing(
    docker_client: Any, test_image: str, app_image: AppImage, course: Path
) -> None:
    docker_client.images.remove(app_image.ref)
    assert _has(docker_client, app_image.id) is None
    seen: list[tuple[int, int]] = []

    result = load_bundle_into(docker_client, course, progress=lambda s, t: seen.append((s, t)))

    assert result.loaded == (app_image.ref,)
    assert result.present == (test_image,)
    assert docker_client.images.get(app_image.ref).id == app_image.id
    assert _run(docker_client, app_image.ref, ["cat", "/token"]) == app_image.token
    with Bundle.open(course) as bundle:
        images_bytes = bundle.manifest.images_bytes
    # the base layers the engine has stayed behind; the unique layer (256 KiB) travelled
    assert result.bytes_skipped > 1_000_000
    assert 256 * 1024 < result.bytes_sent < images_bytes - result.bytes_skipped + 64 * 1024
    assert seen and seen[-1] == (result.bytes_sent, result.bytes_sent)


def test_a_second_load_sends_nothing(docker_client: Any, app_image: AppImage, course: Path) -> None:
    result = load_bundle_into(docker_client, course)
    assert result.sent_nothing
    assert result.attempts == 0
    assert result.loaded == ()
    assert app_image.ref in result.present


def test_image_present_under_another_tag_gets_the_tag_without_data(
    docker_client: Any, app_image: AppImage, course: Path
) -> None:
    docker_client.images.get(app_image.ref).tag(f"{app_image.ref}-alias")
    docker_client.images.remove(app_image.ref)  # the ID stays, held by the alias
    result = load_bundle_into(docker_client, course)
    assert result.tagged == (app_image.ref,)
    assert result.sent_nothing
    assert docker_client.images.get(app_image.ref).id == app_image.id


def test_load_of_everything_sends_the_whole_image_data(
    docker_client: Any, test_image: str, app_image: AppImage, course: Path
) -> None:
    result = load_bundle_into(docker_client, course, only_missing=False)
    with Bundle.open(course) as bundle:
        images_bytes = bundle.manifest.images_bytes
        ids = {tag: img.id for img in bundle.manifest.images for tag in img.tags}
    assert set(result.loaded) == {test_image, app_image.ref}
    assert result.bytes_skipped == 0
    assert result.bytes_sent >= images_bytes - 64 * 1024  # docker's json/VERSION files stay
    assert _has(docker_client, test_image) == ids[test_image]
    assert _has(docker_client, app_image.ref) == app_image.id


def test_an_interrupted_stream_is_retried_with_what_is_still_missing(
    docker_client: Any, app_image: AppImage, course: Path
) -> None:
    docker_client.images.remove(app_image.ref)
    calls = {"broken": False}

    def cut_once(sent: int, total: int) -> None:
        if not calls["broken"] and sent > total // 2:
            calls["broken"] = True
            raise ConnectionResetError("simulated network cut")

    result = load_bundle_into(docker_client, course, progress=cut_once)
    assert calls["broken"]
    assert result.attempts == 2
    assert result.loaded == (app_image.ref,)
    assert docker_client.images.get(app_image.ref).id == app_image.id


def test_a_truncated_bundle_is_refused_before_anything_is_loaded(
    docker_client: Any, app_image: AppImage, course: Path, tmp_path: Path
) -> None:
    cut = tmp_path / "cut.tar"
    data = course.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    docker_client.images.remove(app_image.ref)
    with pytest.raises(BundleError, match="truncated"):
        load_bundle_into(docker_client, cut)
    assert _has(docker_client, app_image.id) is None


def test_a_corrupt_layer_is_refused_naming_the_member(
    docker_client: Any, app_image: AppImage, course: Path
) -> None:
    with Bundle.open(course) as bundle:
        img = next(i for i in bundle.manifest.images if app_image.ref in i.tags)
        layer = bundle.resolve(img.layers[-1])  # the unique layer
        offset = bundle.tar.getmember(layer).offset_data + 1000
    with course.open("r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0xFF]))
    docker_client.images.remove(app_image.ref)
    with pytest.raises(BundleError, match=f"checksum mismatch in {layer}"):
        load_bundle_into(docker_client, course)
    assert _has(docker_client, app_image.id) is None
    assert layer.startswith(IMAGES_PREFIX)


def test_bundle_refuses_images_the_engine_lacks(
    docker_client: Any, unique: str, tmp_path: Path
) -> None:
    lab = labspec.load_lab(HELLO / "lab.yaml")
    missing = f"labup-bundle-test/absent:{unique}"
    out = tmp_path / "x.tar"
    with pytest.raises(BundleError, match=f"not on this engine: {missing}"):
        write_bundle(docker_client, [lab], out, images=[missing])
    assert not out.exists()
    assert not (tmp_path / "x.tar.part").exists()


# -- the command line -------------------------------------------------------------------------


def _labup(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from provisioner.cli.main import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_create_inspect_and_load(
    docker_client: Any, test_image: str, app_image: AppImage, tmp_path: Path
) -> None:
    out = tmp_path / "cli.tar"
    made = _labup("bundle", str(HELLO), "-o", str(out), "--image", app_image.ref)
    assert made.returncode == 0, made.stderr
    assert "1 lab(s), 2 image(s)" in made.stdout
    assert "checksums verified" in made.stdout

    shown = _labup("bundle", "inspect", str(out), "--verify", "--json")
    assert shown.returncode == 0, shown.stderr
    doc = json.loads(shown.stdout)
    assert doc["verified"] is True
    assert doc["labs"][0]["key"] == "bundle-hello"
    assert {t for img in doc["images"] for t in img["tags"]} == {test_image, app_image.ref}

    docker_client.images.remove(app_image.ref)
    labs_dir = tmp_path / "labs"
    loaded = _labup("bundle", "load", str(out), "--json", "--labs-dir", str(labs_dir))
    assert loaded.returncode == 0, loaded.stderr
    result = json.loads(loaded.stdout)
    assert result["loaded"] == [app_image.ref]
    assert docker_client.images.get(app_image.ref).id == app_image.id
    for rel in ("lab.yaml", "web/Dockerfile", "web/index.html"):
        assert (labs_dir / "hello" / rel).read_bytes() == (HELLO / rel).read_bytes()

    again = _labup("bundle", "load", str(out))
    assert again.returncode == 0, again.stderr
    assert "sent nothing" in again.stdout


def test_cli_refuses_a_truncated_bundle_with_exit_2(tmp_path: Path, course: Path) -> None:
    cut = tmp_path / "cut.tar"
    with course.open("rb") as src, cut.open("wb") as dst:
        shutil.copyfileobj(src, dst)
        dst.truncate(course.stat().st_size - 20_000)
    done = _labup("bundle", "load", str(cut))
    assert done.returncode == 2
    assert "truncated" in done.stderr
    assert "Traceback" not in done.stderr


def test_up_with_bundle_loads_the_missing_image_then_brings_the_lab_up(
    docker_client: Any, app_image: AppImage, course: Path, tmp_path: Path, unique: str
) -> None:
    lab_dir = tmp_path / "uses-app"
    lab_dir.mkdir()
    (lab_dir / "lab.yaml").write_text(
        "apiVersion: labup/v1\nkind: Lab\n"
        f"name: bundleup-{unique}\ntitle: Up from a bundle\n"
        f"images:\n  app:\n    ref: {app_image.ref}\n    pull: never\n"
        "containers:\n  app:\n    image: app\n"
        "    command: [sh, -c, \"trap 'exit 0' TERM INT; sleep 3600 & wait\"]\n"
    )
    docker_client.images.remove(app_image.ref)
    labup = [sys.executable, "-c", "from provisioner.cli.main import main; main()"]
    cli = [*labup, "up", str(lab_dir), "--no-check"]
    try:
        done = subprocess.run(
            [*cli, "--bundle", str(course)], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        assert f"bundle {course.name}: loaded {app_image.ref}" in done.stderr, done.stderr
        assert docker_client.images.get(app_image.ref).id == app_image.id
        container = docker_client.containers.get(f"bundleup-{unique}-app")
        assert container.status == "running"
        assert _run(docker_client, app_image.ref, ["cat", "/token"]) == app_image.token
    finally:
        subprocess.run(
            [*labup, "down", str(lab_dir)], capture_output=True, timeout=120
        )
