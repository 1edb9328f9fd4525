"""Trading overview: what a desk keeps open all day (orders, latency, P&L, risk, logs).

Metric names are the agent's Prometheus names (``docs/metrics.md``,
``tradeobs_agent.trading.instruments.SPECS``); ``job`` is the service (the collector's
prometheus exporter turns ``service.name`` into ``job`` and Prometheus keeps it,
``honor_labels``). Latency panels carry exemplars: a dot opens the order's trace.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import heatmap, logs, stat, table, timeseries
from grafana_foundation_sdk.builders.common import ReduceDataOptions
from grafana_foundation_sdk.builders.dashboard import Dashboard, Row
from grafana_foundation_sdk.models.common import BigValueColorMode, BigValueGraphMode
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DataTransformerConfig,
    ValueMap,
    ValueMappingResult,
)
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from ._common import (
    LOKI,
    ORDER_UID,
    PIPELINE_UID,
    PROMETHEUS,
    TRADING_UID,
    Ids,
    dashboard_link,
    loki,
    prom,
    prom_variable,
    risk_limit,
    service_variable,
    thresholds,
)

J = 'job=~"$job"'
JS = 'job=~"$job",symbol=~"$symbol"'


def _stat(ids: Ids, title: str, expr: str, unit: str, description: str) -> stat.Panel:
    return (
        stat.Panel()
        .id(ids())
        .title(title)
        .description(description)
        .datasource(PROMETHEUS)
        .with_target(prom("A", expr))
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


def _quantiles(metric: str, by: str, legend: str, selector: str = J) -> list[object]:
    """p50 and p99 of a latency histogram, with exemplars on the p99 (one dot set per panel is enough)."""
    bucket = f"{metric}_bucket{{{selector}}}"
    return [
        prom(
            "A",
            f"histogram_quantile(0.99, sum by (le, {by}) (rate({bucket}[$__rate_interval])))",
            f"p99 {legend}",
            exemplar=True,
        ),
        prom("B", f"histogram_quantile(0.50, sum by (le, {by}) (rate({bucket}[$__rate_interval])))", f"p50 {legend}"),
    ]


def build() -> Dashboard:
    ids = Ids()
    drawdown_limit = risk_limit("tradeobs:limit_drawdown:ratio")
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
        .with_variable(prom_variable("job", "Service", "label_values(trading_orders_submitted_total, job)"))
        .with_variable(service_variable(J, multi=True))
        .with_variable(
            prom_variable("symbol", "Symbol", f"label_values(trading_orders_submitted_total{{{J}}}, symbol)")
        )
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
                "Orders filled (time range)",
                f"sum(increase(trading_orders_filled_total{{{J}}}[$__range]))",
                "short",
                "Orders completely filled over the dashboard's time range (not fills: an order filled in three"
                " parts counts once here, three times in the live page's fills).",
            ).decimals(0)
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
                # one selector over both: a sum of two sums is empty when a service reports only one of them
                f'sum({{__name__=~"trading_pnl_realized|trading_pnl_unrealized",{J}}})',
                "short",
                "Realized + unrealized P&L, in the account currency.",
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
                "Orders /s by symbol, side",
                "short",
                prom(
                    "A",
                    f"sum by (symbol, side) (rate(trading_orders_submitted_total{{{JS}}}[$__rate_interval]))",
                    "{{symbol}} {{side}}",
                ),
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
                    f"sum by (le) (rate(trading_order_submit_to_fill_latency_seconds_bucket{{{JS}}}[$__rate_interval]))",
                    "{{le}}",
                    exemplar=True,
                ).format(PromQueryFormat.HEATMAP)
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
                "Submit -> fill latency p50 / p99",
                "s",
                *_quantiles("trading_order_submit_to_fill_latency_seconds", "job", "{{job}}", JS),
                height=9,
            )
        )
        .with_panel(
            _ts(
                ids,
                "Submit -> ack latency by venue",
                "s",
                *_quantiles("trading_order_submit_to_ack_latency_seconds", "venue", "{{venue}}", JS),
                span=8,
            )
        )
        .with_panel(
            _ts(
                ids,
                "Signal -> submit latency by strategy",
                "s",
                *_quantiles("trading_order_signal_to_submit_latency_seconds", "strategy", "{{strategy}}", JS),
                span=8,
            )
        )
        .with_panel(
            _ts(
                ids,
                "Slippage by symbol (bp, adverse > 0)",
                "none",
                prom(
                    "A",
                    f"histogram_quantile(0.95, sum by (le, symbol) (rate(trading_order_slippage_bucket{{{JS}}}[$__rate_interval])))",
                    "p95 {{symbol}}",
                    exemplar=True,
                ),
                prom(
                    "B",
                    f"histogram_quantile(0.50, sum by (le, symbol) (rate(trading_order_slippage_bucket{{{JS}}}[$__rate_interval])))",
                    "p50 {{symbol}}",
                ),
                span=8,
            )
        )
        .with_panel(
            _ts(
                ids,
                "Market data staleness by symbol",
                "s",
                prom("A", f"max by (symbol) (trading_marketdata_staleness_seconds{{{JS}}})", "{{symbol}}"),
            )
        )
        .with_panel(
            _ts(
                ids,
                "Market data feed lag p99 by symbol",
                "s",
                prom(
                    "A",
                    f"histogram_quantile(0.99, sum by (le, symbol) (rate(trading_marketdata_feed_lag_seconds_bucket{{{JS}}}[$__rate_interval])))",
                    "{{symbol}}",
                ),
            )
        )
        # ------------------------------------------------------------ money and risk
        .with_row(Row("P&L, exposure, risk").id(ids()))
        .with_panel(
            _ts(
                ids,
                "Realized P&L by symbol",
                "short",
                prom("A", f"sum by (symbol) (trading_pnl_realized{{{JS}}})", "{{symbol}}"),
                span=8,
            )
        )
        .with_panel(
            _ts(
                ids,
                "Unrealized P&L by symbol (open positions)",
                "short",
                prom("A", f"sum by (symbol) (trading_pnl_unrealized{{{JS}}})", "{{symbol}}"),
                span=8,
            )
        )
        .with_panel(_ts(ids, "Equity", "short", prom("A", f"sum by (job) (trading_equity{{{J}}})", "{{job}}"), span=8))
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
                prom("A", f"sum by (job) (trading_exposure_gross{{{J}}})", "gross {{job}}"),
                prom("B", f"sum by (job) (trading_exposure_net{{{J}}})", "net {{job}}"),
                span=8,
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
            .title("Positions now: quantity, notional, unrealized P&L")
            .datasource(PROMETHEUS)
            .with_target(
                prom("A", f"sum by (job, symbol) (trading_position_quantity{{{JS}}})", instant=True, table=True)
            )
            .with_target(
                prom("B", f"sum by (job, symbol) (trading_position_notional{{{JS}}})", instant=True, table=True)
            )
            .with_target(prom("C", f"sum by (job, symbol) (trading_pnl_unrealized{{{JS}}})", instant=True, table=True))
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
