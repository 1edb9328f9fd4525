"""DNS rebinding: with no ``live_token``, a live view on a loopback address answers only loopback ``Host`` names.

A web page the desk user visits can make its own name resolve to 127.0.0.1, then read the live view as its own
origin (the desk's positions, P&L and orders). Its requests still say ``Host: <its name>``: those get 403.
"""

from __future__ import annotations

import http.client
import logging
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

import tradeobs_agent
from tests._util import free_port, wait_for
from tradeobs_agent import live
from tradeobs_agent.config import check_argument, resolve_settings
from tradeobs_agent.exceptions import TradeObsConfigError

ATTACKER = "rebind.attacker.example"
ROUTES = ["/", "/stream", "/snapshot", "/history", "/config", "/static/live.js"]


def _client(app: Any, server: str = "127.0.0.1:8765") -> TestClient:
    """A client whose requests arrive on ``server`` (the ASGI ``scope["server"]``, as uvicorn fills it in)."""
    return TestClient(app, base_url=f"http://{server}")


def _status(c: TestClient, path: str, host: str, **headers: str) -> int:
    if path == "/stream":  # HEAD: the stream's status and headers without its endless body
        return c.head(path, headers={"host": host, **headers}).status_code
    return c.get(path, headers={"host": host, **headers}).status_code


@pytest.fixture
def rejected() -> Iterator[Any]:
    yield tradeobs_agent.get_registry().counter("tradeobs.live.clients.rejected").bind()


@pytest.mark.parametrize("path", ROUTES)
def test_a_foreign_host_on_a_loopback_server_gets_403_naming_the_setting(path: str) -> None:
    with _client(live.create_app(hz=20)) as c:
        r = c.get(path, headers={"host": ATTACKER}) if path != "/stream" else c.head(path, headers={"host": ATTACKER})
        assert r.status_code == 403
        if path != "/stream":
            assert "live_allowed_hosts" in r.text and "TRADEOBS_LIVE_ALLOWED_HOSTS" in r.text
        assert r.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize(
    "host",
    [
        "localhost:8765",
        "LOCALHOST",
        "localhost.:8765",
        "desk.localhost:8765",
        "127.0.0.1:8765",
        "127.1.2.3",
        "[::1]:8765",
        "[::ffff:127.0.0.1]:8765",
    ],
)
@pytest.mark.parametrize("server", ["127.0.0.1:8765", "[::1]:8765"])
def test_loopback_names_and_addresses_are_served(host: str, server: str) -> None:
    with _client(live.create_app(hz=20), server) as c:
        assert [_status(c, path, host) for path in ROUTES] == [200] * len(ROUTES)


@pytest.mark.parametrize(
    "host",
    [
        ATTACKER,
        f"{ATTACKER}:8765",
        "localhost.attacker.example",
        "127.0.0.1.attacker.example",
        "0.0.0.0:8765",
        "10.0.0.5",
        "",
        "local host",
        "[::2]:8765",
    ],
)
def test_names_that_only_look_local_are_refused(host: str) -> None:
    with _client(live.create_app(hz=20)) as c:
        assert _status(c, "/snapshot", host) == 403


def test_the_refusal_is_counted_and_said_once(rejected: Any, caplog: pytest.LogCaptureFixture) -> None:
    with _client(live.create_app(hz=20)) as c, caplog.at_level(logging.WARNING):
        for path in ROUTES:
            assert _status(c, path, ATTACKER) == 403
    assert rejected.value == len(ROUTES)
    said = [r.getMessage() for r in caplog.records if "live_allowed_hosts" in r.getMessage()]
    assert len(said) == 1 and repr(ATTACKER) in said[0], said


