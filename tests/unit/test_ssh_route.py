"""How a host is reached, as OpenSSH would: ssh_config aliases, what the user wrote winning,
ProxyJump chains (a jump's own ProxyJump first), keys and known_hosts per hop."""

from __future__ import annotations

from pathlib import Path

import pytest

from labspec.errors import UserInputError
from provisioner.engine.ssh_route import resolve_route

CONFIG = """\
Host gw0
    HostName 10.0.0.1
Host gw1
    HostName 10.0.0.2
    User bob
    ProxyJump gw0
Host pc07
    HostName 10.9.9.7
    Port 2222
    User learner
    ProxyJump gw1,alice@gw2:2022
    IdentityFile /keys/pc
    UserKnownHostsFile /kh/one /kh/two
Host loop
    ProxyJump loop2
Host loop2
    ProxyJump loop
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "ssh_config"
    path.write_text(CONFIG)
    return path


def test_an_alias_takes_its_hostname_port_user_keys_and_known_hosts(config: Path) -> None:
    host = resolve_route("pc07", ssh_config=config).host
    assert (host.target.host, host.target.port, host.target.user) == ("10.9.9.7", 2222, "learner")
    assert host.config_keys == (Path("/keys/pc"),) and host.key is None
    assert host.known_hosts == (Path("/kh/one"), Path("/kh/two"))
    assert host.label == "learner@10.9.9.7:2222 (pc07)"


def test_what_the_user_wrote_wins_over_the_config(config: Path, tmp_path: Path) -> None:
    key, known = tmp_path / "k", tmp_path / "kh"
    host = resolve_route("pc07", port=22, user="root", key=key, known_hosts=known,
                         ssh_config=config).host
    assert (host.target.port, host.target.user, host.key, host.known_hosts) == (
        22, "root", key, (known,))


def test_proxy_jump_chains_reach_a_jumps_own_jump_first(config: Path) -> None:
    hops = resolve_route("pc07", ssh_config=config).hops
    assert [h.target.label for h in hops] == [
        f"{hops[0].target.user}@10.0.0.1:22", "bob@10.0.0.2:22", "alice@gw2:2022",
        "learner@10.9.9.7:2222",
    ]
    direct = resolve_route("pc07", proxy_jump="none", ssh_config=config).hops
    assert len(direct) == 1
    given = resolve_route("10.1.1.1", proxy_jump="root@gw:2200", ssh_config=config).hops
    labels = [h.target.label for h in given]
    assert labels == ["root@gw:2200", f"{given[1].target.user}@10.1.1.1:22"]


def test_a_jump_without_a_key_of_its_own_uses_the_hosts(config: Path, tmp_path: Path) -> None:
    key = tmp_path / "class_key"
    jump, host = resolve_route("10.1.1.1", key=key, proxy_jump="root@gw", ssh_config=config).hops
    assert jump.key == key and host.key == key


def test_a_proxy_jump_loop_and_a_missing_config_are_clear_errors(
    config: Path, tmp_path: Path
) -> None:
    with pytest.raises(UserInputError, match="more than 8 hops"):
        resolve_route("loop", ssh_config=config)
    with pytest.raises(UserInputError, match="does not exist"):
        resolve_route("pc07", ssh_config=tmp_path / "nope")
