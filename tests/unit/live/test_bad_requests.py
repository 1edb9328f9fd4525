"""Bad and hostile requests to the live endpoints, against a real uvicorn server (tests/unit/live/test_app.py's).

Bad or huge ``Last-Event-ID`` values (header and ``lastEventId=`` query), huge headers, more connections from one
client than the limit, clients that vanish mid-write (a TCP reset while the server is writing large frames), and
tokens: none of these raises in the server (uvicorn logs no ASGI exception), each gets a defined answer (a
``reset`` and a full frame, 431/400, 503, 401), the server keeps serving a well-behaved client throughout, and the
client count returns to zero.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import socket
import struct
import urllib.parse
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tradeobs_agent
from tests._util import wait_for
from tradeobs_agent import live
from tradeobs_agent.live import auth
from tradeobs_agent.live.hub import parse_event_id

from .test_app import Server, Stream, prices, serve

pytestmark = pytest.mark.integration


def _no_server_errors(caplog: pytest.LogCaptureFixture) -> None:
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], errors


def _healthy(srv: Server) -> None:
    """A well-behaved client still gets its full frame."""
    s = Stream(srv)
    assert s.resp.status == 200
    frame = s.take(1, "frame")
    assert frame and frame[0]["data"]["type"] == "full"
    s.close()


@settings(max_examples=300, deadline=None)
@given(st.text() | st.from_regex(r"\A[0-9a-f]{1,12}-[0-9²³¹٣۴]{0,30}\Z") | st.just("x-" + "9" * 5000))
def test_parse_event_id_never_raises(value: str) -> None:
    parsed = parse_event_id(value)
    if parsed is not None:
        assert 0 <= parsed[1] < 10**19 and parsed[0]


BAD_IDS = ["", "-", "-5", "abc-", "abc--1", "abc-1.5", "abc-0x10", "abc-²", "abc-٣", "x-" + "9" * 5000,
           "x-99999999999999999999", "\u00e9\u00e9-1", " ", "boot-18446744073709551616"]  # fmt: skip


def test_bad_last_event_ids_get_reset_and_full_frame(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    prices()
    with serve() as srv:
        s = Stream(srv)
        boot = s.take(1, "frame")[0]["id"].rpartition("-")[0]
        s.close()
        for last in [*BAD_IDS, f"{boot}-99999999999", f"{boot}-9999999999999999999"]:
            if not last.strip():
                continue  # no id: a plain first connection
            s = Stream(srv, {"Last-Event-ID": last.encode("utf-8").decode("latin-1")})
            assert s.resp.status == 200, last
            got = s.take(2)
            assert [e["event"] for e in got] == ["reset", "frame"], last
            assert got[1]["data"]["type"] == "full"
            s.close()
            s = Stream(srv, path="/stream?lastEventId=" + urllib.parse.quote(last, safe=""))
            assert s.resp.status == 200
            assert [e["event"] for e in s.take(2)] == ["reset", "frame"], last
            s.close()
        _healthy(srv)
        wait_for(lambda: srv.hub.clients == 0, "every client gone")
    _no_server_errors(caplog)


def _raw_request(port: int, request: bytes) -> bytes:
    """Send raw bytes; what comes back until the server closes, a stream's first frame, or 2 s without data."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        try:
            sock.sendall(request)
        except (ConnectionResetError, BrokenPipeError):  # refused before we finished sending: the reply may follow
            pass
        sock.settimeout(2)
        out = b""
        try:
            while chunk := sock.recv(65536):
                out += chunk
                if (b"event: frame" in out and out.rstrip(b"\r\n").endswith(b"}")) or len(out) > 1 << 20:
                    break
        except (TimeoutError, ConnectionResetError):
            pass
        return out


@pytest.mark.parametrize("size", [70_000, 1_000_000])
def test_huge_headers_get_a_defined_answer_and_the_server_keeps_serving(
    size: int, caplog: pytest.LogCaptureFixture
) -> None:
    """uvicorn (httptools) accepts large headers up to its limits and refuses larger ones: either way the answer
    is defined. A huge ``Last-Event-ID`` is an unknown id (``reset`` and a full frame); a huge ``Authorization``
    with auth off is ignored; nothing raises and the server goes on."""
    caplog.set_level(logging.WARNING)
    prices()
    with serve() as srv:
        for header in (b"Last-Event-ID", b"X-Junk", b"Authorization"):
            reply = _raw_request(
                srv.port, b"GET /stream HTTP/1.1\r\nHost: 127.0.0.1\r\n" + header + b": " + b"7" * size + b"\r\n\r\n"
            )
            status = reply.split(b"\r\n", 1)[0]
            if status.startswith(b"HTTP/1.1 200"):
                body = reply.split(b"\r\n\r\n", 1)[1]
                assert b"event: frame" in body
                assert (b"event: reset" in body) == (header == b"Last-Event-ID"), header
            else:
                assert reply == b"" or status.split()[1] in (b"400", b"413", b"431"), status
            assert b"7" * 100 not in reply
        wait_for(lambda: srv.hub.clients == 0, "the raw clients gone")
        _healthy(srv)
    assert not [r for r in caplog.records if "Exception in ASGI application" in r.getMessage()]


