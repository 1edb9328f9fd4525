"""Trading overview: what a desk keeps open all day (orders, latency, P&L, risk, logs).

Metric names are the agent's Prometheus names (``docs/metrics.md``,
``tradeobs_agent.trading.instruments.SPECS``); ``job`` is the service (the collector's
prometheus exporter turns ``service.name`` into ``job`` and Prometheus keeps it,
``honor_labels``). Latency panels carry exemplars: a dot opens the order's trace.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import heatmap, logs, stat, table, timeseries
from grafana_foundation_sdk.builders import prometheus as prom_builders
from grafana_foundation_sdk.builders.common import ReduceDataOptions
from grafana_foundation_sdk.builders.dashboard import Dashboard, QueryVariable, Row
from grafana_foundation_sdk.models.common import BigValueColorMode, BigValueGraphMode, BigValueTextMode
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DataTransformerConfig,
    ValueMap,
    ValueMappingResult,
    VariableHide,
    VariableOption,
    VariableRefresh,
    VariableSort,
)
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from ._common import (
    LOKI,
    MODE,
    ORDER_UID,
    PIPELINE_UID,
    PROMETHEUS,
    RECORDED_BUCKET_RATE,
    SYMBOL_ALL,
    SYMBOL_SET,
    TRADING_UID,
    Ids,
    bucket_rate,
    dashboard_link,
    datasource_variable,
    exemplars,
    loki,
    mode_variable,
    prom,
    prom_variable,
    risk_limit,
    service_variable,
    thresholds,
)

J = f'job=~"$job",{MODE}'
# symbol!="" keeps "All" (".*", SYMBOL_ALL) to the series that have a symbol, as ".+" did
SYMBOLS = f'symbol=~"$symbol",{SYMBOL_SET}'
JS = f"{J},{SYMBOLS}"
# Instances whose gauges are no longer their service's (the recording rule job_instance:tradeobs_agent:gone in
# rules/recording.yml, which the P&L recording rules leave out too): the agent stopped cleanly (tradeobs_agent_stopped
# 1), or it crashed (its export count stalled for a minute while another instance of the service exports). Over
# OTLP the collector serves a replaced process's last values for its metric_expiration (5 minutes), beside its
# successor's report of the same book: the money panels added both (Total P&L -1200 for a book at -600 after each
# deploy, or each crash and restart). Never a scrape target (its instance is the same after a restart).
GONE = f"job_instance:tradeobs_agent:gone{{{J}}}"
# The P&L the loss limit alert reads (rules/recording.yml), per service and per strategy.
PNL_TOTAL = "job:trading_pnl_total:sum"
PNL_STRATEGY = "job_strategy:trading_pnl_total:sum"
PNL_INSTANCE = "job_instance_strategy:trading_pnl_total:sum"
# Instances that crashed and whose book no successor took over (rules/recording.yml): their P&L is held in the totals.
CRASHED = f"job_instance:tradeobs_agent:crashed{{{J}}}"


def _running(selector: str) -> str:
    """``selector`` (an instant vector of a service's gauges) without the instances that are gone (:data:`GONE`)."""
    return f"({selector} unless on (job, instance) {GONE})"


def _stat(
    ids: Ids, title: str, expr: str, unit: str, description: str, *, instant: bool = False, legend: str | None = None
) -> stat.Panel:
    """A stat; ``instant``: one value at the range's end (a count over the whole range has no curve to draw)."""
    return (
        stat.Panel()
        .id(ids())
        .title(title)
        .description(description)
        .datasource(PROMETHEUS)
        .with_target(prom("A", expr, legend, instant=instant))
        .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]))
        .unit(unit)
        .graph_mode(BigValueGraphMode.AREA)
        .color_mode(BigValueColorMode.VALUE)
        .span(3)
        .height(4)
    )


def _ts(ids: Ids, title: str, unit: str, *targets: object, span: int = 12, height: int = 8) -> timeseries.Panel:
    panel = timeseries.Panel().id(ids()).title(title).datasource(PROMETHEUS).unit(unit).span(span).height(height)
    for t in targets:
        panel = panel.with_target(t)  # type: ignore[arg-type]
    return panel