@pytest.mark.parametrize(("host", "name"), [("Desk.Example:8443", "desk.example"), ("[FD00::1]:8765", "fd00::1")])
def test_the_refusal_names_the_exact_value_to_set(host: str, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Behind a reverse proxy on the same machine that keeps the browser's ``Host`` (desk.example:8443), the 403
    said only "add the name to live_allowed_hosts": which name, with the port or not? (A port is refused by the
    setting, so TRADEOBS_LIVE_ALLOWED_HOSTS=desk.example:8443 left the page refused.) It now names the value, and
    that value lets the request through."""
    with _client(live.create_app(hz=20)) as c:
        r = c.get("/", headers={"host": host})
    assert r.status_code == 403
    assert f"TRADEOBS_LIVE_ALLOWED_HOSTS={name};" in r.text, r.text
    monkeypatch.setenv("TRADEOBS_LIVE_ALLOWED_HOSTS", name)
    with _client(live.create_app(hz=20)) as c:
        assert _status(c, "/", host) == 200


def test_a_host_header_that_names_no_host_is_not_echoed() -> None:
    with _client(live.create_app(hz=20)) as c:
        r = c.get("/snapshot", headers={"host": "<b>x</b>"})
    assert r.status_code == 403
    assert "<b>" not in r.text and "TRADEOBS_LIVE_ALLOWED_HOSTS" in r.text, r.text


def test_the_setting_lets_a_name_through(monkeypatch: pytest.MonkeyPatch) -> None:
    with _client(live.create_app(hz=20, allowed_hosts=["Desk.Example", "10.0.0.5"])) as c:
        assert _status(c, "/snapshot", "desk.example:8765") == 200
        assert _status(c, "/snapshot", "DESK.EXAMPLE.") == 200
        assert _status(c, "/snapshot", "10.0.0.5:8765") == 200
        assert _status(c, "/snapshot", "sub.desk.example") == 403
        assert _status(c, "/snapshot", ATTACKER) == 403
    monkeypatch.setenv("TRADEOBS_LIVE_ALLOWED_HOSTS", "desk.example, [fd00::1]")
    assert resolve_settings()[0].live_allowed_hosts == ("desk.example", "fd00::1")
    with _client(live.create_app(hz=20)) as c:
        assert _status(c, "/stream", "desk.example") == 200
        assert _status(c, "/stream", "[fd00::1]:8765") == 200
        assert _status(c, "/stream", ATTACKER) == 403


def test_with_a_token_the_host_is_not_checked() -> None:
    """A rebinding page has no cookie or token of this server to send: the token is the protection."""
    with _client(live.create_app(hz=20, token="s3cret")) as c:
        assert _status(c, "/snapshot", ATTACKER) == 401
        bearer = {"authorization": f"Bearer {live.make_token('s3cret')}"}
        assert _status(c, "/snapshot", ATTACKER, **bearer) == 200
        assert _status(c, "/stream", ATTACKER, **bearer) == 200


@pytest.mark.parametrize("server", ["10.0.0.5:8765", "0.0.0.0:8765", "testserver"])
def test_on_a_non_loopback_address_the_host_is_not_checked(server: str) -> None:
    """Reachable from elsewhere anyway (exposure_warning says so at start); a proxy in front names its own Host."""
    with _client(live.create_app(hz=20), server) as c:
        assert _status(c, "/snapshot", ATTACKER) == 200


@pytest.mark.parametrize(
    "bad", ["desk.example:8765", "http://desk.example", "*", "*.desk.example", "desk.example/", "[::1", "a b"]
)
def test_the_setting_refuses_what_no_host_header_is(bad: str) -> None:
    with pytest.raises(TradeObsConfigError, match="live_allowed_hosts"):
        check_argument("live_allowed_hosts", bad)
    s, report = resolve_settings(env={"TRADEOBS_LIVE_ALLOWED_HOSTS": bad})
    assert s.live_allowed_hosts == () and [p.setting for p in report.problems] == ["live_allowed_hosts"]


# --------------------------------------------------------------------------- the demo as a real process


def _get(port: int, path: str, host: str) -> int:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.putrequest("GET", path, skip_host=True)
        c.putheader("Host", host)
        c.endheaders()
        r = c.getresponse()
        if path.endswith("/stream") and r.status == 200:
            assert r.readline().startswith(b"retry:")
        else:
            r.read()
        return r.status
    finally:
        c.close()


def test_the_demo_refuses_a_rebound_name_and_serves_its_own() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tradeobs_agent", "demo", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={
            **os.environ,
            "TRADEOBS_PROMETHEUS_PORT": "0",
            "TRADEOBS_OTLP_ENABLED": "false",
            "TRADEOBS_LIVE_ALLOWED_HOSTS": "desk-alias.example",
        },
    )

    def ready() -> bool:
        assert proc.poll() is None, "the demo exited early"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    try:
        wait_for(ready, "the demo to trade", limit=60)
        paths = ["/telemetry/", "/telemetry/snapshot", "/telemetry/stream"]
        assert [_get(port, p, ATTACKER) for p in paths] == [403] * 3
        assert [_get(port, p, f"{ATTACKER}:{port}") for p in paths] == [403] * 3
        for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"desk-alias.example:{port}"):
            assert [_get(port, p, host) for p in paths] == [200] * 3, host
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
