"""The shutdown's check of whether an exporter's collector answers (``exporters.abandon_unreachable``) looks at the
port the exporter connects to, as ``tradeobs doctor`` probes it, also when the endpoint names none.

OTLP/HTTP to ``http://otel-gateway`` goes to port 80 (``requests``), OTLP/gRPC to ``http://collector`` to 443
(gRPC's own default for a target without a port). The check used 4317 for both: a service sending OTLP/HTTP to a
gateway on port 80, with nothing on 4317 there, was told at every shutdown that "the collector did not answer", and
what its batch processor still held (up to the last 5 s of spans) was counted as dropped instead of delivered.
"""

from __future__ import annotations

import pytest

from tradeobs_agent._internal import providers
from tradeobs_agent._internal.exporters import CountingSpanExporter, not_answering
from tradeobs_agent.config import resolve_settings
from tradeobs_agent.metrics import Registry


@pytest.mark.parametrize(
    ("protocol", "endpoint", "port"),
    [
        ("http/protobuf", "http://otel-gateway.invalid", 80),
        ("http/protobuf", "https://otel-gateway.invalid", 443),
        ("grpc", "http://collector.invalid", 443),
        ("grpc", "https://collector.invalid", 443),
    ],
)
def test_an_endpoint_without_a_port_is_checked_where_its_exporter_connects(
    protocol: str, endpoint: str, port: int
) -> None:
    settings, _ = resolve_settings(otlp_endpoint=endpoint, otlp_protocol=protocol)
    inner, target = providers._otlp_exporter(settings, "traces")
    exp = CountingSpanExporter(inner, "traces", target, Registry().self_metrics)
    try:
        assert exp.check_port == port
    finally:
        exp.shutdown()


def test_the_check_connects_to_the_port_it_is_given_when_the_target_names_none() -> None:
    """A real listener on a free loopback port: found there when given as the default, not at 4317's place."""
    import socket

    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        port = srv.getsockname()[1]
        assert not_answering("http://127.0.0.1", default_port=port) is None
        assert not_answering(f"http://127.0.0.1:{port}/v1/traces", default_port=1) is None  # a port named wins
