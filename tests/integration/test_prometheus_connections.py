"""Connections to the embedded Prometheus endpoint are bounded: it runs in the trading process, one thread per
connection (the stdlib's threading WSGI server, as prometheus_client's own endpoint).

Before, a connection that sent part of a request and then nothing held its thread for ever: 200 such connections
were 200 threads of the trading process, still there 12 s later, and at about 300 new connections waited tens of
seconds to be accepted. Now a request has ``READ_TIMEOUT`` seconds of silence at most (reading it, or writing the
answer to a client that stopped reading), at most ``MAX_CONNECTIONS`` are served at once and the ones past that
are closed at once; both counted in ``tradeobs.agent.prometheus.refused{reason}``. Real endpoints (``init()``).
"""

from __future__ import annotations

import socket
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

import tradeobs_agent
from tests._util import wait_for
from tradeobs_agent import PrometheusOptions
from tradeobs_agent._internal import prometheus
from tradeobs_agent.testing import reset


@pytest.fixture(autouse=True)
def _reset() -> Iterator[None]:
    yield
    reset()


def _refused() -> dict[str, float]:
    from tradeobs_agent.metrics import get_registry

    families = get_registry().snapshot().families
    out: dict[str, float] = {}
    for f in families:
        if f.name == "tradeobs.agent.prometheus.refused":
            for p in f.points:
                reason = str(dict(p.attributes).get("reason"))
                out[reason] = out.get(reason, 0.0) + p.value
    return out


def _endpoint(monkeypatch: pytest.MonkeyPatch, connections: int, timeout: float) -> Any:
    monkeypatch.setattr(prometheus, "MAX_CONNECTIONS", connections)
    monkeypatch.setattr(prometheus, "READ_TIMEOUT", timeout)
    agent = tradeobs_agent.init(
        service_name="loris-test",
        otlp=False,
        logs=False,
        live=False,
        prometheus=PrometheusOptions(host="127.0.0.1", port=0),
    )
    assert agent.prometheus_url is not None
    return urllib.parse.urlparse(agent.prometheus_url)


def test_half_sent_requests_hold_a_bounded_number_of_threads_and_time_out(monkeypatch: pytest.MonkeyPatch) -> None:
    url = _endpoint(monkeypatch, connections=8, timeout=1.0)
    threads = threading.active_count()
    socks, most = [], 0
    try:
        for _ in range(60):
            s = socket.create_connection((url.hostname, url.port), timeout=10)
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never the blank line
            socks.append(s)
            most = max(most, threading.active_count() - threads)
        time.sleep(0.3)
        most = max(most, threading.active_count() - threads)
        assert most <= 8, most  # a thread per served connection, 8 at most (60 before)
        # Each connection was either closed at once (8 others being served) or served and cut after a second of
        # silence; then their threads are gone and a scrape is served as before.
        wait_for(lambda: sum(_refused().values()) == 60, "every connection closed or timed out, counted", limit=30)
        wait_for(lambda: threading.active_count() <= threads, "their threads ended", limit=30)
        body = urllib.request.urlopen(f"http://{url.netloc}/metrics", timeout=10).read().decode()
        assert 'tradeobs_agent_prometheus_refused_total{reason="timeout"}' in body, body[-2000:]
    finally:
        for s in socks:
            s.close()


def test_a_client_that_stops_reading_the_answer_is_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    """A scrape whose client stops reading holds a thread while its answer waits in full socket buffers: cut after
    ``READ_TIMEOUT`` seconds without progress, counted, and said nowhere on stderr (a traceback per client before)."""
    url = _endpoint(monkeypatch, connections=8, timeout=1.0)
    for c in range(20):  # about 8 MB of text: more than the socket buffers of both ends hold
        counter = tradeobs_agent.counter(f"big.series{c}", unit="{x}")
        for i in range(1_500):
            counter.add(1, {"label": f"value-{i:06d}-" + "x" * 200})
    threads = threading.active_count()
    s = socket.create_connection((url.hostname, url.port), timeout=10)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        s.recv(1024)  # the answer began; now nothing more is read
        wait_for(lambda: _refused().get("timeout", 0) >= 1, "the stalled answer cut", limit=30)
        wait_for(lambda: threading.active_count() <= threads, "its thread ended", limit=30)
    finally:
        s.close()
