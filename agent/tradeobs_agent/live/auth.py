"""Auth for the live endpoints that works with ``EventSource``: a signed cookie or a short-lived signed query token.

>>> secret = "s3cret-from-TRADEOBS_LIVE_TOKEN"
>>> tok = make_token(secret, ttl=60)
>>> verify_token(secret, tok)
True
>>> verify_token("other", tok)
False

``EventSource`` cannot set headers, so a browser authenticates either with the
``tradeobs_live`` cookie (HttpOnly, SameSite=Strict) or with ``?token=`` on the
URL. The host app, which has already authenticated its user, hands out a
short-lived token (``make_token(secret, ttl=60)``); opening
``/telemetry/?token=...`` swaps it for the cookie and redirects to the clean
URL. Scripts may send ``Authorization: Bearer <token>``.

A token is ``v1.<expiry unix seconds>.<base64url HMAC-SHA256>``: it reveals
nothing about the secret and cannot be forged or extended. The ``token``
query parameter is removed from the ASGI scope before any response starts,
so the server's access log (uvicorn logs ``scope["query_string"]``) never
records it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

from .._parsers import host_header_name
from .._parsers import is_loopback_address as _loopback
from .._parsers import is_loopback_name as _loopback_name

__all__ = [
    "COOKIE",
    "QUERY_TOKEN_TTL",
    "SESSION_TTL",
    "authorized",
    "exposure_warning",
    "foreign_host",
    "host_header_name",
    "make_token",
    "pop_query_token",
    "verify_token",
]

COOKIE = "tradeobs_live"
QUERY_TOKEN_TTL = 60.0
"""Default lifetime of a token meant for a URL, in seconds."""
SESSION_TTL = 8 * 3600.0
"""Default lifetime of the cookie the dashboard gets in exchange, in seconds (the ``live_session_ttl`` setting)."""


def _sign(secret: str, payload: str) -> str:
    mac = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def make_token(secret: str, ttl: float = QUERY_TOKEN_TTL, now: float | None = None) -> str:
    """A token valid for ``ttl`` seconds, signed with ``secret`` (the ``live_token`` setting)."""
    if not secret:
        raise ValueError("make_token needs a non-empty secret (the live_token setting)")
    exp = int((time.time() if now is None else now) + ttl)
    payload = f"v1.{exp}"
    return f"{payload}.{_sign(secret, payload)}"


def verify_token(secret: str, token: str | None, now: float | None = None) -> bool:
    """Whether ``token`` was signed with ``secret`` and has not expired. Never raises."""
    if not secret or not token or not isinstance(token, str):
        return False
    try:
        version, exp_s, mac = token.split(".", 2)
        exp = int(exp_s)
    except ValueError:
        return False
    if version != "v1" or exp < (time.time() if now is None else now):
        return False
    # compare_digest refuses str with non-ASCII characters (a TypeError, once a 500 with a traceback per request):
    # bytes. A valid MAC is URL-safe base64, so a token with any other character is simply wrong.
    return hmac.compare_digest(mac.encode("utf-8", "replace"), _sign(secret, f"{version}.{exp_s}").encode())


def pop_query_token(scope: MutableMapping[str, Any]) -> str | None:
    """Remove ``token=...`` from ``scope["query_string"]`` in place and return it.

    The scope dict is the server's own (Starlette's routing updates it in place),
    so the access log line, written when the response starts, no longer has it.
    """
    raw: bytes = scope.get("query_string", b"")
    # ``%74oken=`` is ``token=`` too once decoded: with a ``%`` in the query, parse it to be sure (both are taken
    # out of the log and accepted).
    if b"token=" not in raw and b"%" not in raw:
        return None
    pairs = parse_qsl(raw.decode("latin-1"), keep_blank_values=True)
    token = None
    kept = []
    for k, v in pairs:
        if k == "token":
            token = v
        else:
            kept.append((k, v))
    if token is not None:  # otherwise leave the query as the client sent it
        scope["query_string"] = urlencode(kept).encode("latin-1")
    return token


def _cookie(headers: list[tuple[bytes, bytes]]) -> str | None:
    for k, v in headers:
        if k == b"cookie":
            for part in v.decode("latin-1").split(";"):
                name, _, value = part.strip().partition("=")
                if name == COOKIE:
                    return value
    return None


def _bearer(headers: list[tuple[bytes, bytes]]) -> str | None:
    for k, v in headers:
        if k == b"authorization":
            scheme, _, value = v.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer":
                return value.strip()
    return None


def authorized(secret: str, scope: MutableMapping[str, Any], query_token: str | None) -> bool:
    """True when auth is off (empty secret) or the request carries a valid token (cookie, query or bearer)."""
    if not secret:
        return True
    headers = scope.get("headers", [])
    return any(verify_token(secret, t) for t in (query_token, _cookie(headers), _bearer(headers)) if t)


def session_cookie(secret: str, path: str, secure: bool, ttl: float = SESSION_TTL) -> str:
    """A ``Set-Cookie`` value holding a fresh session token, for ``ttl`` seconds (``live_session_ttl``): the cookie
    and the token in it end together."""
    token = make_token(secret, ttl)
    attrs = [f"{COOKIE}={token}", f"Path={path}", f"Max-Age={int(ttl)}", "HttpOnly", "SameSite=Strict"]
    if secure:
        attrs.append("Secure")
    return "; ".join(attrs)


def exposure_warning(host: str, secret: str) -> str | None:
    """What to say when the live view listens on ``host`` beyond this machine with no ``live_token``, else ``None``.

    Without a token the live endpoints need no authentication (docs/live.md, Security: "bind to loopback"). A
    loopback address or ``localhost`` is this machine; anything else (``0.0.0.0``, ``::``, an interface's address, a
    name that may resolve to one) is reachable from elsewhere. Said, not refused: a container listens on
    ``0.0.0.0`` by design and its host may publish the port on loopback only (compose's gateway).
    """
    if secret or _loopback(host):
        return None
    return (
        f"the live view listens on {host or 'every interface'} with no live_token: anyone who can reach this port "
        "sees the desk's positions, P&L and orders. Set TRADEOBS_LIVE_TOKEN (`tradeobs docs live`, Security) or "
        "listen on 127.0.0.1"
    )


def _host_header(headers: list[tuple[bytes, bytes]]) -> str | None:
    for k, v in headers:
        if k == b"host":
            return v.decode("latin-1")
    return None


def foreign_host(secret: str, allowed: frozenset[str], scope: MutableMapping[str, Any]) -> str | None:
    """The ``Host`` header of a request to refuse as a possible DNS rebinding, else ``None``.

    Only when auth is off (empty ``secret``) and the server the request arrived on (``scope["server"]``) has a
    loopback address: a web page the desk user visits can make its own name resolve to 127.0.0.1 and then read this
    server as its own origin, but its requests still carry its own name in ``Host``. Those get through: a loopback
    name or address (:func:`_loopback_name`), a name in ``allowed`` (``live_allowed_hosts``), or no ``Host`` at
    all (a browser always sends one). With a token, a rebinding page has no cookie or token to send; on any other
    address, reaching the port from elsewhere needs no rebinding (``exposure_warning`` says so).
    """
    if secret:
        return None
    server = scope.get("server")
    if not server or not isinstance(server[0], str) or not _loopback(server[0]):
        return None
    header = _host_header(scope.get("headers", []))
    if header is None:
        return None
    name = host_header_name(header)
    if name is not None and (_loopback_name(name) or name in allowed):
        return None
    return header
