"""SFTP copy of a lab folder to a test host (the learner's copy there): only what changed is
sent, a learner's edits are kept, reset restores the lab's files, binds resolve there."""

from __future__ import annotations

import posixpath
from pathlib import Path

import pytest
from classroom import TEST_IMAGE, Classroom

from labspec.model import Container, Lab, Mount
from provisioner.engine.ssh_docker import ssh_session_of
from provisioner.targets.file_sync import MANIFEST, remote_lab, sync_lab

pytestmark = [pytest.mark.docker, pytest.mark.ssh]


def _lab(folder: Path) -> Lab:
    site = folder / "site"
    (site / "css").mkdir(parents=True)
    (site / "index.html").write_text("<h1>v1</h1>\n")
    (site / "css" / "main.css").write_text("h1 { color: red }\n")
    (folder / "app.conf").write_text("port=80\n")
    (folder / "notes.txt").write_text("not mounted: for the learner to read\n")
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "x.pyc").write_bytes(b"never sent")
    web = Container(
        name="web",
        image=TEST_IMAGE,
        command=("sh", "-c", "trap 'exit 0' TERM INT; sleep 3600 & wait"),
        mounts=(
            Mount(type="bind", source=str(site), target="/site", read_only=True),
            Mount(type="bind", source=str(folder / "app.conf"), target="/etc/app.conf"),
        ),
    )
    return Lab(api_version="labup/v1", id=None, name="synctest", title="sync", description="",
               path=folder / "lab.yaml", folder=folder, containers=(web,))


def test_sync_sends_only_what_changed_and_binds_resolve_remotely(
    classroom: Classroom, tmp_path: Path, unique: str
) -> None:
    client = classroom.client("h1")
    session = ssh_session_of(client)
    assert session is not None
    sftp = session.sftp()
    base = str(classroom.state / "h1" / f"sync-{unique}")
    lab = _lab(tmp_path / "lab")
    box = None
    try:
        first = sync_lab(sftp, lab, instance="default", base=base)
        assert first.remote_folder == posixpath.join(base, "labs", "synctest-default")
        assert sorted(first.uploaded) == ["app.conf", "notes.txt", "site/css/main.css",
                                          "site/index.html"]
        assert first.unchanged == () and first.removed == () and first.kept == ()
        # the manifest lives beside the folder, where no container of the lab sees it
        assert MANIFEST not in sftp.listdir(first.remote_folder)
        assert posixpath.basename(first.remote_folder) + MANIFEST in sftp.listdir(
            posixpath.dirname(first.remote_folder))
        assert "__pycache__" not in sftp.listdir(first.remote_folder)

        again = sync_lab(sftp, lab, instance="default", base=base)
        assert again.uploaded == () and again.bytes_sent == 0
        assert len(again.unchanged) == 4

        (lab.folder / "site" / "index.html").write_text("<h1>v2</h1>\n")
        (lab.folder / "site" / "css" / "main.css").unlink()
        changed = sync_lab(sftp, lab, instance="default", base=base)
        assert changed.uploaded == ("site/index.html",)
        assert changed.removed == ("site/css/main.css",)

        # the learner edits a file on the host and adds one: a second up keeps both
        remote = first.remote_folder
        with sftp.open(posixpath.join(remote, "app.conf"), "w") as fh:
            fh.write("port=8080 learner\n")
        with sftp.open(posixpath.join(remote, "Dockerfile"), "w") as fh:
            fh.write("FROM busybox:1.36\n")
        (lab.folder / "app.conf").write_text("port=81\n")  # the lab changed it too
        kept = sync_lab(sftp, lab, instance="default", base=base)
        assert kept.uploaded == () and kept.kept == ("app.conf",)
        with sftp.open(posixpath.join(remote, "app.conf")) as fh:
            assert fh.read() == b"port=8080 learner\n"
        assert "Dockerfile" in sftp.listdir(remote)

        # reset: the lab's files again, and nothing the lab does not have
        healed = sync_lab(sftp, lab, instance="default", base=base, restore=True)
        assert healed.uploaded == ("app.conf",) and healed.removed == ("Dockerfile",)
        assert "Dockerfile" not in sftp.listdir(remote)
        (lab.folder / "app.conf").write_text("port=80\n")
        healed = sync_lab(sftp, lab, instance="default", base=base)
        assert healed.uploaded == ("app.conf",)

        there = remote_lab(lab, healed.remote_folder)
        assert there.folder == Path(healed.remote_folder)
        mount = there.containers[0].mounts[0]
        assert mount.source == posixpath.join(healed.remote_folder, "site")
        binds = {m.source: {"bind": m.target, "mode": "ro"} for m in there.containers[0].mounts}
        box = client.containers.run(
            TEST_IMAGE, list(there.containers[0].command or ()), detach=True,
            name=f"labup-sync-{unique}", volumes=binds,
        )
        out = box.exec_run(["cat", "/site/index.html", "/etc/app.conf"]).output.decode()
        assert out == "<h1>v2</h1>\nport=80\n"
    finally:
        if box is not None:
            box.remove(force=True)
        session.run(["rm", "-rf", base])


def test_the_sftp_channel_is_safe_to_share_between_threads(classroom: Classroom) -> None:
    """up resolves the bind sources of several containers at once over the one SFTP channel:
    every thread gets its own answer, and none waits forever for one another thread read."""
    import threading

    session = ssh_session_of(classroom.client("h1"))
    assert session is not None
    sftp = session.sftp()
    home = sftp.normalize(".")
    errors: list[BaseException] = []

    def ask(k: int) -> None:
        try:
            for i in range(40):
                path = "/tmp/../tmp/." if (i + k) % 2 else "/etc/../etc"
                assert sftp.normalize(path) in ("/tmp", "/etc")
                assert sftp.normalize(".") == home
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=ask, args=(k,), daemon=True) for k in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "an SFTP answer was lost"
    assert errors == []
