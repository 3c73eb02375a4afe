"""The bundle format without an engine: manifest, verification, the docker-load subset."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from labspec.errors import UserInputError
from provisioner.offline.bundle_extract import extract_labs
from provisioner.offline.bundle_format import (
    FORMAT,
    MANIFEST_NAME,
    Bundle,
    BundledImage,
    BundledLab,
    BundleError,
    Manifest,
    Member,
    describe,
)
from provisioner.offline.bundle_load import (
    BLOCK,
    LoadResult,
    _Counter,
    _stream,
    _subset_parts,
    chain_ids,
    split_tag,
)

D1, D2, D3 = (f"sha256:{c * 64}" for c in "abc")


def _config(diffs: list[str]) -> bytes:
    return json.dumps({"rootfs": {"type": "layers", "diff_ids": diffs}}).encode()


def _image(hexid: str, tag: str, layers: list[str]) -> BundledImage:
    return BundledImage(
        id=f"sha256:{hexid}",
        tags=(tag,),
        repo_digests=(),
        size=1000,
        config=f"images/{hexid}.json",
        layers=tuple(f"images/{x}/layer.tar" for x in layers),
        save_entry={
            "Config": f"{hexid}.json",
            "RepoTags": [tag],
            "Layers": [f"{x}/layer.tar" for x in layers],
        },
        labs=("lab1",),
    )


CONFIG1, CONFIG2 = _config([D1, D2]), _config([D1, D2, D3])
HEX1, HEX2 = (hashlib.sha256(c).hexdigest() for c in (CONFIG1, CONFIG2))  # an ID is its digest
BASE = _image(HEX1, "base:1", ["l1", "l2"])
APP = _image(HEX2, "app:1", ["l1", "l2b", "l3"])  # l2b is a link to l2's data

FILES = {
    "labs/one/lab.yaml": b"kind: Lab\n",
    "images/l1/layer.tar": b"A" * 3000,
    "images/l2/layer.tar": b"B" * 700,
    "images/l3/layer.tar": b"C" * 1500,
    f"images/{HEX1}.json": CONFIG1,
    f"images/{HEX2}.json": CONFIG2,
    "images/manifest.json": b"[]",
}
LINKS = {"images/l2b/layer.tar": "../l2/layer.tar"}


def _write(path: Path, *, files: dict[str, bytes] = FILES, manifest: object = None,
           extra: dict[str, bytes] | None = None, skip: str = "") -> Path:
    members: dict[str, Member] = {}
    with tarfile.open(path, "w") as tar:
        for name, data in {**files, **(extra or {})}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
            if not extra or name not in extra:
                members[name] = Member(name, "file", len(data), hashlib.sha256(data).hexdigest())
        for name, link in LINKS.items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, link
            tar.addfile(info)
            members[name] = Member(name, "symlink", target="images/l2/layer.tar")
        if skip:
            members[skip] = Member(skip, "file", 1, "0" * 64)
        doc = manifest if manifest is not None else Manifest(
            created="2026-01-01T00:00:00Z",
            labup_version="test",
            labs=(
                BundledLab("lab1", 1, "one", "One", "labs/one", "labs/one/lab.yaml", ("base:1",)),
            ),
            images=(BASE, APP),
            members=members,
        ).to_json()
        data = json.dumps(doc).encode()
        info = tarfile.TarInfo(MANIFEST_NAME)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return path


def test_chain_ids_follow_dockers_rule() -> None:
    second = "sha256:" + hashlib.sha256(f"{D1} {D2}".encode()).hexdigest()
    third = "sha256:" + hashlib.sha256(f"{second} {D3}".encode()).hexdigest()
    assert chain_ids([D1, D2, D3]) == [D1, second, third]
    assert chain_ids([]) == []


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("python:3.11-slim", ("python", "3.11-slim")),
        ("labup-test/busybox:latest", ("labup-test/busybox", "latest")),
        ("registry:5000/team/app", ("registry:5000/team/app", "latest")),
        ("registry:5000/team/app:2", ("registry:5000/team/app", "2")),
        ("alpine", ("alpine", "latest")),
    ],
)
def test_split_tag_knows_a_registry_port_from_a_tag(ref: str, expected: tuple[str, str]) -> None:
    assert split_tag(ref) == expected


def test_manifest_round_trips_through_json(tmp_path: Path) -> None:
    with Bundle.open(_write(tmp_path / "b.tar")) as bundle:
        again = Manifest.from_json(bundle.manifest.to_json(), source="x")
        assert again == bundle.manifest
        assert bundle.verify() == sum(len(v) for v in FILES.values())
        assert bundle.resolve("images/l2b/layer.tar") == "images/l2/layer.tar"
        summary = describe(bundle.manifest)
    assert summary["labs"][0]["files_bytes"] == len(FILES["labs/one/lab.yaml"])
    assert summary["images"][1]["tags"] == ["app:1"]


def test_lab_folders_extract_into_a_labs_dir(tmp_path: Path) -> None:
    with Bundle.open(_write(tmp_path / "b.tar")) as bundle:
        folders = extract_labs(bundle, tmp_path / "labs")
    assert folders == [tmp_path / "labs" / "one"]
    assert (tmp_path / "labs" / "one" / "lab.yaml").read_bytes() == FILES["labs/one/lab.yaml"]
    assert not (tmp_path / "labs" / "l1").exists()  # image data stays in the bundle


def test_a_flipped_byte_is_a_checksum_mismatch_naming_the_member(tmp_path: Path) -> None:
    path = _write(tmp_path / "b.tar")
    with Bundle.open(path) as bundle:
        offset = bundle.tar.getmember("images/l3/layer.tar").offset_data
    raw = bytearray(path.read_bytes())
    raw[offset + 10] ^= 0x01
    path.write_bytes(bytes(raw))
    with Bundle.open(path) as bundle, pytest.raises(
        BundleError, match=r"checksum mismatch in images/l3/layer.tar: the bundle is corrupt"
    ):
        bundle.verify()


@pytest.mark.parametrize(
    "where", ["inside a layer", "before the manifest", "inside the manifest", "at 30%"]
)
def test_a_truncated_bundle_says_so(tmp_path: Path, where: str) -> None:
    path = _write(tmp_path / "b.tar")
    with tarfile.open(path) as tar:
        layer = tar.getmember("images/l3/layer.tar")
        manifest = tar.getmember(MANIFEST_NAME)
    cut = {
        "inside a layer": layer.offset_data + 100,
        "before the manifest": manifest.offset,
        "inside the manifest": manifest.offset_data + manifest.size // 2,
        "at 30%": int(path.stat().st_size * 0.3),
    }[where]
    data = path.read_bytes()
    path.write_bytes(data[:cut])
    with pytest.raises(BundleError, match="truncated"), Bundle.open(path) as bundle:
        bundle.verify()


def test_not_a_tar_and_no_file_are_clear(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"hello, this is not a tar file at all" * 20)
    with pytest.raises(BundleError, match=r"junk\.tar: not a readable tar file"):
        Bundle.open(junk)
    with pytest.raises(BundleError, match=r"nope\.tar: no such bundle file"):
        Bundle.open(tmp_path / "nope.tar")


def test_a_tar_without_manifest_is_not_a_bundle(tmp_path: Path) -> None:
    path = tmp_path / "plain.tar"
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("hello.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    expected = r"no labup-bundle\.json inside.*last member found is hello\.txt"
    with pytest.raises(BundleError, match=expected):
        Bundle.open(path)


def test_wrong_format_and_damaged_manifest_are_refused(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match=f"not a labup bundle manifest.*expected '{FORMAT}'"):
        Bundle.open(_write(tmp_path / "a.tar", manifest={"format": "other/9"}))
    with pytest.raises(BundleError, match="the bundle manifest is damaged"):
        Bundle.open(_write(tmp_path / "b.tar", manifest={"format": FORMAT, "labs": []}))


def test_members_missing_or_unlisted_are_refused(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="member images/ghost listed in the manifest is missing"):
        Bundle.open(_write(tmp_path / "a.tar", skip="images/ghost"))
    with pytest.raises(BundleError, match="members not in the manifest: images/sneaky"):
        Bundle.open(_write(tmp_path / "b.tar", extra={"images/sneaky": b"x"}))


def _subset_tar(bundle: Bundle, images: list[BundledImage], skip: frozenset[str]) -> tuple[
    tarfile.TarFile, int, int
]:
    parts, skipped = _subset_parts(bundle, images, skip)
    counter = _Counter(sum(p.length for p in parts) + 2 * BLOCK, None)
    data = b"".join(_stream(bundle, parts, counter))
    assert counter.sent == len(data) == counter.total
    return tarfile.open(fileobj=io.BytesIO(data)), skipped, len(data)


def test_subset_holds_only_the_asked_images_and_copies_links_whose_target_stays(
    tmp_path: Path,
) -> None:
    with Bundle.open(_write(tmp_path / "b.tar")) as bundle:
        tar, skipped, _ = _subset_tar(bundle, [APP], frozenset())
    with tar:
        names = tar.getnames()
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
        linked = tar.getmember("l2b/layer.tar")
        copied = tar.extractfile(linked).read()  # type: ignore[union-attr]
    assert skipped == 0
    # the stream's entry carries no tags: the engine tags nothing itself, labup tags by ID
    assert manifest == [{**APP.save_entry, "RepoTags": None}]
    assert names == ["manifest.json", f"{HEX2}.json", "l1/layer.tar", "l2b/layer.tar",
                     "l3/layer.tar"]
    assert linked.isfile() and copied == FILES["images/l2/layer.tar"]


def test_subset_keeps_a_link_when_its_target_travels_too(tmp_path: Path) -> None:
    with Bundle.open(_write(tmp_path / "b.tar")) as bundle:
        tar, _, _ = _subset_tar(bundle, [BASE, APP], frozenset())
    with tar:
        link = tar.getmember("l2b/layer.tar")
    assert link.issym() and link.linkname == "../l2/layer.tar"


def test_subset_leaves_out_layers_whose_chain_the_engine_has(tmp_path: Path) -> None:
    have = frozenset(chain_ids([D1, D2]))  # the engine has BASE
    with Bundle.open(_write(tmp_path / "b.tar")) as bundle:
        tar, skipped, size = _subset_tar(bundle, [APP], have)
        _, _, full = _subset_tar(bundle, [APP], frozenset())
    with tar:
        names = tar.getnames()
    assert names == ["manifest.json", f"{HEX2}.json", "l3/layer.tar"]
    assert skipped == 3000 + 700
    assert size < full - 3000


def test_load_result_summary_and_json() -> None:
    done = LoadResult(host="h1", loaded=("app:1",), present=("base:1",), bytes_sent=2_500_000,
                      bytes_skipped=1_000_000, seconds=1.25, attempts=1)
    assert done.summary() == (
        "loaded app:1; 1 already present; sent 2.5 MB (skipped 1.0 MB of layers it had) in 1.2s"
    )
    assert done.as_dict()["loaded"] == ["app:1"]
    idle = LoadResult(host="h2", present=("base:1", "app:1"))
    assert idle.sent_nothing and idle.summary() == "2 already present; sent nothing in 0.0s"


def test_bundle_command_defaults_to_create() -> None:
    from provisioner.cli.main import app

    result = CliRunner().invoke(app, ["bundle", "987654", "-o", "x.tar"])
    assert isinstance(result.exception, UserInputError)
    assert "no lab 987654 in the catalog" in str(result.exception)
