"""``tradeobs doctor``'s OTLP probe is bounded by its timeout, name resolution included.

It resolved the collector's name with no bound (``socket.create_connection`` and ``urllib`` call ``getaddrinfo``,
which waits as long as the system resolver likes: tens of seconds for an unreachable DNS server, several search
domains tried in turn), so ``doctor`` could hang far past the timeout it reports. A resolver that does not answer
is stood in for here by a ``getaddrinfo`` that waits until the test ends (no DNS server can be made slow here).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tradeobs_agent._internal.otlp_probe import probe
from tradeobs_agent.config import OtlpTarget

SLOW = "collector.slow-dns.example"


@pytest.fixture
def slow_dns(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    release = threading.Event()
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == SLOW:
            release.wait(30)
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield release
    release.set()


@pytest.mark.parametrize(
    ("protocol", "endpoint"), [("grpc", f"http://{SLOW}:4317"), ("http/protobuf", f"http://{SLOW}:4318/v1/traces")]
)
def test_a_name_that_does_not_resolve_in_time_is_said_within_the_timeout(
    slow_dns: threading.Event, protocol: str, endpoint: str
) -> None:
    target = OtlpTarget(endpoint=endpoint, protocol=protocol, headers={}, timeout=10.0, insecure=True)
    result = probe(target, "traces", timeout=0.5)
    assert not slow_dns.is_set()  # the resolver was still waiting: the probe did not wait for it
    assert result.ok is False, result
    assert f"{SLOW} did not resolve within 0.5" in result.detail, result


def test_a_name_that_does_not_exist_is_said(monkeypatch: pytest.MonkeyPatch) -> None:
    target = OtlpTarget(endpoint="http://no-such-host.invalid:4317", protocol="grpc", headers={}, timeout=10.0,
                        insecure=True)  # fmt: skip
    result = probe(target, "traces", timeout=2.0)
    assert result.ok is False and "no-such-host.invalid" in result.detail, result
