"""Hostile bundles: nothing a bundle says can write outside --labs-dir, retag an image it does
not carry, or crash labup. Each class of attack, refused at open or before anything is written.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from provisioner.offline.bundle_extract import extract_labs
from provisioner.offline.bundle_format import MANIFEST_NAME, Bundle, BundleError

LABUP = str(Path(sys.executable).with_name("labup"))
SPEC = b"apiVersion: labup/v1\nkind: Lab\nname: one\n"


def _file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    return info, data


def _member(data: bytes) -> dict[str, Any]:
    return {"type": "file", "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _manifest(members: dict[str, Any], **over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "format": "labup-bundle/1",
        "created": "2026-01-01T00:00:00Z",
        "labup_version": "test",
        "labs": [{"key": "one", "id": None, "name": "one", "title": "One",
                  "folder": "labs/one", "spec": "labs/one/lab.yaml", "images": []}],
        "images": [],
        "members": members,
    }
    doc.update(over)
    return doc


def _tar(path: Path, entries: list[tuple[tarfile.TarInfo, bytes | None]],
         manifest: dict[str, Any] | bytes) -> Path:
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
        raw = manifest if isinstance(manifest, bytes) else json.dumps(manifest).encode()
        info, _ = _file(MANIFEST_NAME, raw)
        tar.addfile(info, io.BytesIO(raw))
    return path


def _good(path: Path, extra_files: dict[str, bytes] | None = None) -> Path:
    files = {"labs/one/lab.yaml": SPEC, **(extra_files or {})}
    return _tar(path, [_file(n, d) for n, d in files.items()],
                _manifest({n: _member(d) for n, d in files.items()}))


def test_a_plain_bundle_extracts(tmp_path: Path) -> None:
    with Bundle.open(_good(tmp_path / "b.tar", {"labs/one/sub/run.sh": b"echo hi\n"})) as b:
        folders = extract_labs(b, tmp_path / "labs")
    assert folders == [tmp_path / "labs" / "one"]
    assert (tmp_path / "labs/one/lab.yaml").read_bytes() == SPEC
    assert (tmp_path / "labs/one/sub/run.sh").read_bytes() == b"echo hi\n"


SPECIAL = {
    "hard link": (tarfile.LNKTYPE, "labs/one/lab.yaml"),
    "FIFO": (tarfile.FIFOTYPE, ""),
    "character device": (tarfile.CHRTYPE, ""),
    "block device": (tarfile.BLKTYPE, ""),
    "contiguous file": (tarfile.CONTTYPE, ""),
}


@pytest.mark.parametrize("claimed", ["dir", "file", "symlink"])
@pytest.mark.parametrize("kind", sorted(SPECIAL))
def test_links_fifos_and_devices_never_pass_as_anything(
    tmp_path: Path, kind: str, claimed: str
) -> None:
    tar_type, linkname = SPECIAL[kind]
    for prefix in ("labs/one/", "images/"):
        info = tarfile.TarInfo(prefix + "odd")
        info.type, info.linkname = tar_type, linkname
        claim: dict[str, Any] = {"type": claimed}
        if claimed == "file":
            claim.update(size=0, sha256=hashlib.sha256(b"").hexdigest())
        if claimed == "symlink":
            claim["target"] = "images/x"
        path = _tar(tmp_path / f"{kind}-{prefix[0]}.tar", [_file("labs/one/lab.yaml", SPEC),
                                                            (info, None)],
                    _manifest({"labs/one/lab.yaml": _member(SPEC), prefix + "odd": claim}))
        with pytest.raises(BundleError, match=rf"odd.* is a {kind}|odd.*: lab folders hold files"):
            Bundle.open(path)


def test_symlinks_in_lab_folders_are_refused_at_open(tmp_path: Path) -> None:
    """The CVE-2025-4517 shape: a symlink chain that tarfile's data filter let through. A lab
    folder holds regular files only, so no link under labs/ gets past the manifest."""
    entries: list[tuple[tarfile.TarInfo, bytes | None]] = [_file("labs/one/lab.yaml", SPEC)]
    members: dict[str, Any] = {"labs/one/lab.yaml": _member(SPEC)}
    step = "d" * 247
    for i in range(16):  # each link resolves inside, the chain as a whole reaches far out
        link = tarfile.TarInfo(f"labs/one/{'/'.join([step] * i + ['l'])}")
        link.type, link.linkname = tarfile.SYMTYPE, step
        entries.append((link, None))
        members[link.name] = {"type": "symlink", "target": "images/x"}
    escape = tarfile.TarInfo("labs/one/escape")
    escape.type, escape.linkname = tarfile.SYMTYPE, "../" * 40 + "etc"
    entries.append((escape, None))
    members[escape.name] = {"type": "symlink", "target": "images/x"}
    path = _tar(tmp_path / "cve.tar", entries, _manifest(members))
    with pytest.raises(BundleError, match="lab folders hold files only"):
        Bundle.open(path)
    assert not (tmp_path / "labs").exists()


@pytest.mark.parametrize(
    "name",
    ["labs/one/../../../tmp/x", "/etc/passwd", "labs/one/./x", "labs/one//x", "labs//x",
     "etc/x", "images/../labs/one/x", "labs/one/a\\..\\b", "labs"],
)
def test_member_names_must_be_clean_paths_under_labs_or_images(tmp_path: Path, name: str) -> None:
    members = {"labs/one/lab.yaml": _member(SPEC), name: _member(b"x")}
    path = _tar(tmp_path / "b.tar", [_file("labs/one/lab.yaml", SPEC), _file(name, b"x")],
                _manifest(members))
    with pytest.raises(BundleError, match=r"the bundle manifest is damaged.*member name"):
        Bundle.open(path)


def test_a_name_given_twice_is_refused(tmp_path: Path) -> None:
    entries: list[tuple[tarfile.TarInfo, bytes | None]] = [
        _file("labs/one/lab.yaml", SPEC), _file("labs/one/lab.yaml", b"other")]
    path = _tar(tmp_path / "b.tar", entries, _manifest({"labs/one/lab.yaml": _member(SPEC)}))
    with pytest.raises(BundleError, match="is in the tar twice"):
        Bundle.open(path)


def test_a_symlink_in_images_must_point_where_the_manifest_says(tmp_path: Path) -> None:
    link = tarfile.TarInfo("images/a/layer.tar")
    link.type, link.linkname = tarfile.SYMTYPE, "../../../../etc/shadow"
    members = {"labs/one/lab.yaml": _member(SPEC), "images/b/layer.tar": _member(b"L"),
               "images/a/layer.tar": {"type": "symlink", "target": "images/b/layer.tar"}}
    path = _tar(tmp_path / "b.tar", [_file("labs/one/lab.yaml", SPEC),
                                     _file("images/b/layer.tar", b"L"), (link, None)],
                _manifest(members))
    with pytest.raises(BundleError, match=r"symlink images/a/layer\.tar points to"):
        Bundle.open(path)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"format": "labup-bundle/1", "members": {"labs/one/lab.yaml": '
         b'{"type": "file", "size": 1e999, "sha256": "' + b"0" * 64 + b'"}}, '
         b'"labs": [], "images": []}', "expected a whole number"),
        (b'{"format": "labup-bundle/1", "members": {"labs/one/lab.yaml": '
         b'{"type": "file", "size": Infinity, "sha256": "x"}}}', "not valid JSON"),
        (b'{"format": "labup-bundle/1", "members": {"labs/one/lab.yaml": '
         b'{"type": "file", "size": true, "sha256": "' + b"0" * 64 + b'"}}, '
         b'"labs": [], "images": []}', "expected a whole number"),
        (b'{"format": "labup-bundle/1", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
         "nested too deeply"),
        (b'{"format": "labup-bundle/1", "members": [], "labs": [], "images": []}',
         "members: expected an object"),
        (b"\xff\xfe not utf-8", "not valid JSON"),
    ],
    ids=["1e999", "Infinity", "true-as-size", "100000-deep", "wrong-type", "not-utf8"],
)
def test_a_damaged_or_hostile_manifest_is_a_bundle_error(
    tmp_path: Path, raw: bytes, message: str
) -> None:
    path = _tar(tmp_path / "b.tar", [_file("labs/one/lab.yaml", SPEC)], raw)
    with pytest.raises(BundleError, match=message):
        Bundle.open(path)


@pytest.mark.parametrize("depth", ["1e999", "deep"])
def test_the_cli_says_exit_2_not_a_traceback_for_a_hostile_manifest(
    tmp_path: Path, depth: str
) -> None:
    size = b"1e999" if depth == "1e999" else b"1"
    nest = b', "x": ' + b"[" * 100_000 + b"]" * 100_000 if depth == "deep" else b""
    raw = (b'{"format": "labup-bundle/1", "members": {"labs/one/lab.yaml": {"type": "file", '
           b'"size": ' + size + b', "sha256": "' + b"0" * 64 + b'"}}, "labs": [], "images": []'
           + nest + b"}")
    path = _tar(tmp_path / "b.tar", [_file("labs/one/lab.yaml", SPEC)], raw)
    for argv in (["bundle", "inspect", str(path)],
                 ["bundle", "load", str(path), "--labs-dir", str(tmp_path / "labs")]):
        result = subprocess.run([LABUP, *argv], capture_output=True, text=True, timeout=60)
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr and "the bundle" in result.stderr
    assert not (tmp_path / "labs").exists()


def test_an_image_id_that_is_not_its_configs_digest_is_refused(tmp_path: Path) -> None:
    config = json.dumps({"rootfs": {"type": "layers", "diff_ids": []}}).encode()
    files = {"labs/one/lab.yaml": SPEC, "images/c.json": config}
    image = {"id": "sha256:" + "ab" * 32, "tags": ["python:3.11-slim"], "repo_digests": [],
             "size": 1, "config": "images/c.json", "layers": [],
             "save_entry": {"Config": "c.json", "RepoTags": ["python:3.11-slim"], "Layers": []},
             "labs": []}
    path = _tar(tmp_path / "b.tar", [_file(n, d) for n, d in files.items()],
                _manifest({n: _member(d) for n, d in files.items()}, images=[image]))
    with pytest.raises(BundleError, match=r"does not match its config images/c\.json"):
        Bundle.open(path)
    image["id"] = "sha256:" + hashlib.sha256(config).hexdigest()
    image["save_entry"] = {"Config": "other.json", "RepoTags": [], "Layers": []}
    path = _tar(tmp_path / "c.tar", [_file(n, d) for n, d in files.items()],
                _manifest({n: _member(d) for n, d in files.items()}, images=[image]))
    with pytest.raises(BundleError, match="its Config and Layers are not the image's"):
        Bundle.open(path)
    image["save_entry"] = {"Config": "c.json", "RepoTags": ["victim:1"], "Layers": []}
    path = _tar(tmp_path / "d.tar", [_file(n, d) for n, d in files.items()],
                _manifest({n: _member(d) for n, d in files.items()}, images=[image]))
    with Bundle.open(path) as bundle:  # docker's RepoTags never reach the engine
        assert bundle.manifest.images[0].load_entry() == {
            "Config": "c.json", "RepoTags": None, "Layers": []}


def test_extraction_never_writes_through_a_symlink_in_labs_dir(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "lab.yaml").write_text("precious\n")
    dest = tmp_path / "labs"
    dest.mkdir()
    (dest / "one").symlink_to(outside)  # a folder swapped for a link
    path = _good(tmp_path / "b.tar")
    with Bundle.open(path) as bundle, pytest.raises(BundleError, match="is not a folder"):
        extract_labs(bundle, dest)
    assert (outside / "lab.yaml").read_text() == "precious\n"
    (dest / "one").unlink()
    (dest / "one").mkdir()
    (dest / "one" / "lab.yaml").symlink_to(outside / "lab.yaml")  # a file swapped for a link
    with Bundle.open(path) as bundle:
        extract_labs(bundle, dest)
    assert (outside / "lab.yaml").read_text() == "precious\n"
    assert not (dest / "one" / "lab.yaml").is_symlink()
    assert (dest / "one" / "lab.yaml").read_bytes() == SPEC


def test_nothing_is_written_before_every_lab_file_verifies(tmp_path: Path) -> None:
    files = {"labs/one/lab.yaml": SPEC, "labs/one/z.txt": b"zzz"}
    members = {n: _member(d) for n, d in files.items()}
    members["labs/one/z.txt"]["sha256"] = hashlib.sha256(b"zzy").hexdigest()
    path = _tar(tmp_path / "b.tar", [_file(n, d) for n, d in files.items()], _manifest(members))
    with Bundle.open(path) as bundle, pytest.raises(BundleError, match="checksum mismatch"):
        extract_labs(bundle, tmp_path / "labs")
    assert not (tmp_path / "labs").exists()


def test_a_file_that_is_also_a_folder_is_refused(tmp_path: Path) -> None:
    path = _good(tmp_path / "b.tar", {"labs/one/a": b"1", "labs/one/a/b": b"2"})
    with Bundle.open(path) as bundle, pytest.raises(BundleError, match="both a file and a folder"):
        extract_labs(bundle, tmp_path / "labs")


def test_extracted_modes_keep_only_the_owners_execute_bit(tmp_path: Path) -> None:
    run, _ = _file("labs/one/run.sh", b"#!/bin/sh\n")
    run.mode = 0o6777
    entries: list[tuple[tarfile.TarInfo, bytes | None]] = [_file("labs/one/lab.yaml", SPEC),
                                                           (run, b"#!/bin/sh\n")]
    members = {"labs/one/lab.yaml": _member(SPEC), "labs/one/run.sh": _member(b"#!/bin/sh\n")}
    with Bundle.open(_tar(tmp_path / "b.tar", entries, _manifest(members))) as bundle:
        extract_labs(bundle, tmp_path / "labs")
    assert os.stat(tmp_path / "labs/one/run.sh").st_mode & 0o7777 == 0o755
    assert os.stat(tmp_path / "labs/one/lab.yaml").st_mode & 0o7777 == 0o644