def _vs_limit(ids: Ids, title: str, unit: str, target: object, record: str, span: int = 12) -> timeseries.Panel:
    """A series against its alert's limit: the limit's recording rule drawn as a line (what the alert compares
    with), red from the limit's value in limits.yml (``risk_limit``)."""
    return (
        _ts(ids, title, unit, target, prom("B", record, "limit"), span=span)
        .min(0)
        .thresholds(thresholds((None, "green"), (risk_limit(record), "red")))
    )


def _quantiles(metric: str, by: str, legend: str) -> list[object]:
    """p99 and p50 of a latency histogram, from the recorded bucket rate while the Symbol variable is All
    (``_common.bucket_rate``), and the raw buckets' exemplars (one dot set per panel is enough)."""
    return [
        *(
            prom(
                ref,
                f"histogram_quantile({q}, {bucket_rate(metric, f'le, {by}', J, SYMBOLS)})",
                f"p{q * 100:.0f} {legend}",
            )
            for ref, q in (("A", 0.99), ("B", 0.50))
        ),
        exemplars("C", f"{metric}_bucket{{{JS}}}"),
    ]


# Per-symbol panels draw at most this many symbols: a desk of 1,000 symbols drew 1,000 lines (the staleness
# panel), 1,424 (orders by symbol and side) and a table of 2,199 rows, unreadable and slow for every viewer
# (docs/deployment.md, "At 1,000 symbols"). A desk of 10 symbols still sees all of them.
TOP = 10
# The largest positions in the positions table.
TOP_POSITIONS = 25


def _over_range(selector: str) -> str:
    """``selector`` over the dashboard's whole time range, ending at its end (``@ end()``): a ranking on it
    is one ranking for the whole panel, so every step draws the same symbols (``topk`` per step picked a
    different ten at each step, and the panel drew every symbol that was ever in a top ten)."""
    return f"{selector}[$__range] @ end()"


def _of_top(expr: str, rank: str, by: str = "symbol") -> str:
    """``expr`` for the ``by`` sets that ``rank`` (a ``topk``/``bottomk`` over the time range) keeps."""
    return f"{expr} and on ({by}) {rank}"


def _counted_in_range(selector: str) -> str:
    """How much the counters of ``selector`` counted in the time range, exactly, across restarts.

    ``increase(c[$__range])`` left out what each process counted before its first sample: a restarted service is
    a new ``instance`` (a new series) whose first sample, an export and a scrape after it starts trading, already
    holds its first orders, and increase() counts only from there (extrapolated: not an integer). Over a day of
    three processes (a clean stop, a collector restart, a SIGKILL) it read 1,212.8 filled orders for 1,292, and
    3.15 rejects for 29. Per series instead: its last value in the range, less its last value in the 15 minutes
    before the range's start when it has one (a process's counter counts from 0 when the process starts, so a
    series that starts in the range counted all of its value there; a sample, not the instant: a collector restart
    leaves a gap, and the series must not look new after it); increase() only for a series that went down in the
    range (a process restarted with the same ``service.instance.id``), where what it counted before its first sample
    after the reset is missed again."""
    last = f"last_over_time({selector}[$__range])"
    return (
        f"(increase({selector}[$__range]) and resets({selector}[$__range]) > 0)"
        f" or ({last} - last_over_time({selector}[15m] offset $__range))"
        f" or {last}"
    )


def _count_in_range(ref: str, counter: str, legend: str) -> prom_builders.Dataquery:
    """A target: what the service's ``counter`` counted over the time range (:func:`_counted_in_range`), 0 if
    nothing (no series yet: no cancel all day)."""
    return prom(ref, f"sum({_counted_in_range(f'{counter}{{{J}}}')}) or vector(0)", legend, instant=True)


def _mean_over_range(histogram: str, selector: str) -> str:
    """The mean of a histogram per symbol over the time range (its _sum / _count: 2 series a symbol,
    not 20 buckets): what ranks the symbols of a quantile panel, cheaply."""
    total = f"sum by (symbol) (increase({_over_range(f'{histogram}_sum{{{selector}}}')}))"
    count = f"sum by (symbol) (increase({_over_range(f'{histogram}_count{{{selector}}}')}))"
    return f"{total} / ({count} > 0)"


