"""The stores behind the collector down for a minute, the collector restarted meanwhile (``harness.LOAD``).

The deployment's shape: Jaeger with its on-disk store (the compose config, badger), the collector's logs going
over OTLP/HTTP with a disk queue to a log store (a second otelcol-tradeobs stands in for Loki, which runs only as
an image), Prometheus scraping the collector. All three go down, the collector is restarted while they are down
(its disk queue holds what it accepted), they come back: nothing already queued is lost.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from pathlib import Path

import pytest

from tests.integration.procs import http_get

from .harness import (
    LOAD,
    DemoService,
    Phase,
    Pipeline,
    collector_metric,
    counters_relayed,
    logs_account,
    loop_figures,
    settle,
    spans_account,
)
from .report import Row, record
from .test_collector import NO_FAULT_S, WARMUP_S, _balanced, _no_traceback, _queues_bounded

pytestmark = [pytest.mark.faults]

DOWN_S = 60.0
RESTART_AT_S = 20.0  # the collector is restarted this long into the stores' outage
AFTER_S = 10.0
DELIVERY_S = 120.0  # failure deadline: the collector's retries back off up to 30 s


def _samples_before(prometheus_url: str, service: str, at: float) -> float:
    """How many samples of the service's order counters Prometheus holds up to ``at`` (epoch seconds)."""
    q = f'sum(count_over_time(trading_orders_submitted_total{{job="{service}"}}[15m]))'
    status, body = http_get(f"{prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": q, "time": at}))
    data = json.loads(body)
    assert status == 200 and data["status"] == "success", body[:300]
    res = data["data"]["result"]
    return float(res[0]["value"][1]) if res else 0.0


def test_trace_store_log_store_and_prometheus_down_for_a_minute_collector_restarted_meanwhile(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Jaeger and the log store stopped, Prometheus killed, for 60 s; the collector stopped and started 20 s in.

    What the collector had accepted waits in its disk queue across its restart and is delivered when the stores
    return: every span and log record the service recorded is in the stores, Prometheus still has every sample it
    had scraped before (its WAL) and, after, exactly the service's order counters.
    """
    with (
        Pipeline(tmp_path, trace_store="badger", log_store=True) as pipe,
        DemoService(pipe.otlp_endpoint, tmp_path / "svc") as svc,
    ):
        assert pipe.prometheus is not None and pipe.collector is not None
        time.sleep(WARMUP_S)
        before = Phase(svc, "no fault").run(NO_FAULT_S)
        t_down = time.time()
        # A scrape stamped before t_down becomes visible when it completes (scrape timeout 1 s): read the count
        # once those are in, else a sample stamped before t_down shows up only after the restart (400 -> 420).
        time.sleep(2.0)
        scraped = settle(lambda: _samples_before(pipe.prometheus.url, svc.service_name, t_down), 10.0)
        pipe.stop_jaeger()
        pipe.stop_log_store()
        pipe.kill_prometheus()
        down1 = Phase(svc, "stores down").run(RESTART_AT_S)
        collector = pipe.collector
        queued = collector_metric(collector, "otelcol_exporter_queue_size")
        pipe.stop_collector()
        pipe.start_collector()
        down2 = Phase(svc, "stores down, collector restarted").run(DOWN_S - RESTART_AT_S)
        queued_after_restart = collector_metric(pipe.collector, "otelcol_exporter_queue_size")  # type: ignore[arg-type]
        pipe.start_jaeger()
        pipe.start_log_store()
        pipe.restart_prometheus()
        after = Phase(svc, "after").run(AFTER_S)
        svc.set_orders(0)
        assert svc.flush(60.0)["ok"], "the agent did not deliver to the collector"
        own = counters_relayed(svc.state()["prometheus_url"], pipe.prometheus.url, svc.service_name)
        still = _samples_before(pipe.prometheus.url, svc.service_name, t_down)
        final = svc.stop()
        assert pipe.jaeger is not None
        spans = settle(lambda: spans_account(svc.workdir, pipe.jaeger.query_url, svc.service_name, final), DELIVERY_S)
        logs = settle(lambda: logs_account(svc.workdir, pipe.log_files, svc.service_name, final), DELIVERY_S)

    assert scraped > 0, "Prometheus had scraped nothing before the outage"
    assert still == scraped, f"Prometheus lost samples scraped before it was killed: {scraped:g} -> {still:g}"
    assert queued_after_restart > 0, "the restarted collector found nothing in its disk queue"
    stalls = down1.stalls() + down2.stalls() + after.stalls()
    assert not stalls, f"the trading loop stalled: {stalls}"
    _queues_bounded(before, down1, down2, after)
    _no_traceback(svc)
    fig = {
        **loop_figures(before, down1),
        "collector queue": f"{queued:g} batches when it was stopped, {queued_after_restart:g} after its restart "
        "(before the stores returned)",
        "Prometheus": f"{scraped:g} order-counter samples scraped before the kill, {still:g} after its restart; "
        f"then {own['trading_orders_submitted_total']:g} orders submitted, as the service counted",
        "spans": _balanced(spans),
        "logs": _balanced(logs),
    }
    assert spans.dropped == 0 and logs.dropped == 0, f"the agent counted drops: {spans}; {logs}"
    record(
        request.node.nodeid,
        Row(
            section="Faults",
            order=40,
            case="trace store (Jaeger, badger) and log store (OTLP/HTTP) stopped, Prometheus killed, "
            f"for {DOWN_S:g} s; the collector stopped and started {RESTART_AT_S:g} s in "
            "(its disk queue across the restart)",
            load=f"{LOAD}; {NO_FAULT_S:g} s no fault, {DOWN_S:g} s down, {AFTER_S:g} s after",
            outcome="kept trading (a step and an order in every 5 s); the restarted collector resumed its disk queue "
            "and delivered it when the stores returned; Prometheus kept every sample scraped before its kill and "
            "then had exactly the service's order counters; no traceback",
            lost="nothing: every span and log record recorded reached the stores, none counted as dropped",
            figures=fig,
        ),
    )
