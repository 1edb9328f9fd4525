"""tests/_util.free_port: the ports the suite's servers get."""

from __future__ import annotations

import socket

import pytest

from tests import _util


def test_free_port_never_hands_out_a_port_browsers_refuse(monkeypatch: pytest.MonkeyPatch) -> None:
    """A browser test's server got 10080 and Chromium refused it (net::ERR_UNSAFE_PORT at page.goto).

    Around 6566, another port Chromium refuses, below every worker's slice (from 10000): around 10080, in gw0's,
    the suite's own servers held some of the pool's ports, and the test failed on a loaded full run."""
    assert 6566 in _util.BROWSER_UNSAFE_PORTS and _util._pool().start >= 10000
    pool = range(6564, 6569)
    monkeypatch.setattr(_util, "_pool", lambda: pool)
    monkeypatch.setattr(_util, "_next", [6566])
    monkeypatch.setattr(_util, "_handed_out", set())
    got = [_util.free_port() for _ in range(4)]
    assert 6566 not in got and sorted(got) == [6564, 6565, 6567, 6568]


def test_a_dead_endpoint_refuses_connects_and_no_server_can_take_its_port() -> None:
    """The dead endpoint's port was only free a moment ago: once a gRPC server of another test took it, and the
    "dead" collector answered UNIMPLEMENTED. Its port is now held, bound and never listening, for the run."""
    url = _util.dead_endpoint()
    port = int(url.rsplit(":", 1)[1])
    with socket.socket() as client, pytest.raises(ConnectionRefusedError):
        client.connect(("127.0.0.1", port))
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Go's listeners set it
        with pytest.raises(OSError, match="in use"):
            server.bind(("127.0.0.1", port))
