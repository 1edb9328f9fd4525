"""A collector that is down fails every signal's export at once: the agent says that outage in ONE console line
naming the signals, not one line per signal in the same words (up to three lines for one fact). Each signal's
failures are still counted, and the line (in the agent's log too) keeps each signal's cause and what happens to its
batches. The exporters are the agent's own (``providers``), sending to a real endpoint where nothing listens."""

from __future__ import annotations

import logging
import sys
import threading

import pytest
from opentelemetry.sdk.resources import Resource

from tests._util import dead_endpoint, wait_for
from tradeobs_agent._internal import exporters, providers
from tradeobs_agent.config import resolve_settings
from tradeobs_agent.metrics import Registry


def _mine(endpoint: str) -> list[exporters._Counting]:
    return [e for e in list(exporters._LIVE) if endpoint.removeprefix("http://") in e.target]


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
@pytest.mark.parametrize("log_on_console", [False, True], ids=["log-elsewhere", "log-on-stderr"])
def test_a_collector_that_is_down_is_said_in_one_line_naming_every_signal(
    protocol: str,
    log_on_console: bool,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(exporters, "_console_told", False)  # the first outage of the process: printed on stderr
    # Either the log does not reach the console (the agent prints the first outage itself), or the application's
    # handler prints the tradeobs log on stderr (logging.basicConfig): before, one line per signal there.
    monkeypatch.setattr(exporters, "on_console", lambda: log_on_console)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    if log_on_console:
        logging.getLogger("tradeobs").addHandler(handler)
    # Said once every signal's exporter of that endpoint has failed: never by the clock here (a loaded machine).
    monkeypatch.setattr(exporters, "_GROUP_MOMENT", 3600.0, raising=False)
    endpoint = dead_endpoint()
    settings, _ = resolve_settings(otlp_endpoint=endpoint, otlp_protocol=protocol, otlp_timeout=1.0)
    reg = Registry()
    selfm = reg.self_metrics
    resource = Resource.create({"service.name": "one-line"})
    tracing = providers.build_tracing(settings, resource, selfm)
    meters, _ = providers.build_metrics(settings, resource, reg, selfm, serve_prometheus=False)
    logs = providers.build_logs_provider(settings, resource, selfm)
    printed: list[str] = []
    try:
        with caplog.at_level(logging.WARNING, logger="tradeobs"):
            tracing.get_tracer("t").start_span("order").end()
            meters.get_meter("m").create_counter("orders").add(1)
            logs.get_logger("l").emit(body="filled")
            for provider in (tracing, logs, meters):
                provider.force_flush(2_000)

            def said() -> bool:
                printed.extend(capsys.readouterr().err.splitlines())
                return any("cannot export" in line for line in printed)

            wait_for(said, "the outage to be said", limit=60)
            # the old code printed the first signal's line at once: give the others the same chance to show
            wait_for(lambda: all(e.last_error for e in _mine(endpoint)), "every signal to fail", limit=60)
            printed.extend(capsys.readouterr().err.splitlines())
        outage = [line for line in printed if "cannot export" in line]
        assert len(outage) == 1, printed
        line = outage[0]
        host = endpoint.removeprefix("http://")
        assert line.startswith("tradeobs: cannot export traces, logs and metrics to "), line
        assert host in line and "an outage began" in line, line
        # what happens to each signal's batches: traces and logs are kept, metrics' retries go on
        assert "traces and logs: batches are kept and sent again when it answers; metrics: retries go on" in line, line
        logged = [r.getMessage() for r in caplog.records if "cannot export" in r.getMessage()]
        assert logged == [line], logged  # the agent's log has the same line, not three
        mine = _mine(endpoint)
        assert sorted(e.signal for e in mine) == ["logs", "metrics", "traces"]
        for e in mine:  # each signal's failures still counted, in its own series
            failed = selfm.exports_failed.bind(signal=e.signal, exporter=type(e.inner).__name__).value
            assert failed >= 1, (e.signal, failed)
    finally:
        logging.getLogger("tradeobs").removeHandler(handler)
        for provider in (tracing, logs, meters):
            provider.shutdown()


class _NoThreadAtShutdown(threading.Timer):
    def start(self) -> None:
        raise RuntimeError("can't create new thread at interpreter shutdown")


def test_an_outage_beginning_at_interpreter_shutdown_is_said_at_once(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A script's last flush runs in an atexit handler, where Python 3.12+ starts no new thread: the timer that waits
    for the other signals could not start, and the outage was an internal error instead of its line (seen on 3.12:
    "tradeobs internal error at delivery.traces: RuntimeError(\"can't create new thread at interpreter shutdown\")",
    and no line saying the shutdown ran out of its bound). Now said at once, alone."""
    monkeypatch.setattr(exporters, "_console_told", False)
    monkeypatch.setattr(exporters, "on_console", lambda: False)
    monkeypatch.setattr(exporters, "_GROUP_MOMENT", 3600.0, raising=False)
    monkeypatch.setattr(exporters.threading, "Timer", _NoThreadAtShutdown)
    endpoint = dead_endpoint()
    settings, _ = resolve_settings(otlp_endpoint=endpoint, otlp_protocol="grpc", otlp_timeout=1.0)
    selfm = Registry().self_metrics
    resource = Resource.create({"service.name": "one-line-at-exit"})
    tracing = providers.build_tracing(settings, resource, selfm)
    logs = providers.build_logs_provider(settings, resource, selfm)  # a sibling that never fails: the group waits
    printed: list[str] = []
    try:
        with caplog.at_level(logging.WARNING, logger="tradeobs"):
            tracing.get_tracer("t").start_span("order").end()
            tracing.force_flush(2_000)

            def said() -> bool:
                printed.extend(capsys.readouterr().err.splitlines())
                return any("cannot export" in line for line in printed)

            wait_for(said, "the outage to be said at once", limit=60)
        outage = [line for line in printed if "cannot export" in line]
        assert len(outage) == 1 and outage[0].startswith("tradeobs: cannot export traces to "), printed
        assert not [r for r in caplog.records if "internal error" in r.getMessage()], caplog.text
    finally:
        for provider in (tracing, logs):
            provider.shutdown()
