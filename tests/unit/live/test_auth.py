"""Signed live tokens and the query-string scrubbing that keeps them out of access logs."""

from __future__ import annotations

import pytest

from tradeobs_agent.live import auth


def test_token_roundtrip_expiry_and_tamper() -> None:
    tok = auth.make_token("s3cret", ttl=60, now=1000)
    assert auth.verify_token("s3cret", tok, now=1010)
    assert not auth.verify_token("s3cret", tok, now=1061)  # expired
    assert not auth.verify_token("other", tok, now=1010)
    version, exp, mac = tok.split(".")
    assert not auth.verify_token("s3cret", f"{version}.{int(exp) + 3600}.{mac}", now=1010)  # extended
    assert "s3cret" not in tok
    for junk in ("", "v1", "v1.x.y", "a.b.c.d", None):
        assert not auth.verify_token("s3cret", junk)
    with pytest.raises(ValueError):
        auth.make_token("")


def test_pop_query_token_strips_only_the_token() -> None:
    scope = {"query_string": b"a=1&token=v1.9.abc&lastEventId=x-1"}
    assert auth.pop_query_token(scope) == "v1.9.abc"
    assert scope["query_string"] == b"a=1&lastEventId=x-1"
    assert auth.pop_query_token({"query_string": b"a=1"}) is None


def test_a_percent_encoded_token_key_is_taken_out_too() -> None:
    # '%74oken' decodes to 'token': it used to stay in the query (and the access log) and not be accepted.
    scope = {"query_string": b"%74oken=v1.9.abc&lastEventId=x-1"}
    assert auth.pop_query_token(scope) == "v1.9.abc"
    assert scope["query_string"] == b"lastEventId=x-1"
    untouched = {"query_string": b"q=a%20b&mytoken=1"}
    assert auth.pop_query_token(untouched) is None
    assert untouched["query_string"] == b"q=a%20b&mytoken=1"  # left as the client sent it


def test_authorized_by_cookie_bearer_or_query() -> None:
    tok = auth.make_token("k")
    assert auth.authorized("", {"headers": []}, None)
    assert not auth.authorized("k", {"headers": []}, None)
    assert auth.authorized("k", {"headers": []}, tok)
    assert auth.authorized("k", {"headers": [(b"cookie", f"x=1; {auth.COOKIE}={tok}".encode())]}, None)
    assert auth.authorized("k", {"headers": [(b"authorization", f"Bearer {tok}".encode())]}, None)
    assert not auth.authorized("k", {"headers": [(b"authorization", b"Bearer nope")]}, None)


# --------------------------------------------------------------------------- the link and the session


def _exchange(app: object, link: str) -> tuple[str, int]:
    """Open the page with ``?token=link``: the cookie's token and its Max-Age."""
    from starlette.testclient import TestClient

    with TestClient(app, base_url="http://127.0.0.1:8765") as c:  # type: ignore[arg-type]
        r = c.get(f"/?token={link}", follow_redirects=False)
    assert r.status_code == 303, r.text
    attrs = dict(part.strip().partition("=")[::2] for part in r.headers["set-cookie"].split(";"))
    return attrs["tradeobs_live"], int(attrs["Max-Age"])


def test_a_short_link_buys_a_session_of_live_session_ttl(monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/live.md: the host app hands out a short-lived link (``make_token(secret, ttl=60)``: a URL is written
    down, in history and logs), which opening the page exchanges for the session cookie. The session's length was
    fixed at 8 hours whatever the host app's own sessions last; it is now ``live_session_ttl`` (default 8 hours, as
    documented), and the cookie's Max-Age and the token in it end together. The link itself still dies in a minute."""
    import time

    from tradeobs_agent import live
    from tradeobs_agent.config import check_argument
    from tradeobs_agent.exceptions import TradeObsConfigError

    secret = "s3cret-session"
    now = time.time()
    link = live.make_token(secret, ttl=60, now=now)
    token, max_age = _exchange(live.create_app(hz=5, token=secret), link)
    assert max_age == 8 * 3600 and live.verify_token(secret, token, now=now + 8 * 3600 - 60)

    monkeypatch.setenv("TRADEOBS_LIVE_SESSION_TTL", "900")
    token, max_age = _exchange(live.create_app(hz=5, token=secret), live.make_token(secret, ttl=60, now=now))
    assert max_age == 900
    assert live.verify_token(secret, token, now=now + 120)  # the session outlives the link...
    assert not live.verify_token(secret, link, now=now + 120)
    assert not live.verify_token(secret, token, now=now + 960)  # ...and ends with its cookie
    with pytest.raises(TradeObsConfigError, match="live_session_ttl"):
        check_argument("live_session_ttl", 5)
