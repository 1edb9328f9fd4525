"""Order drill-down: one order's trace (its latency breakdown), fills and logs, by ``order_id``.

Open it with the variables set, e.g. from an order id in a log line or the live page:
``/d/tradeobs-order?var-job=<service>&var-order_id=<client order id>&var-trace_id=<trace id>``.
Order ids are never metric labels (one series per order), so the order itself comes
from the trace store (Jaeger: the ``order`` trace with its ``risk_check``, ``submit``,
``ack`` and ``fill`` spans, each covering the time since the previous step) and the
log store (records carry ``order_id``); Prometheus gives the comparison with the other
orders of the symbol, with exemplars that open their traces.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import logs, table, timeseries
from grafana_foundation_sdk.builders.dashboard import (
    CustomVariable,
    Dashboard,
    Panel,
    QueryVariable,
    Row,
    TextBoxVariable,
)
from grafana_foundation_sdk.models.dashboard import DashboardCursorSync, VariableOption, VariableRefresh, VariableSort

from ._common import (
    JAEGER,
    LOKI,
    MODE,
    ORDER_UID,
    PIPELINE_UID,
    PROMETHEUS,
    TRADING_UID,
    Ids,
    dashboard_link,
    jaeger_search,
    jaeger_trace,
    loki,
    mode_variable,
    prom,
    prom_variable,
    service_variable,
)

JS = f'job="$job",{MODE},symbol=~"$symbol"'


def _choice(name: str, label: str, values: list[str], default: str) -> CustomVariable:
    return (
        CustomVariable(name)
        .label(label)
        .values(",".join(values))
        .current(VariableOption(selected=True, text=default, value=default))
        .options([VariableOption(selected=v == default, text=v, value=v) for v in values])
    )


def _p99(ref: str, metric: str, step: str) -> object:
    return prom(
        ref,
        f"histogram_quantile(0.99, sum by (le) (rate({metric}_bucket{{{JS}}}[$__rate_interval])))",
        step,
        exemplar=True,
    )


def build() -> Dashboard:
    ids = Ids()
    latency = timeseries.Panel().title("Latency by step, p99 (dots: orders' traces)").datasource(PROMETHEUS)
    for target in (
        _p99("A", "trading_order_signal_to_submit_latency_seconds", "signal -> submit"),
        _p99("B", "trading_order_submit_to_ack_latency_seconds", "submit -> ack"),
        _p99("C", "trading_order_submit_to_fill_latency_seconds", "submit -> fill"),
    ):
        latency = latency.with_target(target)  # type: ignore[arg-type]
    return (
        Dashboard("tradeobs / Order drill-down")
        .uid(ORDER_UID)
        .description("One order: its trace (latency breakdown), fills and logs, found by order id.")
        .tags(["tradeobs", "trading", "orders"])
        .readonly()
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .time("now-1h", "now")
        .refresh("30s")
        .with_variable(mode_variable())
        .with_variable(
            QueryVariable("job")
            .label("Service")
            .datasource(PROMETHEUS)
            .query(f"label_values(trading_orders_submitted_total{{{MODE}}}, job)")
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(VariableSort.ALPHABETICAL_ASC)
            .multi(False)
            .include_all(False)
        )
        .with_variable(service_variable('job="$job"', multi=False))
        .with_variable(
            prom_variable(
                "symbol", "Symbol", f'label_values(trading_orders_submitted_total{{job="$job",{MODE}}}, symbol)'
            )
        )
        .with_variable(TextBoxVariable("order_id").label("Order id (client)").description("The client order id"))
        .with_variable(
            TextBoxVariable("trace_id")
            .label("Trace id")
            .description("The order's trace id: from the search table below, a log line, or the live page")
        )
        .with_variable(
            _choice("min_latency", "Slow: at least", ["1ms", "5ms", "10ms", "25ms", "50ms", "100ms", "500ms"], "10ms")
        )
        .with_variable(_choice("max_latency", "at most", ["100ms", "500ms", "1s", "5s", "10s", "60s"], "10s"))
        .link(dashboard_link("Trading overview", TRADING_UID))
        .link(dashboard_link("Pipeline health", PIPELINE_UID))
        # ------------------------------------------------------------ the order
        .with_row(Row("Order $order_id").id(ids()))
        .with_panel(
            table.Panel()
            .id(ids())
            .title("Order $order_id: its trace (Jaeger search by order.id)")
            .description("Click the trace id to open the trace; put it in 'Trace id' to show it below.")
            .datasource(JAEGER)
            .with_target(jaeger_search("A", "$service", operation="order", tags="order.id=$order_id"))
            .span(24)
            .height(5)
        )
        .with_panel(
            Panel()
            .type("traces")
            .id(ids())
            .title("Trace $trace_id: latency breakdown (risk_check, submit, ack, fills)")
            .datasource(JAEGER)
            .with_target(jaeger_trace("A", "$trace_id"))
            .span(24)
            .height(12)
        )
        .with_panel(
            logs.Panel()
            .id(ids())
            .title("Order $order_id: all log records")
            .datasource(LOKI)
            .with_target(loki("A", '{service_name="$service"} | order_id="$order_id"'))
            .span(12)
            .height(10)
        )
        .with_panel(
            logs.Panel()
            .id(ids())
            .title("Order $order_id: fills and venue events (execution stream)")
            .datasource(LOKI)
            .with_target(loki("A", '{service_name="$service"} | order_id="$order_id" | stream="execution"'))
            .span(12)
            .height(10)
        )
        # ------------------------------------------------------------ compared with the others
        .with_row(Row("How it compares: orders of $symbol").id(ids()))
        .with_panel(latency.id(ids()).unit("s").span(12).height(8))
        .with_panel(
            timeseries.Panel()
            .id(ids())
            .title("Slippage (bp, adverse > 0)")
            .datasource(PROMETHEUS)
            .with_target(
                prom(
                    "A",
                    f"histogram_quantile(0.95, sum by (le) (rate(trading_order_slippage_bucket{{{JS}}}[$__rate_interval])))",
                    "p95",
                    exemplar=True,
                )
            )
            .with_target(
                prom(
                    "B",
                    f"histogram_quantile(0.50, sum by (le) (rate(trading_order_slippage_bucket{{{JS}}}[$__rate_interval])))",
                    "p50",
                )
            )
            .unit("none")
            .span(6)
            .height(8)
        )
        .with_panel(
            timeseries.Panel()
            .id(ids())
            .title("Fill ratio of done orders, mean")
            .description(
                "Filled / ordered quantity of the orders that were done (filled, cancelled, done(), or closed at"
                " shutdown; an order expired, evicted or superseded has none, nor has a rejected one), averaged:"
                " 100% when every order filled completely. Exact, from the histogram's sum and count: a quantile"
                " of its top bucket (0.99, 1] said 99.5% for orders all filled in full."
            )
            .datasource(PROMETHEUS)
            .with_target(
                prom(
                    "A",
                    f"sum(rate(trading_order_fill_ratio_sum{{{JS}}}[$__rate_interval]))"
                    f" / sum(rate(trading_order_fill_ratio_count{{{JS}}}[$__rate_interval]))",
                    "mean",
                )
            )
            .unit("percentunit")
            .span(6)
            .height(8)
        )
        .with_panel(
            table.Panel()
            .id(ids())
            .title("Slow orders: $min_latency to $max_latency")
            .datasource(JAEGER)
            .with_target(
                jaeger_search(
                    "A", "$service", operation="order", min_duration="$min_latency", max_duration="$max_latency"
                )
            )
            .span(12)
            .height(8)
        )
        .with_panel(
            table.Panel()
            .id(ids())
            .title("Rejected orders")
            .datasource(JAEGER)
            .with_target(jaeger_search("A", "$service", operation="order", tags="order.outcome=rejected"))
            .span(12)
            .height(8)
        )
    )
