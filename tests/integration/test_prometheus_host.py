"""DNS rebinding against the embedded Prometheus endpoint: on a loopback address it answers only loopback ``Host``
names, ``prometheus_allowed_hosts`` and the name it listens by.

A web page the desk user visits can make its own name resolve to 127.0.0.1 and read ``/metrics`` (positions, P&L,
orders by symbol) as its own origin; its requests still say ``Host: <its name>``. Before, the endpoint answered them
200 with every trading metric. Real endpoints (``init()``), a real Debian ``prometheus`` scraping them.
"""

from __future__ import annotations

import http.client
import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import tradeobs_agent
from tests._util import free_port
from tradeobs_agent import PrometheusOptions
from tradeobs_agent.config import resolve_settings
from tradeobs_agent.testing import reset

from .procs import prometheus_query, start_prometheus, wait_for

ATTACKER = "rebind.attacker.example"


@pytest.fixture(autouse=True)
def _reset() -> Iterator[None]:
    yield
    reset()


def _agent(**prometheus: Any) -> Any:
    agent = tradeobs_agent.init(
        service_name="rebind-test",
        otlp=False,
        logs=False,
        live=False,
        prometheus=PrometheusOptions(**{"host": "127.0.0.1", "port": 0, **prometheus}),
    )
    assert agent.prometheus is not None and agent.prometheus_url is not None
    tradeobs_agent.counter("trading.position.test", unit="{share}").add(7, {"symbol": "AAPL"})
    return agent


def _get(port: int, host: str | None, connect: str = "127.0.0.1") -> tuple[int, str]:
    c = http.client.HTTPConnection(connect, port, timeout=10)
    try:
        c.putrequest("GET", "/metrics", skip_host=True)
        if host is not None:
            c.putheader("Host", host)
        c.endheaders()
        r = c.getresponse()
        return r.status, r.read().decode()
    finally:
        c.close()


def _refused() -> float:
    families = tradeobs_agent.get_registry().snapshot().families
    return sum(p.value for f in families if f.name == "tradeobs.agent.prometheus.refused" for p in f.points)


def test_a_rebound_host_gets_403_naming_the_setting_counted_and_said_once(caplog: pytest.LogCaptureFixture) -> None:
    port = _agent().prometheus.port
    with caplog.at_level(logging.WARNING):
        for host in (f"{ATTACKER}:{port}", ATTACKER, "0.0.0.0", "10.0.0.5", "localhost.attacker.example", "a b"):
            status, body = _get(port, host)
            assert status == 403, (host, body)
            assert "trading_position_test" not in body and "prometheus_allowed_hosts" in body, body
    status, body = _get(port, f"Desk.Example:{port}")
    assert status == 403 and "TRADEOBS_PROMETHEUS_ALLOWED_HOSTS=desk.example;" in body, body
    assert _refused() == 7
    said = [r.getMessage() for r in caplog.records if "prometheus_allowed_hosts" in r.getMessage()]
    assert len(said) == 1 and repr(f"{ATTACKER}:{port}") in said[0], said


@pytest.mark.parametrize(
    "host", ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST", "desk.localhost", "127.1.2.3", "[::1]:{port}", None]
)
def test_loopback_names_and_no_host_are_served(host: str | None) -> None:
    port = _agent().prometheus.port
    status, body = _get(port, host.format(port=port) if host else None)
    assert status == 200 and 'trading_position_test_total{symbol="AAPL"} 7.0' in body, body
    assert _refused() == 0


def test_the_setting_and_the_name_it_listens_by_let_a_name_through(monkeypatch: pytest.MonkeyPatch) -> None:
    port = _agent(allowed_hosts=["Desk-Box", "10.0.0.5"]).prometheus.port
    assert _get(port, f"desk-box:{port}")[0] == 200
    assert _get(port, "10.0.0.5")[0] == 200
    assert _get(port, ATTACKER)[0] == 403
    reset()
    monkeypatch.setenv("TRADEOBS_PROMETHEUS_ALLOWED_HOSTS", "desk-box.internal")
    assert resolve_settings()[0].prometheus_allowed_hosts == ("desk-box.internal",)
    port = _agent().prometheus.port
    assert _get(port, "desk-box.internal:9464")[0] == 200
    assert _get(port, "desk-box")[0] == 403
    reset()
    # listening by name (an /etc/hosts alias of this machine, here localhost itself): that name is the user's own
    port = _agent(host="localhost").prometheus.port
    assert _get(port, f"localhost:{port}")[0] == 200


def _interface_address() -> str:
    """This machine's address on its first non-loopback interface (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("203.0.113.1", 9))  # TEST-NET-3, through the default route
        address = str(s.getsockname()[0])
    assert not address.startswith("127."), "the test needs a non-loopback interface"
    return address


def test_on_every_interface_a_scrape_by_service_name_is_served_and_loopback_is_still_checked() -> None:
    """compose: a container listens on 0.0.0.0 and Prometheus scrapes it by service name (``demo:9464``), through
    the container's interface address: served. The same server reached through 127.0.0.1 (the desk's browser,
    rebound) is checked, as the live view is."""
    port = _agent(host="0.0.0.0").prometheus.port
    status, body = _get(port, f"demo:{port}", connect=_interface_address())
    assert status == 200 and "trading_position_test_total" in body
    assert _get(port, f"demo:{port}")[0] == 403
    assert _get(port, f"127.0.0.1:{port}")[0] == 200


def test_real_prometheus_scrapes_by_address_and_by_localhost(tmp_path: Path) -> None:
    """Debian prometheus sends ``Host: <target>``: both ways the docs write a target keep working."""
    port = _agent().prometheus.port
    config = (
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n"
        f"  - job_name: by-address\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
        f"  - job_name: by-name\n    static_configs:\n      - targets: ['localhost:{port}']\n"
    )
    with start_prometheus(tmp_path / "prometheus", config, free_port()) as prom:

        def scraped() -> list[dict[str, Any]] | None:
            rows = prometheus_query(prom.url, "trading_position_test_total")
            return rows if len(rows) == 2 else None

        rows = wait_for(scraped, "both jobs scraped", procs=(prom.proc,))
        assert [r["value"][1] for r in rows] == ["7", "7"]
        assert sorted(r["metric"]["job"] for r in rows) == ["by-address", "by-name"]
        assert [r["value"][1] for r in prometheus_query(prom.url, "up")] == ["1", "1"]
    assert _refused() == 0
