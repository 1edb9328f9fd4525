"""TRADEOBS_OTLP_ENDPOINT on the collector's other OTLP receiver: gRPC sent to its OTLP/HTTP port, or OTLP/HTTP sent
to its gRPC port. A newcomer's first mistake with a real collector (one digit: 4317 or 4318).

Real otelcol-tradeobs (collector/otel-collector.yaml, as the other integration tests run it), the agent's own OTLP
exporters, and a user's script run as the user runs it.

Before (measured 2026-12-07 with these tests, on the old code): the SDK's exporter took the other receiver's answer
for a transient failure (gRPC ``UNAVAILABLE``, HTTP a connection error) and retried it inside each export (1 s, 2 s,
4 s ...), at exit too: a four-line script hung for the whole shutdown bound (5 s) and ended with "tradeobs shutdown
did not finish within its bound". On the way the console showed the same failure three ways: the SDK's own
"Transient error ... retrying in 1.14s" line, the agent's "cannot export traces to ... (export failed)" (no cause)
and the shutdown's. Now the first answer is taken for what it is: the SDK gives up at once, the agent says it once,
with the cause and the fix, and at exit what is kept is given up at once, counted (``reason="shutdown"``).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._util import dead_endpoint, ended_spans
from tradeobs_agent._internal import exporters, providers
from tradeobs_agent._internal.exporters import (
    CountingSpanExporter,
    Retry,
    abandon_unreachable,
    install_duplicate_filter,
    remove_duplicate_filter,
)
from tradeobs_agent.config import resolve_settings
from tradeobs_agent.metrics import Registry

from .procs import REPO, CollectorProc, collector_env, start_collector

pytestmark = pytest.mark.integration

# protocol the agent sends -> (the receiver it is pointed at, the setting that fixes it)
CASES = {"grpc": ("http", "http/protobuf"), "http/protobuf": ("grpc", "grpc")}


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorProc]:
    workdir = tmp_path_factory.mktemp("wrong-protocol")
    with start_collector(workdir, "", env=collector_env(workdir, dead_endpoint())) as col:
        yield col


def _other_port(col: CollectorProc, protocol: str) -> str:
    """The endpoint of the receiver that does not speak ``protocol``."""
    return col.otlp_http_endpoint if protocol == "grpc" else f"http://{col.otlp_grpc_endpoint}"


@pytest.mark.parametrize("protocol", list(CASES))
def test_the_sdk_gives_up_at_the_first_answer_and_the_agent_says_why_once(
    collector: CollectorProc, protocol: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One export: one failed attempt (the SDK's retry loop did not go on: it logged no "Transient error ...
    retrying"), the batch kept, the cause and the fix said by the agent; at shutdown the exporter is given up at
    once, its kept spans counted as dropped (``reason="shutdown"``)."""
    monkeypatch.setattr(exporters, "_console_kinds", set())  # said in full once per receiver and process
    settings, _ = resolve_settings(
        otlp_endpoint=_other_port(collector, protocol), otlp_protocol=protocol, otlp_timeout=5.0
    )
    inner, target = providers._otlp_exporter(settings, "traces")
    reg = Registry()
    exp = CountingSpanExporter(inner, "traces", target, reg.self_metrics, Retry(100_000, 300.0))
    sdk_filter = install_duplicate_filter(reg.self_metrics)  # as init() does
    try:
        with caplog.at_level(logging.DEBUG):
            assert exp._send(ended_spans(3)) is False  # kept: not delivered, not dropped
        failed = reg.self_metrics.exports_failed.bind(signal="traces", exporter=type(inner).__name__).value
        assert failed == 1
        sdk = [r for r in caplog.records if r.name.startswith("opentelemetry.")]
        assert not [r for r in sdk if "Transient error" in r.getMessage()], [r.getMessage() for r in sdk]
        # The SDK's own line about it is kept, as a debug record: the agent's message is the one printed.
        assert sdk and all(r.levelno == logging.DEBUG for r in sdk), [(r.levelname, r.getMessage()) for r in sdk]
        other, fix = CASES[protocol]
        said = [
            r.getMessage() for r in caplog.records if r.name == "tradeobs" and "cannot export traces" in r.getMessage()
        ]
        assert len(said) == 1, said
        assert f"as an OTLP/{other.upper() if other == 'http' else 'gRPC'} receiver does" in said[0], said[0]
        assert f"TRADEOBS_OTLP_PROTOCOL={fix}" in said[0], said[0]
        assert exp.wrong_protocol is not None
        exp.delivery.submit(ended_spans(2))  # type: ignore[union-attr]
        gone = abandon_unreachable(deadline=float("inf"))
        assert target in gone
        exp.delivery.settle(60.0)  # type: ignore[union-attr]  # a batch the sender had out is counted when it returns
        dropped = reg.self_metrics.items_dropped.bind(signal="traces", reason="shutdown").value
        assert dropped >= 2  # what was kept, with what the sender had not yet tried
        assert exp.gone_because == exp.wrong_protocol
    finally:
        remove_duplicate_filter(sdk_filter)
        exp.deadline = 0.0
        exp.shutdown()


SCRIPT = """\
import tradeobs_agent
tradeobs_agent.init(service_name="my-algo", trading_mode="paper")
tt = tradeobs_agent.TradingTelemetry(strategy="s", venue="v")
log = tradeobs_agent.get_logger("execution")
for n in range(5):
    o = tt.order_signal(f"my-{n}", "MSFT", "buy", 50, 410.0)
    o.submitted()
    o.fill(50, 410.02)
    log.info("filled %s", n)
"""


@pytest.mark.parametrize("protocol", list(CASES))
def test_a_script_pointed_at_the_other_receiver_exits_having_said_it_once(
    collector: CollectorProc, protocol: str, tmp_path: Path
) -> None:
    """The user's script, run as the user runs it: the first export happens at exit. The SDK's raw lines are not on
    the console, the agent's message is (once in full, with the fix), and the shutdown gives the exporters up at once
    for that reason (before: it waited its whole bound, "shutdown did not finish within its bound")."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRADEOBS_", "OTEL_"))}
    env.update(
        PYTHONPATH=str(REPO / "agent"),
        TRADEOBS_OTLP_ENDPOINT=_other_port(collector, protocol),
        TRADEOBS_OTLP_PROTOCOL=protocol,
        TRADEOBS_PROMETHEUS_ENABLED="false",
        TRADEOBS_LIVE_ENABLED="false",
    )
    ran = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert ran.returncode == 0, ran.stderr
    err = ran.stderr
    other, fix = CASES[protocol]
    receiver = "OTLP/HTTP receiver" if other == "http" else "OTLP/gRPC receiver"
    # The SDK's own words are not printed beside the agent's.
    for raw in ("Transient error", "Failed to export", "encountered while exporting"):
        assert raw not in err, err
    full = [line for line in err.splitlines() if f"TRADEOBS_OTLP_PROTOCOL={fix}" in line and "cannot export" in line]
    assert len(full) == 1, err
    assert f"as an {receiver} does" in full[0], full[0]
    # At exit: given up at once for that reason (not at the end of the shutdown's bound), what was kept counted.
    for signal, items in (("traces", "spans"), ("logs", "log records")):
        gave_up = [line for line in err.splitlines() if f"{items} not delivered" in line]
        assert len(gave_up) == 1, err
        assert (
            f"given up at once, it answers in HTTP/{1 if other == 'http' else 2} only, as an {receiver} does"
            in gave_up[0]
        ), gave_up[0]
        assert 'reason="shutdown"' in gave_up[0] and f'signal="{signal}"' in gave_up[0], gave_up[0]
