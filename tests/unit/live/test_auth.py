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
