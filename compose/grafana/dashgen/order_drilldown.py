"""Order drill-down: one order's trace (its latency breakdown), fills and logs, by ``order_id`` or ``trace_id``.

Open it with the variables set, e.g. from an order id in a log line, a broker's report or the live page:
``/d/tradeobs-order?var-job=<service>&var-order_id=<order id>&var-trace_id=<trace id>``, where the order id may
be the client order id, the new one of a cancel/replace or the venue's order id (each is searched);
an exemplar dot's *Order drill-down* link (the Prometheus datasource's) and a click on the trace id of
any of its Jaeger tables open it on that order's trace id (neither knows the order id).
Order ids are never metric labels (one series per order), so the order itself comes
from the trace store (Jaeger: the ``order`` trace with its ``risk_check``, ``submit``,
``ack`` and ``fill`` spans, each covering the time since the previous step) and the
log store (records carry ``order_id``, from when the order has them ``venue_order_id`` and ``new_order_id``, and the
order's ``trace_id``); Prometheus gives the comparison
with the other orders of the symbol, with exemplars that open their traces.
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
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DataTransformerConfig,
    VariableOption,
    VariableRefresh,
    VariableSort,
)

from ._common import (
    JAEGER,
    LOKI,
    MODE,
    ORDER_UID,
    PIPELINE_UID,
    PROMETHEUS,
    SYMBOL_ALL,
    SYMBOL_SET,
    TRADING_UID,
    Ids,
    bucket_rate,
    dashboard_link,
    datasource_variable,
    exemplars,
    jaeger_search,
    jaeger_trace,
    loki,
    mode_variable,
    prom,
    prom_variable,
    service_variable,
    slippage_rate,
    trace_row_links,
)

J = f'job="$job",{MODE}'
# symbol!="" keeps "All" (".*", SYMBOL_ALL) to the series that have a symbol, as ".+" did
SYMBOLS = f'symbol=~"$symbol",{SYMBOL_SET}'
JS = f"{J},{SYMBOLS}"
# The order's log records: the agent gives every record that names an order (order.scope(), wrap(),
# correlate(order_id=...)) that order's trace id, so a click that knows only the trace (a Jaeger search row,
# an exemplar dot: neither carries the order id) finds them by trace_id, and an order id typed in finds them by
# any id the record carries (LOG_ID_FIELDS). The guards first: a LogQL label filter on an empty value matches the
# records WITHOUT that label, so an empty variable (the other one set) must not select every record of the service;
# the venue's and the amended id are on a record only from when the order had them, hence each its own guard.
# The span attributes by which a broker's report may name an order, each on the order's trace: the client order id
# (FIX ClOrdID, the id the order was made with: the root's ``order.id``), the new client order id of a cancel/replace
# (the replace step's ``order.new_id``; Jaeger's search matches a trace by any of its spans), the venue's own order id
# (FIX OrderID, given to ``acked()``: the root's and the ack step's ``order.venue_order_id``).
ORDER_ID_TAGS = ("order.id", "order.new_id", "order.venue_order_id")
# The same ids on the order's log records (structured metadata in Loki, never labels: one stream per order would be
# unbounded): the client order id ``order_id``; the agent adds ``new_order_id`` (the last replace's) and
# ``venue_order_id`` to the lines of an order from when it has them (trading/_scope.py, order_ids()).
LOG_ID_FIELDS = ("order_id", "new_order_id", "venue_order_id")
ORDER_LOGS = (
    '{service_name="$service"} | order_id!="" | trace_id!="" | order_id="$order_id"'
    + "".join(f' or ({f}!="" and {f}="$order_id")' for f in LOG_ID_FIELDS[1:])
    + ' or trace_id="$trace_id"'
)


def _route_variable(name: str, label: str) -> QueryVariable:
    """``venue`` / ``strategy``: one value (Jaeger's tag search is an exact match: no "All", no regex), the
    filter of the "Slow orders on $venue" table; an exemplar's drill-down link sets them from the dot's series."""
    return (
        QueryVariable(name)
        .label(label)
        .datasource(PROMETHEUS)
        .query(f'label_values(trading_orders_submitted_total{{job="$job",{MODE}}}, {name})')
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_CASE_INSENSITIVE_ASC)
        .multi(False)
        .include_all(False)
    )


def _choice(name: str, label: str, values: list[str], default: str) -> CustomVariable:
    return (
        CustomVariable(name)
        .label(label)
        .values(",".join(values))
        .current(VariableOption(selected=True, text=default, value=default))
        .options([VariableOption(selected=v == default, text=v, value=v) for v in values])
    )


def _p99(ref: str, metric: str, step: str) -> object:
    return prom(ref, f"histogram_quantile(0.99, {bucket_rate(metric, 'le', J, SYMBOLS)})", step)


def build() -> Dashboard:
    ids = Ids()
    latency = timeseries.Panel().title("Latency by step, p99 (dots: orders' traces)").datasource(PROMETHEUS)
    for target in (
        _p99("A", "trading_order_signal_to_submit_latency_seconds", "signal -> submit"),
        _p99("B", "trading_order_submit_to_ack_latency_seconds", "submit -> ack"),
        _p99("C", "trading_order_submit_to_fill_latency_seconds", "submit -> fill"),
        # the dots: each step's orders' traces
        exemplars("D", f"trading_order_signal_to_submit_latency_seconds_bucket{{{JS}}}"),
        exemplars("E", f"trading_order_submit_to_ack_latency_seconds_bucket{{{JS}}}"),
        exemplars("F", f"trading_order_submit_to_fill_latency_seconds_bucket{{{JS}}}"),
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
        .with_variable(datasource_variable("prometheus"))
        .with_variable(datasource_variable("jaeger"))
        .with_variable(datasource_variable("loki"))
        .with_variable(mode_variable())
        .with_variable(
            QueryVariable("job")
            .label("Service")
            .datasource(PROMETHEUS)
            .query(f"label_values(trading_orders_submitted_total{{{MODE}}}, job)")
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(VariableSort.ALPHABETICAL_CASE_INSENSITIVE_ASC)
            .multi(False)
            .include_all(False)
        )
        .with_variable(service_variable('job="$job"', multi=False))
        .with_variable(
            prom_variable(
                "symbol",
                "Symbol",
                f'label_values(trading_orders_submitted_total{{job="$job",{MODE}}}, symbol)',
                all_value=SYMBOL_ALL,
            )
        )
        .with_variable(_route_variable("venue", "Venue (slow orders)"))
        .with_variable(_route_variable("strategy", "Strategy (slow orders)"))
        .with_variable(
            TextBoxVariable("order_id")
            .label("Order id")
            .description("The client order id, the new client order id of a cancel/replace, or the venue's order id")
        )
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
            .title("Order $order_id: its trace (Jaeger search by the order's ids)")
            .description(
                "The order whose client order id, amended client order id or venue's order id is $order_id: the"
                " one the broker reports may be any of them (FIX ClOrdID, the ClOrdID of a cancel/replace,"
                " OrderID). Click the trace id: this dashboard shows that trace, its log records and metrics below."
            )
            .datasource(JAEGER)
            # Jaeger's tag search is one exact key=value (several are AND), so one search per id the order's root
            # span can carry, and the rows merged: exactly one of them finds the order.
            .with_target(jaeger_search("A", "$service", operation="order", tags=f'{ORDER_ID_TAGS[0]}="$order_id"'))
            # (no operation: the new id is on the replace span, and the trace is what is searched for)
            .with_target(jaeger_search("B", "$service", tags=f'{ORDER_ID_TAGS[1]}="$order_id"'))
            .with_target(jaeger_search("C", "$service", operation="order", tags=f'{ORDER_ID_TAGS[2]}="$order_id"'))
            .with_transformation(DataTransformerConfig(id_val="merge", options={}))
            .override_by_name("traceID", trace_row_links(keep_order_id=True))
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
            .title("Order $order_id, trace $trace_id: all log records")
            .description(
                "The records of the order id (the client order id; the new one of a cancel/replace or the venue's"
                " order id on the records from when the order had it), or of the trace (every record naming an order"
                " carries its trace id): click the order's trace id above for every record of the order"
            )
            .datasource(LOKI)
            .with_target(loki("A", ORDER_LOGS))
            .span(12)
            .height(10)
        )
        .with_panel(
            logs.Panel()
            .id(ids())
            .title("Order $order_id, trace $trace_id: fills and venue events (execution stream)")
            .datasource(LOKI)
            .with_target(loki("A", ORDER_LOGS + ' | stream="execution"'))
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
                    f"histogram_quantile(0.95, {slippage_rate(J, SYMBOLS)})",
                    "p95",
                )
            )
            .with_target(
                prom(
                    "B",
                    f"histogram_quantile(0.50, {slippage_rate(J, SYMBOLS)})",
                    "p50",
                )
            )
            .with_target(exemplars("C", f"trading_order_slippage_bucket{{{JS}}}"))
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
            .description("Every venue and strategy. Click a trace id: this dashboard shows that order.")
            .datasource(JAEGER)
            .with_target(
                jaeger_search(
                    "A", "$service", operation="order", min_duration="$min_latency", max_duration="$max_latency"
                )
            )
            .override_by_name("traceID", trace_row_links(keep_order_id=False))
            .span(12)
            .height(8)
        )
        .with_panel(
            table.Panel()
            .id(ids())
            .title("Slow orders on $venue, strategy $strategy: $min_latency to $max_latency")
            .description("The Venue and Strategy variables (an exemplar dot's link sets them to its series').")
            .datasource(JAEGER)
            .with_target(
                jaeger_search(
                    "A",
                    "$service",
                    operation="order",
                    # Quoted: the tags are logfmt, and a strategy "mm & hedge" unquoted was the tag strategy=mm and
                    # two more ("&", "hedge"), which no order has: the table was empty for it.
                    tags='venue="$venue" strategy="$strategy"',
                    min_duration="$min_latency",
                    max_duration="$max_latency",
                )
            )
            .override_by_name("traceID", trace_row_links(keep_order_id=False))
            .span(12)
            .height(8)
        )
        .with_panel(
            table.Panel()
            .id(ids())
            .title("Rejected orders")
            .datasource(JAEGER)
            .with_target(jaeger_search("A", "$service", operation="order", tags="order.outcome=rejected"))
            .override_by_name("traceID", trace_row_links(keep_order_id=False))
            .span(12)
            .height(8)
        )
    )