# The symbols the slippage panel draws: the TOP of highest p95 over the time range, ranked once per refresh by a
# hidden variable (slippage_top, :func:`_slippage_top_variable`). In the panel's query the ranking was an `and on
# (symbol)` filter, after Prometheus had computed every symbol's quantiles at every step: at 1,000 symbols each
# step read 36,000 recorded bucket series to draw ten symbols, 18-25 s a refresh (docs/deployment.md, "At 1,000
# symbols"); selecting the ten by name reads 400.
SLIPPAGE_TOP_RANK = (
    f"topk({TOP}, histogram_quantile(0.95, sum by (le, symbol) "
    f"(increase({_over_range(f'trading_order_slippage_bucket{{{JS}}}')}))))"
)
SLIPPAGE_TOP = f'{J},symbol=~"$slippage_top"'


def _slippage_top_variable() -> QueryVariable:
    """Hidden ``slippage_top``: the symbols of :data:`SLIPPAGE_TOP_RANK`, the old panel query's ranking, run by
    Grafana as an instant query at the end of the time range (``query_result``; ``@ end()`` is that instant) each
    time the range moves (every refresh of a relative range) or a variable it reads changes. All (no allValue):
    the symbols found, regex-escaped and joined; none found selects nothing (``()``)."""
    return (
        QueryVariable("slippage_top")
        .label(f"Slippage: the {TOP} symbols of highest p95 in the time range")
        .description("Ranked once per refresh; the slippage panel draws these symbols")
        .datasource(PROMETHEUS)
        .query(f"query_result({SLIPPAGE_TOP_RANK})")
        .regex('/symbol="([^"]+)"/')
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_CASE_INSENSITIVE_ASC)
        .hide(VariableHide.HIDE_VARIABLE)
        .multi(True)
        .include_all(True)
        .current(VariableOption(selected=True, text="All", value="$__all"))
        .allow_custom_value(False)
    )


def _best_and_worst(gauge: str, k: int) -> str:
    """The ``k`` highest and ``k`` lowest symbols by the gauge's last value in the time range."""
    last = f"sum by (symbol) (last_over_time({_over_range(f'{gauge}{{{JS}}}')}))"
    return f"(topk({k}, {last}) or bottomk({k}, {last}))"


def _position_target(ref: str, metric: str) -> object:
    """One column of the positions table, for the largest positions by absolute notional."""
    return prom(
        ref,
        _of_top(
            f"sum by (job, symbol) {_running(f'{metric}{{{JS}}}')}",
            f"topk({TOP_POSITIONS}, abs(sum by (job, symbol) {_running(f'trading_position_notional{{{JS}}}')}))",
            by="job, symbol",
        ),
        instant=True,
        table=True,
    )


