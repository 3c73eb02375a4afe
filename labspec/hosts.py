"""The one set of rules for where a remote engine is: SSH URLs, addresses, users, ports.

``--host ssh://...`` on the command line and every field of an inventory go through these
same functions, so an inventory is refused for exactly what the command line refuses: a
password in the URL (it would be shown in logs and reports), a user or address that is not
a plain name (``-oProxyCommand=...``, whitespace, control characters, ``%`` escapes), a path,
query or fragment, a port outside 1..65535, a ``docker_host`` that is not ``unix:///PATH``
or ``tcp://HOST:PORT``. Each returns a reason (a problem to report) or None.
"""

from __future__ import annotations

import ipaddress
import re
from typing import NamedTuple
from urllib.parse import urlsplit

from labspec.errors import UserInputError

# A hostname, an IP address, or an ~/.ssh/config alias: letters, digits, '.', '_', '-',
# not starting with '-' or '.' (an address is never an option to anything).
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,252}$")
_USER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$")
_PATH = re.compile(r"^/[^\s\x00-\x1f\x7f]*$")
NO_PASSWORDS = "passwords in ssh:// URLs are not supported (and would be shown in logs)"
USE_A_KEY = "use a key: the inventory's `key`, or ssh-agent"


class SshUrl(NamedTuple):
    user: str | None
    address: str
    port: int | None


class BadHost(UserInputError):
    """An SSH URL or host field that labup refuses; ``message`` says why."""


def address_problem(address: str) -> str | None:
    """Why ``address`` is not a host labup connects to (None: it is)."""
    try:
        ipaddress.ip_address(address)
        return None
    except ValueError:
        pass
    if not _NAME.match(address) or ".." in address:
        return (
            f"{address!r} is not a hostname, an IP address or an ssh_config alias "
            "(letters, digits, '.', '_', '-'; not starting with '-' or '.')"
        )
    return None


def user_problem(user: str) -> str | None:
    if not _USER.match(user):
        return f"{user!r} is not a user name (letters, digits, '_', '.', '-'; at most 32)"
    return None


def port_problem(port: object) -> str | None:
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        return f"{port!r} is not a port (1..65535)"
    return None


def docker_host_problem(value: str) -> str | None:
    """``unix:///PATH`` or ``tcp://HOST:PORT`` (the far side's DOCKER_HOST)."""
    if value.startswith("unix://"):
        if _PATH.match(value.removeprefix("unix://")):
            return None
    elif value.startswith("tcp://"):
        host, sep, port = value.removeprefix("tcp://").rpartition(":")
        port_ok = sep and port.isdigit() and port_problem(int(port)) is None
        if port_ok and address_problem(host.strip("[]")) is None:
            return None
    return f"{value!r} is not unix:///PATH or tcp://HOST:PORT"


def parse_ssh_url(url: str) -> SshUrl:
    """``ssh://[user@]host[:port]`` by the rules of this module; :class:`BadHost` saying why
    otherwise. The hint is the form to write."""
    hint = "write ssh://user@host or ssh://user@host:port"
    if not url.startswith("ssh://"):
        raise BadHost(f"not an ssh URL: {url!r}", hint=hint)
    netloc = url.removeprefix("ssh://").split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    userinfo = netloc.rpartition("@")[0] if "@" in netloc else ""
    if ":" in userinfo:
        raise BadHost(NO_PASSWORDS, hint=USE_A_KEY)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise BadHost(f"not a valid ssh URL: {e}", hint=hint) from None
    if parts.path not in ("", "/") or parts.query or parts.fragment or "%" in parts.netloc:
        raise BadHost(f"not a valid ssh URL: {url!r} (only user, host and port)", hint=hint)
    if userinfo.count("@") or not parts.hostname:
        raise BadHost(f"not a valid ssh URL: {url!r}", hint=hint)
    host = parts.hostname
    why = address_problem(host) or (user_problem(parts.username) if parts.username else None)
    if why is None and port is not None:
        why = port_problem(port)
    if why is not None:
        raise BadHost(f"not a valid ssh URL: {why}", hint=hint)
    return SshUrl(parts.username, host, port)
