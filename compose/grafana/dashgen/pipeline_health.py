"""Pipeline health: the monitoring of the monitoring (agents, collector, trace store, Prometheus, alerting).

The collector and the trace store (Jaeger v2 is built on the collector) both expose
``otelcol_*`` metrics: every such panel selects its component by the ``job`` that
scrapes it, read from ``compose/prometheus/prometheus.yml``.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import stat, table, timeseries
from grafana_foundation_sdk.builders.common import ReduceDataOptions
from grafana_foundation_sdk.builders.dashboard import Dashboard, Row
from grafana_foundation_sdk.models.common import BigValueColorMode, BigValueGraphMode
from grafana_foundation_sdk.models.dashboard import DashboardCursorSync

from ._common import (
    COLLECTOR_TARGET,
    JAEGER_TARGET,
    ORDER_UID,
    PIPELINE_UID,
    PROMETHEUS,
    TRADING_UID,
    Ids,
    dashboard_link,
    datasource_variable,
    job_scraping,
    prom,
    thresholds,
)

SIGNALS = ("spans", "metric_points", "log_records")


def _stat(ids: Ids, title: str, expr: str, unit: str = "short") -> stat.Panel:
    return (
        stat.Panel()
        .id(ids())
        .title(title)
        .datasource(PROMETHEUS)
        .with_target(prom("A", expr))
        .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]))
        .unit(unit)
        .graph_mode(BigValueGraphMode.NONE)
        .color_mode(BigValueColorMode.BACKGROUND)
        .span(6)
        .height(4)
    )


def _ts(ids: Ids, title: str, unit: str, *targets: object, span: int = 8) -> timeseries.Panel:
    panel = timeseries.Panel().id(ids()).title(title).datasource(PROMETHEUS).unit(unit).span(span).height(8)
    for t in targets:
        panel = panel.with_target(t)  # type: ignore[arg-type]
    return panel


def _per_signal(kind: str, what: str, job: str, by: str) -> str:
    """``otelcol_<kind>_<what>_<signal>`` rates by ``by`` and ``signal``, for every collector version we
    ship (with or without ``_total``). One rate per signal: a receiver takes all three signals with the
    same labels and rate() drops the name, so one regex over the three names would clash."""
    parts = [
        f'label_replace(sum by ({by}) (rate({{__name__=~"otelcol_{kind}_{what}_{signal}(_total)?",job="{job}"}}'
        f'[$__rate_interval])), "signal", "{signal}", "", "")'
        for signal in SIGNALS
    ]
    return " or ".join(parts)


def build() -> Dashboard:
    ids = Ids()
    col = job_scraping(COLLECTOR_TARGET)
    jaeger = job_scraping(JAEGER_TARGET)
    return (
        Dashboard("tradeobs / Pipeline health")
        .uid(PIPELINE_UID)
        .description("Is the telemetry itself arriving? Agents, collector, trace store, Prometheus, alerting.")
        .tags(["tradeobs", "pipeline"])
        .readonly()
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .time("now-6h", "now")
        .refresh("30s")
        .with_variable(datasource_variable("prometheus"))
        .link(dashboard_link("Trading overview", TRADING_UID))
        .link(dashboard_link("Order drill-down", ORDER_UID))
        # ------------------------------------------------------------ alerting
        .with_row(Row("Alerting").id(ids()))
        .with_panel(
            _stat(
                ids, "Firing alerts (critical)", 'count(ALERTS{alertstate="firing",severity="critical"}) or vector(0)'
            ).thresholds(thresholds((None, "green"), (1, "red")))
        )
        .with_panel(
            _stat(
                ids, "Firing alerts (warning)", 'count(ALERTS{alertstate="firing",severity="warning"}) or vector(0)'
            ).thresholds(thresholds((None, "green"), (1, "orange")))
        )
        .with_panel(
            _stat(ids, "Targets down", "count(up == 0) or vector(0)").thresholds(
                thresholds((None, "green"), (1, "red"))
            )
        )
        .with_panel(
            _stat(
                ids, "Last backup age", "time() - max(tradeobs_backup_last_success_timestamp_seconds)", "s"
            ).thresholds(thresholds((None, "green"), (36 * 3600, "red")))
        )
        .with_panel(
            table.Panel()
            .id(ids())
            .title("Scrape targets")
            .datasource(PROMETHEUS)
            .with_target(prom("A", "up", instant=True, table=True))
            .span(12)
            .height(8)
        )
        .with_panel(
            _ts(
                ids,
                "Alertmanager notifications /s (failed)",
                "short",
                prom(
                    "A",
                    "sum by (integration) (rate(alertmanager_notifications_total[$__rate_interval]))",
                    "sent {{integration}}",
                ),
                prom(
                    "B",
                    "sum by (integration) (rate(alertmanager_notifications_failed_total[$__rate_interval]))",
                    "FAILED {{integration}}",
                ),
                span=12,
            )
        )
        # ------------------------------------------------------------ agents
        .with_row(Row("Agent (tradeobs_agent_*)").id(ids()))
        .with_panel(
            _ts(
                ids,
                "Agent export failures /s by signal",
                "short",
                prom(
                    "A",
                    "sum by (job, signal) (rate(tradeobs_agent_exports_failed_total[$__rate_interval]))",
                    "{{job}} {{signal}}",
                ),
            )
        )
        .with_panel(
            _ts(
                ids,
                "Agent items dropped /s",
                "short",
                prom(
                    "A",
                    "sum by (job, signal, reason) (rate(tradeobs_agent_items_dropped_total[$__rate_interval]))",
                    "{{job}} {{signal}} {{reason}}",
                ),
            )
        )
        .with_panel(
            _ts(
                ids,
                "Agent logs dropped /s",
                "short",
                prom("A", "sum by (job) (rate(tradeobs_agent_logs_dropped_total[$__rate_interval]))", "{{job}}"),
            )
        )
        # ------------------------------------------------------------ collector
        .with_row(Row(f"Collector (job {col})").id(ids()))
        .with_panel(
            _ts(
                ids,
                "Accepted / refused items /s (receiver)",
                "short",
                prom("A", _per_signal("receiver", "accepted", col, "receiver"), "{{receiver}} {{signal}}"),
                prom("B", _per_signal("receiver", "refused", col, "receiver"), "REFUSED {{receiver}} {{signal}}"),
            )
        )
        .with_panel(
            _ts(
                ids,
                "Sent / failed items /s (exporter)",
                "short",
                prom("A", _per_signal("exporter", "sent", col, "exporter"), "sent {{exporter}}"),
                prom("B", f'job_exporter:otelcol_exporter_send_failed:rate5m{{job="{col}"}}', "FAILED {{exporter}}"),
                prom(
                    "C",
                    f'job_exporter:otelcol_exporter_enqueue_failed:rate5m{{job="{col}"}}',
                    "DROPPED (queue full) {{exporter}}",
                ),
            )
        )
        .with_panel(
            _ts(
                ids,
                "Sending queue utilization",
                "percentunit",
                prom("A", f'job_exporter:otelcol_exporter_queue_utilization:ratio{{job="{col}"}}', "{{exporter}}"),
            )
        )
        .with_panel(
            _ts(
                ids,
                "Collector memory (RSS)",
                "bytes",
                prom(
                    "A",
                    f'max by (instance) ({{__name__=~"otelcol_process_memory_rss(_bytes)?",job="{col}"}})',
                    "{{instance}}",
                ),
                span=12,
            )
        )
        .with_panel(
            _ts(
                ids,
                "Collector CPU",
                "percentunit",
                prom(
                    "A",
                    f'max by (instance) (rate({{__name__=~"otelcol_process_cpu_seconds(_total)?",job="{col}"}}[$__rate_interval]))',
                    "{{instance}}",
                ),
                span=12,
            )
        )
        # ------------------------------------------------------------ trace store
        .with_row(Row(f"Trace store: Jaeger (job {jaeger})").id(ids()))
        .with_panel(
            _ts(
                ids,
                "Spans received /s (refused)",
                "short",
                prom(
                    "A",
                    f'sum by (receiver) (rate({{__name__=~"otelcol_receiver_accepted_spans(_total)?",job="{jaeger}"}}[$__rate_interval]))',
                    "accepted {{receiver}}",
                ),
                prom(
                    "B",
                    f'sum by (receiver) (rate({{__name__=~"otelcol_receiver_refused_spans(_total)?",job="{jaeger}"}}[$__rate_interval]))',
                    "REFUSED {{receiver}}",
                ),
                span=12,
            )
        )
        .with_panel(
            _ts(
                ids,
                "Spans written to storage /s (failed)",
                "short",
                prom(
                    "A",
                    f'sum by (exporter) (rate({{__name__=~"otelcol_exporter_sent_spans(_total)?",job="{jaeger}"}}[$__rate_interval]))',
                    "written {{exporter}}",
                ),
                prom(
                    "B",
                    f'sum by (exporter) (rate({{__name__=~"otelcol_exporter_send_failed_spans(_total)?",job="{jaeger}"}}[$__rate_interval]))',
                    "FAILED {{exporter}}",
                ),
                span=12,
            )
        )
        # ------------------------------------------------------------ Prometheus
        .with_row(Row("Prometheus").id(ids()))
        .with_panel(
            _ts(
                ids,
                "Rule evaluation failures /s",
                "short",
                prom(
                    "A",
                    "sum by (rule_group) (rate(prometheus_rule_evaluation_failures_total[$__rate_interval]))",
                    "{{rule_group}}",
                ),
            )
        )
        .with_panel(_ts(ids, "Head series", "short", prom("A", "prometheus_tsdb_head_series", "{{instance}}")))
        .with_panel(
            _ts(
                ids,
                "TSDB size vs limit",
                "bytes",
                prom("A", "prometheus_tsdb_storage_blocks_bytes", "blocks"),
                prom("B", "prometheus_tsdb_retention_limit_bytes", "size limit"),
            )
        )
        .with_panel(
            _ts(
                ids,
                "Scrape duration by job",
                "s",
                prom("A", "max by (job) (scrape_duration_seconds)", "{{job}}"),
                span=12,
            )
        )
        .with_panel(
            _ts(
                ids,
                "Notifications to Alertmanager (errors, dropped)",
                "short",
                prom("A", "sum(rate(prometheus_notifications_errors_total[$__rate_interval]))", "errors"),
                prom("B", "sum(rate(prometheus_notifications_dropped_total[$__rate_interval]))", "dropped"),
                span=12,
            )
        )
        # ------------------------------------------------------------ log store
        .with_row(Row("Log store: Loki").id(ids()))
        .with_panel(
            _ts(
                ids,
                "Loki discarded lines /s",
                "short",
                prom("A", "sum by (reason) (rate(loki_discarded_samples_total[$__rate_interval]))", "{{reason}}"),
                span=24,
            )
        )
    )
