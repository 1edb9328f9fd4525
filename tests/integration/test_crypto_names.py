"""A crypto market maker's names and numbers, end to end through the real parts: a service (the ``crypto`` scenario of
agent_workload.py: strategy ``mm & hedge`` on ``okx.swap``, symbols ``BTC/USDT``, ``1000PEPEUSDT``,
``BTC-27DEC26-100000-C``, ``SOL:USDC``, ``btc_jpy``) exporting to otelcol-tradeobs, Prometheus scraping it with
compose's config and rules, Jaeger with compose's config, and the dashboards' queries as Grafana runs them
(grafana_eval). Every name arrives as the service wrote it, every price and quantity to its last digit, and the
dashboards find them by those names."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from .agent_proc import AgentWorkload, unique_service
from .agent_workload import CRYPTO_LOG_MESSAGE, CRYPTO_ORDERS, CRYPTO_STRATEGY, CRYPTO_VENUE
from .grafana_eval import DATASOURCES, GRAFANA, Evaluator
from .procs import (
    CollectorProc,
    JaegerProc,
    PrometheusProc,
    jaeger_trace,
    prometheus_query,
    read_otlp_json_logs,
    span_tags,
    wait_for,
)
from .test_dashboards import compose_stack

pytestmark = pytest.mark.integration

OVERVIEW = json.loads((GRAFANA / "dashboards" / "trading-overview.json").read_text())
DRILL = json.loads((GRAFANA / "dashboards" / "order-drilldown.json").read_text())
EXPORT_INTERVAL = 2.0
# Failure deadline for data to reach Prometheus through compose's 10-15 s scrape and rule intervals.
DATA_DEADLINE = 240.0


@dataclass
class Desk:
    jaeger: JaegerProc
    collector: CollectorProc
    prometheus: PrometheusProc
    service: AgentWorkload

    @property
    def job(self) -> str:
        return self.service.service_name

    @property
    def orders(self) -> list[dict[str, Any]]:
        return list(self.service.ready["orders"])


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    tmp = tmp_path_factory.mktemp("crypto")
    with (
        compose_stack(tmp) as (jaeger, collector, _, prom, _),
        AgentWorkload("crypto", collector, tmp / "mm", unique_service("mm"), EXPORT_INTERVAL) as service,
    ):
        d = Desk(jaeger, collector, prom, service)

        def positions() -> list[dict[str, Any]] | None:
            res = prometheus_query(prom.url, f'trading_position_quantity{{job="{d.job}"}}')
            return res if len(res) == len(CRYPTO_ORDERS) else None

        wait_for(positions, "the desk's positions in Prometheus", DATA_DEADLINE, procs=(collector.proc, prom.proc))
        yield d


def test_names_and_numbers_reach_prometheus_as_written(desk: Desk) -> None:
    """Through the collector's prometheus exporter: ``mm & hedge``, ``okx.swap``, ``BTC/USDT``, ``SOL:USDC`` as label
    values verbatim; a position of 0.00012345 and of -1.5e9, a price of 0.00000123, to the last digit."""
    qty = {
        s["metric"]["symbol"]: (s["metric"]["strategy"], s["metric"]["venue"], float(s["value"][1]))
        for s in prometheus_query(desk.prometheus.url, f'trading_position_quantity{{job="{desk.job}"}}')
    }
    assert qty == {s: (CRYPTO_STRATEGY, CRYPTO_VENUE, q) for s, (_, q, _) in CRYPTO_ORDERS.items()}, qty
    prices = {
        s["metric"]["symbol"]: float(s["value"][1])
        for s in prometheus_query(desk.prometheus.url, f'trading_marketdata_price{{job="{desk.job}"}}')
    }
    assert prices == {s: p for s, (p, _, _) in CRYPTO_ORDERS.items()}, prices


def test_spans_and_logs_carry_the_names_and_numbers(desk: Desk) -> None:
    """The order's span in Jaeger and its log record at the collector: the strategy, venue and symbol as written, the
    quantity 1.5e9 and the fill price 0.00000122 as numbers."""
    (pepe,) = [o for o in desk.orders if o["symbol"] == "1000PEPEUSDT"]

    def whole() -> dict[str, Any] | None:
        trace = jaeger_trace(desk.jaeger.query_url, pepe["trace_id"])
        return trace if trace and {"order", "fill"} <= {s["operationName"] for s in trace["spans"]} else None

    trace = wait_for(whole, "the PEPE order's trace", DATA_DEADLINE)
    (order,) = [span_tags(s) for s in trace["spans"] if s["operationName"] == "order"]
    assert (order["strategy"], order["venue"], order["symbol"]) == (CRYPTO_STRATEGY, CRYPTO_VENUE, "1000PEPEUSDT")
    assert float(order["order.qty"]) == 1.5e9, order

    def record() -> dict[str, Any] | None:
        want = CRYPTO_LOG_MESSAGE % (pepe["order_id"], "1000PEPEUSDT")
        records = read_otlp_json_logs(desk.collector.logs_file)
        found = [r for r in records if r.get("body", {}).get("stringValue") == want]
        return found[0] if found else None

    rec = wait_for(record, "the PEPE order's log record at the collector", DATA_DEADLINE)
    attrs = rec["_attributes"]
    assert (attrs["symbol"], float(attrs["qty"]), float(attrs["price"])) == ("1000PEPEUSDT", 1.5e9, 0.00000122), attrs
    assert rec["traceId"] == pepe["trace_id"], rec


def test_the_slow_orders_table_finds_a_strategy_named_with_a_space_and_an_ampersand(desk: Desk) -> None:
    """The drill-down's "Slow orders on $venue, strategy $strategy" searches Jaeger by the tags ``venue=$venue
    strategy=$strategy``, logfmt: ``strategy=mm & hedge`` was the tag ``strategy=mm`` and two more, ``&`` and ``hedge``
    (Grafana's logfmt parser; the evaluator refused it), so no order of the strategy was ever listed. The values are
    quoted now: the table lists every order of the desk."""
    ev = Evaluator(desk.prometheus.url, desk.jaeger.query_url, DATASOURCES)
    choose = {"job": desk.job, "venue": CRYPTO_VENUE, "strategy": CRYPTO_STRATEGY, "min_latency": "10ms"}
    start, end = ev.time_range(DRILL)
    # (the label values API takes whole seconds: a scrape in the query's second is offered from the next one)
    variables = wait_for(lambda: ev.resolve_variables(DRILL, choose, start, end + 1), "the desk offered", 60)
    (table,) = [q for q in ev.queries(DRILL, variables, start, end) if q.panel.startswith("Slow orders on")]
    assert table.target["tags"] == f'venue="{CRYPTO_VENUE}" strategy="{CRYPTO_STRATEGY}"', table.describe()
    want = {o["trace_id"] for o in desk.orders}
    rows = wait_for(lambda: (r := ev.run(table)) and want <= {t["traceID"] for t in r} and r, table.describe(), 120)
    for trace in rows:
        (tags,) = [span_tags(s) for s in trace["spans"] if s["operationName"] == "order"]
        assert (tags["venue"], tags["strategy"]) == (CRYPTO_VENUE, CRYPTO_STRATEGY), tags


def test_the_overview_picks_symbols_with_slashes_colons_and_dashes(desk: Desk) -> None:
    """The overview's Symbol variable (regex-escaped by Grafana as a multi-value one) with ``BTC/USDT``, ``SOL:USDC``
    and ``BTC-27DEC26-100000-C`` picked: the positions table shows exactly those three."""
    ev = Evaluator(desk.prometheus.url, desk.jaeger.query_url, DATASOURCES)
    start, end = ev.time_range(OVERVIEW)
    picked = ["BTC/USDT", "SOL:USDC", "BTC-27DEC26-100000-C"]
    variables = wait_for(
        lambda: ev.resolve_variables(OVERVIEW, {"job": desk.job, "symbol": picked}, start, end + 1), "the symbols", 60
    )
    (qty,) = [
        q for q in ev.queries(OVERVIEW, variables, start, end) if q.panel.startswith("Positions now") and q.ref == "A"
    ]
    want = {s: CRYPTO_ORDERS[s][1] for s in picked}

    def table() -> dict[str, float] | None:
        got = {s["metric"]["symbol"]: float(s["value"][1]) for s in ev.run(qty)}
        return got if set(got) >= set(want) else None

    got = wait_for(table, qty.describe(), 60)
    assert got == want, (qty.describe(), got)


def test_the_symbol_variable_lists_symbols_whatever_their_case(desk: Desk) -> None:
    """The overview's Symbol picker lists ``btc_jpy`` next to ``BTC/USDT`` and ``BTC-27DEC26-100000-C``: Grafana's
    case-insensitive alphabetical sort (``sort: 5``). Before (2026-12-07) the variables sorted by code point
    (``sort: 1``), and every lower-case symbol came after every upper-case one: ``btc_jpy`` last, after ``SOL:USDC``."""
    ev = Evaluator(desk.prometheus.url, desk.jaeger.query_url, DATASOURCES)
    start, end = ev.time_range(OVERVIEW)

    def offered() -> list[str] | None:
        options = ev.resolve_variables(OVERVIEW, {"job": desk.job}, start, end + 1)["symbol"].options
        return options if set(CRYPTO_ORDERS) <= set(options) else None

    options = wait_for(offered, "every symbol offered", 60)
    crypto = [o for o in options if o in CRYPTO_ORDERS]
    assert crypto == ["1000PEPEUSDT", "BTC-27DEC26-100000-C", "BTC/USDT", "btc_jpy", "SOL:USDC"], options
