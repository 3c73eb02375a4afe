"""`labup serve --bind ADDRESS`: on an address other than loopback the dashboard asks for its
token on every request and on the event stream, and a POST needs the CSRF token too.

The address is one this test makes in a network namespace of its own (nothing else listens
or routes there); the dashboard, plain HTTP and a real browser all run inside it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser import missing
from classroom import REQUIRE
from served import served

pytestmark = [pytest.mark.docker, pytest.mark.slow]

ADDRESS = "10.217.0.1"  # only inside the namespace below
PROBE = Path(__file__).with_name("dashboard_probe.py")
SPEC = """\
apiVersion: labup/v1
kind: Lab
name: {name}
title: Token
containers:
  web:
    image: labup-test/busybox:latest
checks:
  - id: web-running
    container: {{container: web, state: running}}
"""


def _unavailable(reason: str) -> None:
    if REQUIRE:
        pytest.fail(f"{reason} (LABUP_REQUIRE_ENGINE=1)")
    pytest.skip(reason)


@pytest.fixture
def netns(unique: str) -> Iterator[str]:
    """A network namespace with only lo, which also holds ADDRESS."""
    if os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("nsenter") is None:
        _unavailable("a network namespace needs root, ip and nsenter")
    reason = missing()
    if reason is not None:
        _unavailable(f"no browser: {reason}")
    name = f"labup-dash-{unique[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        subprocess.run(["ip", "-n", name, "addr", "add", f"{ADDRESS}/32", "dev", "lo"],
                       check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def test_a_dashboard_on_another_address_asks_for_its_token_everywhere(
    docker_client: Any, netns: str, tmp_path: Path, unique: str
) -> None:
    spec = tmp_path / "lab.yaml"
    spec.write_text(SPEC.format(name=f"dash-token-{unique}"))  # never brought up
    inside = ["nsenter", f"--net=/var/run/netns/{netns}"]
    with served([str(spec), "--bind", ADDRESS, "--port", "0", "--every", "0"],
                prefix=inside) as dash:
        assert dash.url.startswith(f"http://{ADDRESS}:")
        assert dash.token and len(dash.token) >= 32
        assert dash.output.count(dash.token) == 1  # shown once
        probe = subprocess.run([*inside, sys.executable, str(PROBE), dash.url, dash.token],
                               capture_output=True, text=True, timeout=180, check=False)
        assert probe.returncode == 0, probe.stderr[-3000:]
        seen = json.loads(probe.stdout)
    assert dash.output.count(dash.token) == 1, dash.output  # and never again

    web = seen["http"]
    for what in ("page_without_token", "state_without_token", "events_without_token",
                 "report_without_token", "page_wrong_token", "state_wrong_bearer",
                 "post_csrf_without_token"):
        assert web[what] == 401, (what, web)
    status, location, cookie = web["page_with_token"]
    assert (status, location) == (303, "/")  # the token leaves the address bar
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert web["page_with_cookie"] == 200 and web["state_with_bearer"] == 200
    assert web["post_without_csrf"] == 403 and web["post_other_origin"] == 403
    assert web["post_with_both"] == 202
    assert web["other_host_name"] == 421

    page = seen["browser"]
    assert "needs its token" in page["without_token"]
    assert "token=" not in page["address_after"]
    assert not page["token_in_page"] and not page["cookie_readable_by_script"]
    assert page["page_state_with_cookie"] == 200
    assert page["page_events_without_cookie"] == 401
    assert page["page_state_without_cookie"] == 401
