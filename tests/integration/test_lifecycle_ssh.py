"""The same lifecycle on a remote engine over SSH (the classroom's test host h1)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from classroom import Classroom
from labfactory import make_lab, on, service

from labspec.model import Host, Mount, Network, Volume
from provisioner import lifecycle
from provisioner.engine.connect import connect
from provisioner.lifecycle.progress import QuietReporter

pytestmark = [pytest.mark.docker, pytest.mark.ssh]

LABUP = str(Path(sys.executable).with_name("labup"))


def test_up_noop_status_down_over_ssh(
    classroom: Classroom, each_engine: Host, unique: str, tmp_path: Path
) -> None:
    """On dockerd 20.10 (h1), dockerd 26 (hdocker26) and Podman 4.3 (hpodman)."""
    h1 = each_engine
    engine = connect(h1.url, host_label=h1.name, key=classroom.key,
                     known_hosts=h1.known_hosts)
    key = f"ssh{unique}"
    lab = make_lab(key, tmp_path, [
        service("web", networks=on("a", "b"), mounts=(Mount("volume", "/d", "data"),)),
        service("client", networks=on("a")),
    ], networks=[Network("a"), Network("b")], volumes=[Volume("data")])
    try:
        assert engine.raw is None  # requests go through the SSH-backed SDK session
        first = lifecycle.up(engine, lab, reporter=QuietReporter(), checks=False)
        assert first.ok and not first.noop
        got = engine.exec(f"{key}-client", ["ping", "-c", "1", "-W", "2", "web"])
        assert got.rc == 0, got.stdout + got.stderr
        assert lifecycle.up(engine, lab, reporter=QuietReporter(), checks=False).noop
        (st,) = lifecycle.status(engine, key)
        assert st.state == "running" and len(st.containers) == 2
        # the CLI reaches the same engine with --host ssh://...
        env = {**os.environ, "LABUP_SSH_KEY": str(classroom.key),
               "LABUP_KNOWN_HOSTS": str(h1.known_hosts)}
        out = subprocess.run([LABUP, "status", key, "--host", h1.url], capture_output=True,
                             text=True, env=env, timeout=60)
        assert out.returncode == 0, out.stderr
        assert f"{key} [default] running" in out.stdout
        down = lifecycle.down(engine, key, volumes=True, reporter=QuietReporter())
        assert down.ok and len(down.removed) == 5
        assert lifecycle.status(engine, key) == []
    finally:
        lifecycle.down(engine, key, volumes=True, reporter=QuietReporter())
        engine.close()
