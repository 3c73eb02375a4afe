"""Who may use the dashboard: the address it listens on, its token, its CSRF token.

- On a loopback address (the default, 127.0.0.1) no token is asked: only this machine can
  connect. Requests must still name the dashboard's own address in ``Host`` (a page on some
  other site cannot reach it through a DNS name that points at 127.0.0.1).
- On any other address (``--bind``) a token is generated, shown once in the terminal, and
  asked on every request and on the event stream: as ``?token=`` once (the page then keeps
  it in an HttpOnly, SameSite=Strict cookie and drops it from the address bar), as the cookie,
  or as ``Authorization: Bearer``.
- Every action that changes a machine is a POST carrying ``X-CSRF-Token`` (the page reads it
  from its own HTML; another site's page cannot), and an ``Origin``, when sent, must be ours.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from collections.abc import Mapping
from http.cookies import CookieError, SimpleCookie
from typing import NamedTuple
from urllib.parse import parse_qs

from labspec.errors import UserInputError

DEFAULT_BIND = "127.0.0.1"
CSRF_HEADER = "x-csrf-token"

# Sent with every response: the page's own files only, no framing, no referrer (a token in
# the address must not leak), nothing cached.
HEADERS: tuple[tuple[str, str], ...] = (
    ("content-security-policy",
     "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
     "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-store"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
)


def bind_address(value: str | None) -> str:
    """``--bind`` as an IP address (a name is refused: say which address to listen on)."""
    if value is None:
        return DEFAULT_BIND
    text = value.strip().strip("[]")
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise UserInputError(
            f"--bind {value!r}: not an IP address",
            hint="give the address to listen on, e.g. --bind 192.168.1.10 (default 127.0.0.1)",
        ) from None


def is_loopback(address: str) -> bool:
    return ipaddress.ip_address(address).is_loopback


def host_port(address: str, port: int) -> str:
    """``127.0.0.1:8765`` or ``[::1]:8765``: the address as a URL or ``Host`` names it."""
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


class Guard(NamedTuple):
    """What every request is checked against."""

    token: str | None  # None: loopback, no token asked
    csrf: str
    hosts: frozenset[str] | None  # allowed Host values; None: any (bound to every address)
    cookie: str  # the cookie's name (per port: cookies are not)

    @classmethod
    def make(cls, address: str, port: int) -> Guard:
        token = None if is_loopback(address) else secrets.token_urlsafe(24)
        hosts: frozenset[str] | None
        if ipaddress.ip_address(address).is_unspecified:
            hosts = None  # 0.0.0.0 / ::: every address of the machine; the token guards
        else:
            hosts = frozenset({host_port(address, port)}
                              | ({f"localhost:{port}"} if is_loopback(address) else set()))
        return cls(token, secrets.token_urlsafe(24), hosts, f"labup_dashboard_{port}")

    def host_ok(self, host: str | None) -> bool:
        return self.hosts is None or (host or "").lower() in self.hosts

    def token_in(self, headers: Mapping[str, str], query: str) -> tuple[bool, bool]:
        """(authorised, from the query string) for a request's headers and query."""
        if self.token is None:
            return True, False
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer ") and _same(auth[7:].strip(), self.token):
            return True, False
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(headers.get("cookie", ""))
        except CookieError:  # a malformed Cookie header carries no token
            jar = SimpleCookie()
        morsel = jar.get(self.cookie)
        if morsel is not None and _same(morsel.value, self.token):
            return True, False
        given = parse_qs(query).get("token", [])
        if given and _same(given[0], self.token):
            return True, True
        return False, False

    def csrf_ok(self, headers: Mapping[str, str]) -> bool:
        return _same(headers.get(CSRF_HEADER, ""), self.csrf)

    def origin_ok(self, headers: Mapping[str, str]) -> bool:
        origin = headers.get("origin")
        if origin is None:
            return True
        host = headers.get("host", "")
        return origin.lower() == f"http://{host}".lower()

    def set_cookie(self) -> str:
        assert self.token is not None
        return f"{self.cookie}={self.token}; Path=/; HttpOnly; SameSite=Strict"


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode())