def test_many_connections_from_one_client_are_bounded_and_released(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    rejected = tradeobs_agent.get_registry().counter("tradeobs.live.clients.rejected").bind()
    before = rejected.value
    with serve(max_clients=8) as srv:
        streams = [Stream(srv) for _ in range(8)]
        assert all(s.resp.status == 200 for s in streams)
        extra = [srv.conn() for _ in range(20)]
        for c in extra:
            c.request("GET", "/stream")
            r = c.getresponse()
            assert r.status == 503 and r.getheader("retry-after")
            r.read()
            c.close()
        assert rejected.value - before == 20
        assert srv.hub.clients == 8
        for s in streams:
            s.close()
        wait_for(lambda: srv.hub.clients == 0, "the 8 streams released")
        _healthy(srv)
    _no_server_errors(caplog)


def _reset(sock: socket.socket) -> None:
    """Close with a TCP RST (SO_LINGER 0): the client vanishes, unread data and all."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_clients_vanishing_mid_write_are_dropped_cleanly(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    g = tradeobs_agent.gauge("trading.marketdata.price")
    for i in range(400):  # ~20 KB frames: the server is mid-write when the socket goes
        g.bind(symbol=f"SYM{i:04d}").set(100 + i)
    with serve(hz=50) as srv:
        watcher = Stream(srv)
        watcher.take(1, "frame")
        for round_ in range(5):
            with contextlib.ExitStack() as opened:  # closed even when a wait fails (closing again is harmless)
                socks = []
                for _ in range(10):
                    sock = opened.enter_context(socket.create_connection(("127.0.0.1", srv.port), timeout=5))
                    sock.sendall(b"GET /stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                    sock.recv(4096)  # the response has started
                    socks.append(sock)
                wait_for(lambda: srv.hub.clients == 11, "10 more clients")
                for i in range(50):
                    g.bind(symbol=f"SYM{i:04d}").set(200 + round_ + i)
                for sock in socks:
                    _reset(sock)
                wait_for(lambda: srv.hub.clients == 1, f"the vanished clients dropped (round {round_})")
        assert watcher.take(3, "frame"), "the remaining client kept getting frames"
        watcher.close()
        wait_for(lambda: srv.hub.clients == 0, "every client gone")
    _no_server_errors(caplog)


# --------------------------------------------------------------------------- tokens


@pytest.mark.parametrize(
    ("headers", "path", "want"),
    [
        ({}, "/stream", 401),
        ({"Authorization": "Bearer "}, "/stream", 401),
        ({"Authorization": "Bearer not-a-token"}, "/stream", 401),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "/stream", 401),
        ({"Authorization": "Bearer v1.99999999999.AAAA"}, "/stream", 401),
        ({"Authorization": "Bearer " + "v1." + "9" * 5000 + ".x"}, "/stream", 401),
        ({"Cookie": "tradeobs_live=v1.1.forged"}, "/snapshot", 401),
        ({}, "/stream?token=%FF%FE", 401),
        ({}, "/snapshot?token=v1.1.a.b.c", 401),
        ({}, "/snapshot?token=v1.9999999999.%C3%A9", 401),  # a non-ASCII MAC: compare_digest raised (a 500)
        ({"Authorization": "Bearer v1.9999999999.\u00e9"}, "/stream", 401),
        ({"Cookie": "tradeobs_live=v1.9999999999.\u00e9"}, "/stream", 401),
    ],
)
def test_no_or_bad_token_gets_401(
    headers: dict[str, str], path: str, want: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "live-secret-for-bad-tokens"
    with serve(token=secret, _access_log=True) as srv:
        c = srv.conn()
        c.request("GET", path, headers=headers)
        r = c.getresponse()
        r.read()
        assert r.status == want
        c.close()
        tok = live.make_token(secret, ttl=60)
        s = Stream(srv, {"Authorization": f"Bearer {tok}"})
        assert s.resp.status == 200 and s.take(1, "frame")
        s.close()
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert secret not in text and tok not in text
    _no_server_errors(caplog)


def test_token_comparison_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every MAC comparison goes through hmac.compare_digest (never ==), whatever the token looks like."""
    calls: list[tuple[Any, Any]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    secret = "s3cret-value"
    good = auth.make_token(secret, ttl=60)
    payload, _, mac = good.rpartition(".")
    # Change the MAC's last character to one it is not (a fixed "A" would leave 1 MAC in 16 unchanged).
    tampered = f"{payload}.{mac[:-1]}{'B' if mac.endswith('A') else 'A'}"
    assert tampered != good
    for token, valid in [(good, True), (tampered, False), (f"{payload}.x", False),
                         (auth.make_token("other", ttl=60), False)]:  # fmt: skip
        n = len(calls)
        assert auth.verify_token(secret, token) is valid
        assert len(calls) == n + 1, token
    src = auth.verify_token.__code__.co_names
    assert "compare_digest" in src


def test_head_probes_with_a_wrong_token_count_as_refused_and_on_a_full_server_do_not() -> None:
    # The page's HEAD probes on a full server are not refused clients (h-phone2), but HEAD answers 401 or 200:
    # tokens guessed by HEADs uncounted would be a brute force no operator sees.
    rejected = tradeobs_agent.get_registry().counter("tradeobs.live.clients.rejected").bind()
    with serve(token="live-secret-for-probes", max_clients=1) as srv:
        before = rejected.value
        for _ in range(5):
            c = srv.conn()
            c.request("HEAD", "/stream", headers={"Authorization": "Bearer v1.9999999999.guess"})
            r = c.getresponse()
            r.read()
            assert r.status == 401 and r.getheader("x-tradeobs-refused") == "unauthorized"
            c.close()
        assert rejected.value - before == 5
        tok = live.make_token("live-secret-for-probes", ttl=60)
        s = Stream(srv, {"Authorization": f"Bearer {tok}"})
        assert s.resp.status == 200
        before = rejected.value
        c = srv.conn()
        c.request("HEAD", "/stream", headers={"Authorization": f"Bearer {tok}"})
        r = c.getresponse()
        r.read()
        assert r.status == 503 and r.getheader("x-tradeobs-refused") == "too many live clients"
        c.close()
        assert rejected.value - before == 0
        s.close()