def build() -> Dashboard:
    ids = Ids()
    drawdown_limit = risk_limit("tradeobs:limit_drawdown:ratio")
    pnl_loss_limit = risk_limit("tradeobs:limit_pnl_loss:currency")
    ack_age_limit = risk_limit("tradeobs:limit_order_ack_age:seconds")
    loop_lag_limit = risk_limit("tradeobs:limit_eventloop_lag:seconds")
    stall_limit = risk_limit("tradeobs:limit_eventloop_stall:seconds")
    kill_switch_map = ValueMap(
        options={
            "0": ValueMappingResult(text="off", color="green", index=0),
            "1": ValueMappingResult(text="ENGAGED", color="red", index=1),
        }
    )
    return (
        Dashboard("tradeobs / Trading overview")
        .uid(TRADING_UID)
        .description("Orders, fills, latency, P&L and risk of the services that run the tradeobs agent.")
        .tags(["tradeobs", "trading"])
        .readonly()
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .time("now-6h", "now")
        .refresh("30s")
        .with_variable(datasource_variable("prometheus"))
        .with_variable(datasource_variable("loki"))
        .with_variable(mode_variable())
        .with_variable(prom_variable("job", "Service", f"label_values(trading_orders_submitted_total{{{MODE}}}, job)"))
        .with_variable(service_variable(J, multi=True))
        .with_variable(
            prom_variable(
                "symbol", "Symbol", f"label_values(trading_orders_submitted_total{{{J}}}, symbol)", all_value=SYMBOL_ALL
            )
        )
        .with_variable(_slippage_top_variable())
        .link(dashboard_link("Order drill-down", ORDER_UID))
        .link(dashboard_link("Pipeline health", PIPELINE_UID))
        # ------------------------------------------------------------ now
        .with_row(Row("Now").id(ids()))
        .with_panel(
            _stat(
                ids,
                "Orders /s",
                f"sum(rate(trading_orders_submitted_total{{{J}}}[$__rate_interval]))",
                "short",
                "Orders sent to the venue per second.",
            )
        )
        .with_panel(
            _stat(
                ids,
                "Orders (time range): sent, filled, rejected, cancelled",
                f"sum({_counted_in_range(f'trading_orders_submitted_total{{{J}}}')}) or vector(0)",
                "short",
                "Orders sent to the venue, completely filled, rejected (by the risk check, never sent, or by the"
                " venue) and cancelled over the dashboard's time range. Filled counts orders, not fills: an order"
                " filled in three parts counts once here, three times in the live page's fills. Every process of"
                " the service is counted, restarts and crashes included, but for what a crashed process counted"
                " after its last export. For the trading day, set the range from the day's start (Grafana's"
                " 'Today' starts at midnight in the browser's zone, not at trading_day_start). The live page's"
                " counts are the running process's alone (docs/runbook.md, 'End of day').",
                instant=True,
                legend="sent",
            )
            .decimals(0)
            .span(6)
            .text_mode(BigValueTextMode.VALUE_AND_NAME)
            .with_target(_count_in_range("B", "trading_orders_filled_total", "filled"))
            .with_target(_count_in_range("C", "trading_orders_rejected_total", "rejected"))
            .with_target(_count_in_range("D", "trading_orders_cancelled_total", "cancelled"))
        )
        .with_panel(
            _stat(
                ids,
                "Fill ratio (5m)",
                f"sum(rate(trading_orders_filled_total{{{J}}}[5m])) / sum(rate(trading_orders_submitted_total{{{J}}}[5m]))",
                "percentunit",
                "Filled / submitted orders over the last 5 minutes.",
            )
        )
        .with_panel(
            _stat(
                ids,
                "Reject ratio (5m)",
                f"sum(rate(trading_orders_rejected_total{{{J}}}[5m])) / sum(rate(trading_orders_submitted_total{{{J}}}[5m])"
                f' or rate(trading_orders_rejected_total{{{J},stage="risk"}}[5m]))',
                "percentunit",
                "Rejected / decided orders over the last 5 minutes: decided is submitted + rejected by the risk check"
                " before submission (stage risk, never submitted), as in the alert, which fires above 5%.",
            ).thresholds(thresholds((None, "green"), (0.05, "red")))
        )
        .with_panel(
            _stat(
                ids,
                "Total P&L",
                # What TradingPnLLossLimitBreached reads (rules/recording.yml): a crashed process's last P&L held
                # until a successor, a clean stop or the process back; on the instances' gauges the stat dropped
                # a crashed worker's book 10 minutes after the crash while its loss page kept firing.
                f"sum({PNL_TOTAL}{{{J}}})",
                "short",
                "Realized + unrealized P&L, in the account currency, as the loss limit alert reads it"
                " (job:trading_pnl_total:sum): the last report of each process at the range's end (the live page's"
                " P&L of the same moment, give or take the metric export interval), a crashed process's last P&L"
                " included until a new instance of its service starts or it stops cleanly."
                " Over whatever period the service counts its P&L: tradeobs resets nothing at trading_day_start.",
                instant=True,
            ).thresholds(thresholds((None, "red"), (0, "green")))
        )
        .with_panel(
            _stat(
                ids,
                "Drawdown",
                f"max(trading_drawdown{{{J}}})",
                "percentunit",
                f"Drawdown from the equity peak (worst strategy). Orange from {drawdown_limit / 2:.1%}, where"
                f" TradingDrawdownWarning fires (half the limit); red from {drawdown_limit:.1%}, the limit, where"
                " TradingDrawdownHigh pages (compose/prometheus/rules/limits.yml).",
            ).thresholds(thresholds((None, "green"), (drawdown_limit / 2, "orange"), (drawdown_limit, "red")))
        )
        .with_panel(
            _stat(
                ids,
                "Market data age (max)",
                f"max(trading_marketdata_staleness_seconds{{{JS}}})",
                "s",
                "Seconds since the last tick of the stalest symbol; the alert fires above 5 s.",
            ).thresholds(thresholds((None, "green"), (1, "orange"), (5, "red")))
        )
        .with_panel(
            _stat(
                ids,
                "Kill switch",
                f"max(trading_risk_kill_switch_engaged{{{J}}})",
                "none",
                "ENGAGED while any strategy's kill switch stops its orders (the service reports it at start).",
            )
            .mappings([kill_switch_map])
            .graph_mode(BigValueGraphMode.NONE)
            .color_mode(BigValueColorMode.BACKGROUND)
        )
        # ------------------------------------------------------------ orders
        .with_row(Row("Orders").id(ids()))
        .with_panel(
            _ts(
                ids,
                "Orders /s (submitted, filled, rejected)",
                "short",
                prom(
                    "A",
                    f"sum by (job) (rate(trading_orders_submitted_total{{{J}}}[$__rate_interval]))",
                    "submitted {{job}}",
                ),
                prom(
                    "B", f"sum by (job) (rate(trading_orders_filled_total{{{J}}}[$__rate_interval]))", "filled {{job}}"
                ),
                prom(
                    "C",
                    f"sum by (job) (rate(trading_orders_rejected_total{{{J}}}[$__rate_interval]))",
                    "rejected {{job}}",
                ),
            )
        )
        .with_panel(
            _ts(
                ids,
                "Rejects /s by reason",
                "short",
                prom(
                    "A",
                    f"sum by (stage, reason) (rate(trading_orders_rejected_total{{{J}}}[$__rate_interval]))",
                    "{{reason}} ({{stage}})",
                ),
            )
        )
        .with_panel(
            _ts(
                ids,
                "Orders /s by strategy, venue",
                "short",
                prom(
                    "A",
                    f"sum by (strategy, venue) (rate(trading_orders_submitted_total{{{J}}}[$__rate_interval]))",
                    "{{strategy}} @ {{venue}}",
                ),
            )
        )
        .with_panel(
            _ts(
                ids,
                f"Orders /s by symbol, side: top {TOP} symbols by orders in the time range",
                "short",
                prom(
                    "A",
                    _of_top(
                        f"sum by (symbol, side) (rate(trading_orders_submitted_total{{{JS}}}[$__rate_interval]))",
                        f"topk({TOP}, sum by (symbol) (increase({_over_range(f'trading_orders_submitted_total{{{JS}}}')})))",
                    ),
                    "{{symbol}} {{side}}",
                ),
            ).description(
                f"The {TOP} symbols with the most orders over the dashboard's time range (the same ones at every"
                " point of the panel). Pick symbols in the Symbol variable to see others."
            )
        )
        .with_panel(
            _ts(
                ids,
                "Turnover /s by strategy, venue (value filled)",
                "short",
                prom(
                    "A",
                    f"sum by (strategy, venue) (rate(trading_fills_notional_total{{{J}}}[$__rate_interval]))",
                    "{{strategy}} @ {{venue}}",
                ),
            ).description(
                "The value filled per second: each fill's quantity * |price| * the contract's multiplier"
                " (trading.fills.notional; 1 unless declared, docs/metrics.md 'Futures and options'), in the"
                " price's currency, partial fills included. The quantity filled is trading_fills_quantity_total."
                " Over a day, across restarts, count them as the 'Orders (time range)' stat counts orders"
                " (docs/runbook.md, 'End of day')."
            )
        )
        .with_panel(
            _ts(
                ids,
                "Orders awaiting the venue's ack, by venue",
                "short",
                prom(
                    "A",
                    f"sum by (venue) {_running(f'trading_orders_unacknowledged{{{J}}}')}",
                    "{{venue}}",
                ),
                span=6,
            )
            .min(0)
            .description(
                "Orders sent to the venue and neither acknowledged nor filled nor ended yet"
                " (trading.orders.unacknowledged, from each service's open book at each collection; 0 when none"
                " waits), over strategies, services and workers. The oldest one's age is the panel beside it."
            )
        )
        .with_panel(
            _vs_limit(
                ids,
                "Oldest unacknowledged order by venue vs limit",
                "s",
                prom(
                    "A",
                    f"max by (venue) {_running(f'trading_orders_oldest_unacknowledged_age_seconds{{{J}}}')}",
                    "{{venue}}",
                ),
                "tradeobs:limit_order_ack_age:seconds",
                span=6,
            ).description(
                "Seconds since the oldest order still waiting for the venue's ack was sent (0 when none waits;"
                f" the worst strategy and service). Red from {ack_age_limit:g} s, the limit"
                " (tradeobs:limit_order_ack_age:seconds, compose/prometheus/rules/limits.yml), where"
                " TradingOrdersUnacknowledged pages."
            )
        )
        # ------------------------------------------------------------ latency
        .with_row(Row("Latency (click an exemplar dot to open the order's trace)").id(ids()))
        .with_panel(
            heatmap.Panel()
            .id(ids())
            .title("Submit -> fill latency distribution")
            .description(
                "Rows: submit -> fill latency buckets (seconds). Cells: orders per second whose first fill"
                " fell in that bucket. Dots: orders' traces."
            )
            .datasource(PROMETHEUS)
            .with_target(
                prom(
                    "A",
                    bucket_rate("trading_order_submit_to_fill_latency_seconds", "le", J, SYMBOLS),
                    "{{le}}",
                ).format(PromQueryFormat.HEATMAP)
            )
            .with_target(
                exemplars("B", f"trading_order_submit_to_fill_latency_seconds_bucket{{{JS}}}").format(
                    PromQueryFormat.HEATMAP
                )
            )
            .calculate(False)
            .exemplars_color("rgba(255,0,255,0.7)")
            # The y axis (the buckets) takes only its own unit; the cells take the panel's, and they
            # are rates, not durations (a panel unit "s" showed "0.2 s" for 0.2 orders/s).
            .y_axis(heatmap.YAxisConfig().unit("s"))
            .cell_values(heatmap.CellValues().unit("short"))
            .unit("short")
            .span(12)
            .height(9)
        )
        .with_panel(
            _ts(
                ids,
                # by venue too: "fills on venue X were slow" is the first question, and the service's p99
                # over all its venues hid a slow one among fast ones
                "Submit -> fill latency p50 / p99 by venue",
                "s",
                *_quantiles("trading_order_submit_to_fill_latency_seconds", "job, venue", "{{job}} {{venue}}"),
                height=9,
            )
        )
        .with_panel(
            _ts(
                ids,
                "Submit -> ack latency by venue",
                "s",
                *_quantiles("trading_order_submit_to_ack_latency_seconds", "venue", "{{venue}}"),
                span=8,
            )
        )
        .with_panel(
            _ts(
                ids,
                "Signal -> submit latency by strategy",
                "s",
                *_quantiles("trading_order_signal_to_submit_latency_seconds", "strategy", "{{strategy}}"),
                span=8,
            )
        )
        .with_panel(
            _ts(
                ids,
                f"Slippage (bp, adverse > 0): {TOP} symbols of highest p95 in the time range",
                "none",
                *(
                    prom(
                        ref,
                        # the ten symbols of $slippage_top only (recorded per symbol, rules/recording.yml)
                        f"histogram_quantile({q}, sum by (le, symbol) ({RECORDED_BUCKET_RATE['trading_order_slippage']}{{{SLIPPAGE_TOP}}}))",
                        f"p{q * 100:.0f} {{{{symbol}}}}",
                    )
                    for ref, q in (("A", 0.95), ("B", 0.50))
                ),
                exemplars("C", f"trading_order_slippage_bucket{{{SLIPPAGE_TOP}}}"),
                span=8,
            ).description(
                f"p95 and p50 of the {TOP} symbols whose p95 slippage over the whole time range is the highest"
                " (adverse > 0; the histogram has no _sum to average: it takes negative values). Pick symbols in"
                " the Symbol variable to see others. The ranking is the hidden variable slippage_top, evaluated"
                " once per refresh."
            )
        )
        .with_panel(
            _ts(
                ids,
                f"Market data staleness: the {TOP} stalest symbols in the time range",
                "s",
                prom(
                    "A",
                    _of_top(
                        f"max by (symbol) (trading_marketdata_staleness_seconds{{{JS}}})",
                        f"topk({TOP}, max by (symbol) (max_over_time({_over_range(f'trading_marketdata_staleness_seconds{{{JS}}}')})))",
                    ),
                    "{{symbol}}",
                ),
            ).description(
                f"The {TOP} symbols whose market data was oldest at some point of the time range; the"
                " 'Market data age (max)' stat is the stalest of all."
            )
        )
        .with_panel(
            _ts(
                ids,
                f"Market data feed lag p99: {TOP} symbols of most mean lag in the time range",
                "s",
                prom(
                    "A",
                    _of_top(
                        # recorded (rules/recording.yml): the buckets of 1,000 symbols took seconds a refresh
                        f"max by (symbol) (max_over_time(job_symbol:trading_marketdata_feed_lag_seconds:p99_1m{{{JS}}}[$__interval]))",
                        f"topk({TOP}, {_mean_over_range('trading_marketdata_feed_lag_seconds', JS)})",
                    ),
                    "{{symbol}}",
                ),
            ).description(f"p99 feed lag of the {TOP} symbols with the highest mean lag over the time range.")
        )
        .with_panel(
            _vs_limit(
                ids,
                "Event loop lag p99 vs limit",
                "s",
                prom(
                    "A",
                    "histogram_quantile(0.99, sum by (job, instance, le)"
                    f" (rate(trading_eventloop_lag_seconds_bucket{{{J}}}[$__rate_interval])))",
                    "{{job}} {{instance}}",
                ),
                "tradeobs:limit_eventloop_lag:seconds",
            ).description(
                "How late each process's asyncio loop ran a check due every 0.1 s (tt.event_loop_lag_monitor()),"
                f" p99. Red from {loop_lag_limit:g} s (tradeobs:limit_eventloop_lag:seconds): over 5 minutes"
                " TradingEventLoopLagHigh warns. A loop blocked for good records no lag: the stall beside it."
            )
        )
        .with_panel(
            _vs_limit(
                ids,
                "Event loop stall vs limit",
                "s",
                prom(
                    "A",
                    f"max by (job, instance, pid) {_running(f'trading_eventloop_stall_seconds{{{J}}}')}",
                    "{{job}} {{instance}} {{pid}}",
                ),
                "tradeobs:limit_eventloop_stall:seconds",
            ).description(
                "How late each process's asyncio loop is now in waking its lag monitor, read at each collection"
                " from another thread: 0 on time, growing while the loop is blocked (a hung sync call, a deadlock),"
                f" when the lag beside it records nothing. Red from {stall_limit:g} s"
                " (tradeobs:limit_eventloop_stall:seconds), where TradingEventLoopStalled pages. One line per"
                " process (pid: each worker of a group)."
            )
        )
        # ------------------------------------------------------------ money and risk
        .with_row(Row("P&L, exposure, risk").id(ids()))
        .with_panel(
            _ts(
                ids,
                "P&L by strategy vs loss limit",
                "short",
                prom("A", f"{PNL_STRATEGY}{{{J}}}", "{{job}} {{strategy}}"),
                prom("B", "-tradeobs:limit_pnl_loss:currency", "loss limit"),
                span=16,
            )
            .description(
                "Realized + unrealized P&L per service and strategy, what TradingPnLLossLimitBreached pages on"
                " (job_strategy:trading_pnl_total:sum), against the loss limit (-tradeobs:limit_pnl_loss:currency,"
                " rules/limits.yml). A crashed process's last P&L stays in it until a new instance of its service"
                " starts, it stops cleanly or it is back: the book is still at the venue. The symbol panels"
                " below read the running processes' gauges and do not show a crashed process's book: P&L of"
                " crashed instances (beside) says how much of this is such books."
            )
            .thresholds(thresholds((None, "red"), (-pnl_loss_limit, "green")))
        )
        .with_panel(
            # The part of the totals that no live gauge shows: a crashed worker's positions, equity and exposure leave
            # the symbol, equity and exposure panels (they read the running processes' gauges) when the collector
            # drops it, while its last P&L stays in the totals until a successor takes the book over. Holding every
            # per-symbol gauge as the P&L is held would be a recorded copy of each position (1,000 symbols a
            # service): this panel names the instances instead, as TradingInstanceCrashed does.
            _ts(
                ids,
                "P&L of crashed instances (held in the totals)",
                "short",
                prom(
                    "A",
                    f"sum by (job, instance) ({PNL_INSTANCE}{{{J}}} and on (job, instance) {CRASHED})",
                    "{{job}} {{instance}}",
                ),
                span=8,
            ).description(
                "Realized + unrealized P&L of the instances that stopped reporting without a clean stop and whose book"
                " no successor took over (job_instance:tradeobs_agent:crashed, what TradingInstanceCrashed warns on):"
                " their last report, counted in Total P&L and P&L by strategy vs loss limit, though their positions,"
                " equity and exposure are no longer in the panels below. Empty while every instance reports."
            )
        )
        .with_panel(_pnl_by_symbol(ids, "trading_pnl_realized", "Realized P&L", "realized P&L"))
        .with_panel(_pnl_by_symbol(ids, "trading_pnl_unrealized", "Unrealized P&L (open positions)", "unrealized P&L"))
        .with_panel(
            _ts(
                ids,
                "Equity",
                "short",
                prom("A", f"sum by (job) {_running(f'trading_equity{{{J}}}')}", "{{job}}"),
                span=8,
            ).description(
                "Equity of the running processes. A crashed process's leaves it when the collector drops the process"
                " (5 minutes after its last export), while its P&L stays in the totals: P&L of crashed instances."
            )
        )
        .with_panel(
            _ts(
                ids,
                "Drawdown vs limit",
                "percentunit",
                prom("A", f"max by (job) (trading_drawdown{{{J}}})", "{{job}}"),
                prom("B", "tradeobs:limit_drawdown:ratio", "limit"),
                span=8,
            )
        )
        .with_panel(
            _ts(
                ids,
                "Exposure (gross, net)",
                "short",
                prom("A", f"sum by (job) {_running(f'trading_exposure_gross{{{J}}}')}", "gross {{job}}"),
                prom("B", f"sum by (job) {_running(f'trading_exposure_net{{{J}}}')}", "net {{job}}"),
                span=8,
            ).description(
                "Exposure of the running processes: the sums of |notional| and notional, qty * price * the"
                " contract's multiplier (1 unless declared, docs/metrics.md 'Futures and options'). A crashed process's positions leave it when the collector drops"
                " the process, though they are still at the venue: P&L of crashed instances names it."
            )
        )
        .with_panel(
            _ts(
                ids,
                "Risk limit use",
                "percentunit",
                prom("A", f"max by (limit) (trading_risk_limit_utilization{{{J}}})", "{{limit}}"),
                span=8,
            ).thresholds(thresholds((None, "green"), (0.8, "orange"), (1, "red")))
        )
        .with_panel(
            _ts(
                ids,
                "Kill switch",
                "none",
                prom(
                    "A",
                    f"max by (job, strategy) (trading_risk_kill_switch_engaged{{{J}}})",
                    "{{job}} {{strategy}}",
                ),
            )
            .mappings([kill_switch_map])
            .min(0)
            .max(1)
        )
        .with_panel(
            table.Panel()
            .id(ids())
            .title(f"Positions now, the {TOP_POSITIONS} largest by |notional|: quantity, notional, unrealized P&L")
            .description(
                f"The {TOP_POSITIONS} positions (service, symbol) of largest absolute notional; pick symbols in the"
                " Symbol variable to see others. The running processes' positions: a crashed process's are not here"
                " once the collector dropped it (P&L of crashed instances)."
            )
            .datasource(PROMETHEUS)
            .with_target(_position_target("A", "trading_position_quantity"))  # type: ignore[arg-type]
            .with_target(_position_target("B", "trading_position_notional"))  # type: ignore[arg-type]
            .with_target(_position_target("C", "trading_pnl_unrealized"))  # type: ignore[arg-type]
            .with_transformation(DataTransformerConfig(id_val="merge", options={}))
            # Grafana names the value column of each of several table queries "Value #<refId>": say
            # which is which, and drop the instant's timestamp.
            .with_transformation(
                DataTransformerConfig(
                    id_val="organize",
                    options={
                        "excludeByName": {"Time": True},
                        "renameByName": {
                            "Value #A": "quantity",
                            "Value #B": "notional",
                            "Value #C": "unrealized P&L",
                        },
                    },
                )
            )
            .span(12)
            .height(8)
        )
        # ------------------------------------------------------------ logs
        .with_row(Row("Logs (a trace_id opens the trace)").id(ids()))
        .with_panel(
            logs.Panel()
            .id(ids())
            .title("Service logs")
            .datasource(LOKI)
            .with_target(loki("A", '{service_name=~"$service"}'))
            .span(24)
            .height(10)
        )
    )


def _pnl_by_symbol(ids: Ids, metric: str, title: str, what: str) -> timeseries.Panel:
    """The best and worst symbols of one P&L gauge, at the end of the time range (the running processes' values)."""
    return _ts(
        ids,
        f"{title}: {TOP // 2} best and {TOP // 2} worst symbols",
        "short",
        prom(
            "A",
            _of_top(f"sum by (symbol) {_running(f'{metric}{{{JS}}}')}", _best_and_worst(metric, TOP // 2)),
            "{{symbol}}",
        ),
        span=8,
    ).description(
        f"The {TOP // 2} symbols with the highest and the {TOP // 2} with the lowest {what} at the end"
        " of the time range. Total P&L (stat) counts every symbol, and a crashed process's"
        " held book, which these gauges no longer show (P&L of crashed instances)."
    )
