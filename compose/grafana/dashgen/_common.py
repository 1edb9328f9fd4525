"""What every dashboard shares: datasource references, scrape job names, query and panel helpers.

>>> expr = f'up{{job="{job_scraping("otel-collector:8888")}"}}'   # doctest: +SKIP

Datasources are chosen by a datasource variable per kind (``ds_prometheus``, ``ds_jaeger``, ``ds_loki``), whose
default is the fixed UID of ``compose/grafana/provisioning/datasources``: in another Grafana (your own, with its
own datasource names and UIDs) the variable offers that Grafana's datasources of the kind instead, and no panel
refers to a UID that does not exist there (docs/deployment.md, "Your own Prometheus and Grafana").
Scrape job names are READ from ``compose/prometheus/prometheus.yml`` (by the target
they scrape), never written here, so renaming a job there and regenerating is enough.
The SDK has no Jaeger query type, so :class:`JaegerQuery` is one (the fields Grafana's
Jaeger datasource reads: ``queryType``, ``service``, ``operation``, ``tags``,
``minDuration``, ``maxDuration``, ``limit``, or ``query`` for a trace id).
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from grafana_foundation_sdk.builders import loki as loki_builders
from grafana_foundation_sdk.builders import prometheus as prom_builders
from grafana_foundation_sdk.builders.dashboard import (
    CustomVariable,
    DashboardLink,
    DatasourceVariable,
    QueryVariable,
    ThresholdsConfig,
)
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models.common import DataSourceRef
from grafana_foundation_sdk.models.dashboard import (
    DashboardLinkType,
    DynamicConfigValue,
    Threshold,
    ThresholdsMode,
    VariableHide,
    VariableOption,
    VariableRefresh,
    VariableSort,
)
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

COMPOSE = Path(__file__).resolve().parents[2]
PROMETHEUS_CONFIG = COMPOSE / "prometheus" / "prometheus.yml"
# The deployment's risk limits, the ones the alerts compare against (stat thresholds follow them).
LIMITS_RULES = COMPOSE / "prometheus" / "rules" / "limits.yml"

# Every panel, target and query variable names its datasource by a datasource variable, never by a UID: a
# dashboard imported into a Grafana whose Prometheus datasource has another UID (any Grafana but compose's) showed
# "datasource prometheus was not found" in every panel. Each variable's default is compose's provisioned UID.
# kind -> (variable name, label, compose's UID, compose's datasource name)
DATASOURCE_VARIABLES = {
    "prometheus": ("ds_prometheus", "Prometheus", "prometheus", "Prometheus"),
    "jaeger": ("ds_jaeger", "Jaeger", "jaeger", "Jaeger"),
    "loki": ("ds_loki", "Loki", "loki", "Loki"),
}
PROMETHEUS = DataSourceRef(type_val="prometheus", uid="${ds_prometheus}")
LOKI = DataSourceRef(type_val="loki", uid="${ds_loki}")
JAEGER = DataSourceRef(type_val="jaeger", uid="${ds_jaeger}")


def datasource_variable(kind: str) -> DatasourceVariable:
    """The variable that picks the dashboard's datasource of ``kind`` (prometheus, jaeger, loki): any of that type
    in the Grafana it is imported into, compose's provisioned one by default."""
    name, label, uid, ds_name = DATASOURCE_VARIABLES[kind]
    return (
        DatasourceVariable(name)
        .label(label)
        .description(f"the {label} datasource the panels read (compose: {ds_name}, uid {uid})")
        .type(kind)
        .current(VariableOption(selected=True, text=ds_name, value=uid))
    )


# Dashboard UIDs (links between dashboards and from the docs use them).
TRADING_UID = "tradeobs-trading"
ORDER_UID = "tradeobs-order"
PIPELINE_UID = "tradeobs-pipeline"

# Scrape targets, by compose service:port (tests/compose checks they match the compose ports).
COLLECTOR_EXPORTER_TARGET = "otel-collector:8889"  # the agents' metrics, relayed
COLLECTOR_TARGET = "otel-collector:8888"  # the collector's own telemetry
JAEGER_TARGET = "jaeger:8888"  # the trace store's own telemetry


@functools.cache
def _jobs_by_target() -> dict[str, str]:
    doc = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    out: dict[str, str] = {}
    for job in doc["scrape_configs"]:
        for sc in job.get("static_configs", []):
            for target in sc.get("targets", []):
                out[target] = job["job_name"]
    return out


def job_scraping(target: str) -> str:
    """The ``job`` label Prometheus gives series scraped from ``target`` (per prometheus.yml)."""
    jobs = _jobs_by_target()
    if target not in jobs:
        raise ValueError(f"no scrape job in {PROMETHEUS_CONFIG} has target {target!r}; targets there: {sorted(jobs)}")
    return jobs[target]


def risk_limit(record: str) -> float:
    """The value of a limit recorded in ``rules/limits.yml`` (``record: <record>``, ``expr: vector(<n>)``).

    Read, never written here, like the job names: the alerts compare against these series, so a panel's
    thresholds follow them after an edit of limits.yml and a regeneration."""
    doc = yaml.safe_load(LIMITS_RULES.read_text())
    for group in doc["groups"]:
        for rule in group["rules"]:
            if rule.get("record") == record:
                m = re.fullmatch(r"\s*vector\(\s*([0-9.eE+-]+)\s*\)\s*", str(rule["expr"]))
                if not m:
                    raise ValueError(f"{LIMITS_RULES}: {record} is {rule['expr']!r}, not vector(<number>)")
                return float(m.group(1))
    raise ValueError(f"no rule in {LIMITS_RULES} records {record!r}")


# ---------------------------------------------------------------- ids


class Ids:
    """Sequential, stable panel ids (links such as ``viewPanel=`` rely on them)."""

    def __init__(self) -> None:
        self._next: Iterator[int] = itertools.count(1)

    def __call__(self) -> int:
        return next(self._next)


# ---------------------------------------------------------------- queries


def prom(
    ref: str,
    expr: str,
    legend: str | None = None,
    *,
    exemplar: bool = False,
    instant: bool = False,
    table: bool = False,
) -> prom_builders.Dataquery:
    """A Prometheus target. ``exemplar=True`` on latency panels: the dots open the trace."""
    q = prom_builders.Dataquery().ref_id(ref).expr(expr).exemplar(exemplar)
    if legend is not None:
        q = q.legend_format(legend)
    if instant:
        q = q.instant()
    if table:
        q = q.format(PromQueryFormat.TABLE)
    return q


def loki(ref: str, expr: str) -> loki_builders.Dataquery:
    return loki_builders.Dataquery().ref_id(ref).expr(expr)


class JaegerQuery(cogvariants.Dataquery):
    """A Grafana Jaeger datasource query (the SDK has no type for it)."""

    def __init__(self, ref_id: str, fields: dict[str, Any]) -> None:
        self.ref_id = ref_id
        self.fields = fields

    def to_json(self) -> dict[str, object]:
        return {"refId": self.ref_id, "datasource": {"type": JAEGER.type_val, "uid": JAEGER.uid}, **self.fields}


class JaegerQueryBuilder(cogbuilder.Builder[JaegerQuery]):
    def __init__(self, ref_id: str, **fields: Any) -> None:
        self._q = JaegerQuery(ref_id, {k: v for k, v in fields.items() if v is not None})

    def build(self) -> JaegerQuery:
        return self._q


def jaeger_search(
    ref: str,
    service: str,
    *,
    operation: str | None = None,
    tags: str | None = None,
    min_duration: str | None = None,
    max_duration: str | None = None,
    limit: int = 20,
) -> JaegerQueryBuilder:
    """A Jaeger search (``tags`` in logfmt, as typed in Grafana's search form: ``order.id=$order_id``)."""
    return JaegerQueryBuilder(
        ref,
        queryType="search",
        service=service,
        operation=operation,
        tags=tags,
        minDuration=min_duration,
        maxDuration=max_duration,
        limit=limit,
    )


def jaeger_trace(ref: str, trace_id: str) -> JaegerQueryBuilder:
    """A Jaeger trace-by-id query (what an exemplar or a derived field opens)."""
    return JaegerQueryBuilder(ref, query=trace_id)


# ---------------------------------------------------------------- variables, links, thresholds


def prom_variable(name: str, label: str, query: str, *, all_value: str = ".+") -> QueryVariable:
    """A multi-value Prometheus label variable with "All" (``.+``), refreshed with the time range.

    All is ``.+``, not ``.*``: Grafana puts the allValue in verbatim, and Loki refuses a stream
    selector whose only matcher accepts the empty string (``{service_name=~".*"}``: "queries require
    at least one regexp or equality matcher that does not have an empty-compatible value"), so the
    log panels filtered by a variable errored whenever All was selected. In PromQL every offered
    value is non-empty (label_values), so ``.+`` selects the same series. The Symbol variable, in no
    log query, is ``.*`` (:data:`SYMBOL_ALL`)."""
    return (
        QueryVariable(name)
        .label(label)
        .datasource(PROMETHEUS)
        .query(query)
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_CASE_INSENSITIVE_ASC)
        .multi(True)
        .include_all(True)
        .all_value(all_value)
    )


# The Symbol variable's All: ".*", the one value of $symbol that matches the empty string. So a panel can read a
# recorded series (summed over the symbols: it has no symbol label) while All is selected and the raw series of
# the symbols picked otherwise, in one query, and Prometheus reads only one of the two:
#   <recorded>{symbol=~"$symbol"}            the empty symbol matches only ".*": All
#   <raw>{symbol=~"$symbol",SYMBOL_PICKED}   no series has the label of SYMBOL_PICKED: its value is the empty
#                                            string, which !~".*" refuses (nothing selected, at no cost) and
#                                            !~"(AAPL|MSFT)" accepts
# Selectors of raw series also say symbol!="" (SYMBOL_SET), what ".+" said: the overflow series of an instrument
# past its series limit (no symbol label) stays out of "All", as before.
SYMBOL_ALL = ".*"
SYMBOL_SET = 'symbol!=""'
SYMBOL_PICKED = 'tradeobs_symbols_picked!~"$symbol"'


def all_symbols_or_picked(recorded: str, raw: str) -> str:
    """``recorded`` (from recorded series, selected with ``symbol=~"$symbol"``) while the Symbol variable is All,
    ``raw`` (raw series selected with :data:`SYMBOL_PICKED`) for the symbols picked."""
    return f"{recorded} or {raw}"


def exemplars(ref: str, selector: str) -> prom_builders.Dataquery:
    """A target for a panel's exemplar dots only: ``selector`` (raw buckets; the recorded series have no
    exemplars) at an instant after any sample (``@`` 2100-01-01), so it draws nothing and costs nothing, and
    Grafana's exemplar request, which matches the query's selectors, finds the raw buckets' exemplars. Its own
    target: in the panel's query beside the 6h of recorded series, Prometheus selected the 79,000 raw series in its
    head for nothing, seconds a refresh at 1,000 symbols (benchmarks/dashboard_queries.py)."""
    return prom(ref, f"{selector} @ {EXEMPLARS_ONLY_AT}", "exemplars", exemplar=True)


EXEMPLARS_ONLY_AT = 4102444800  # 2100-01-01T00:00:00Z

# The recorded bucket rates (compose/prometheus/rules/recording.yml, groups tradeobs-dashboard-*) of the latency
# and slippage histograms, summed over symbol, side, order type and instance (slippage: per symbol), rated over 1m:
# the panels' $__rate_interval at their default time ranges.
RECORDED_BUCKET_RATE = {
    "trading_order_submit_to_fill_latency_seconds": "job_venue:trading_order_submit_to_fill_latency_seconds_bucket:rate1m",
    "trading_order_submit_to_ack_latency_seconds": "job_venue:trading_order_submit_to_ack_latency_seconds_bucket:rate1m",
    "trading_order_signal_to_submit_latency_seconds": (
        "job_strategy:trading_order_signal_to_submit_latency_seconds_bucket:rate1m"
    ),
    "trading_order_slippage": "job_symbol:trading_order_slippage_bucket:rate1m",
}
# The slippage buckets' rate summed over symbols too (from the per-symbol one, the same group): the drill-down's
# slippage while Symbol is All (:func:`slippage_rate`).
SLIPPAGE_RATE_ALL_SYMBOLS = "job:trading_order_slippage_bucket:rate1m"


def bucket_rate(metric: str, by: str, jobs: str, symbols: str) -> str:
    """``sum by (<by>) (rate(<metric>_bucket[$__rate_interval]))`` of the services ``jobs`` (a selector without
    symbol) and the symbols ``symbols`` (the symbol matchers of a raw selector): from the recorded rate while the
    Symbol variable is All (see :func:`all_symbols_or_picked`), from the raw buckets of the symbols picked."""
    recorded = f'sum by ({by}) ({RECORDED_BUCKET_RATE[metric]}{{{jobs},symbol=~"$symbol"}})'
    raw = f"sum by ({by}) (rate({metric}_bucket{{{jobs},{symbols},{SYMBOL_PICKED}}}[$__rate_interval]))"
    return all_symbols_or_picked(recorded, raw)


def slippage_rate(jobs: str, symbols: str) -> str:
    """``sum by (le)`` of the slippage buckets' 1m rate of the services ``jobs`` and the symbols ``symbols`` (the
    symbol matchers of a raw selector): recorded over all symbols while the Symbol variable is All, recorded per
    symbol for the symbols picked (see :func:`all_symbols_or_picked`)."""
    recorded = f'sum by (le) ({SLIPPAGE_RATE_ALL_SYMBOLS}{{{jobs},symbol=~"$symbol"}})'
    picked = f"sum by (le) ({RECORDED_BUCKET_RATE['trading_order_slippage']}{{{jobs},{symbols},{SYMBOL_PICKED}}})"
    return all_symbols_or_picked(recorded, picked)


# The trading mode (trading.mode of the service's resource: the collector's transform/trading_mode puts it on
# every series as trading_mode, and the trading recording rules keep it). A backtest or replay run under a live
# service's name is a series of its own: the dashboards show live and paper by default, backtests when selected.
# A series without the label (a service that sets no trading.mode, or a collector without transform/trading_mode)
# is shown whatever the selection: "|" adds the empty value to the variable's regex.
TRADING_MODES = ("live", "paper", "backtest")
DEFAULT_MODES = ["live", "paper"]
MODE = 'trading_mode=~"$mode|"'


def mode_variable() -> CustomVariable:
    """``mode``: the trading modes shown (multi-value, default live and paper; backtest is chosen, never shown
    by default). Before, a backtest exporting under a live service's name was summed into its panels."""
    return (
        CustomVariable("mode")
        .label("Trading mode")
        .description("trading.mode of the services: live and paper by default; choose backtest to see backtests")
        .values(",".join(TRADING_MODES))
        .multi(True)
        .include_all(False)
        .current(VariableOption(selected=True, text=list(DEFAULT_MODES), value=list(DEFAULT_MODES)))
        .options([VariableOption(selected=m in DEFAULT_MODES, text=m, value=m) for m in TRADING_MODES])
    )


# The service.name in a Prometheus job: the collector's prometheus exporter names the job
# "<service.namespace>/<service.name>" when the service has a namespace, while Jaeger (its service)
# and Loki (its service_name label) know the service by service.name alone.
SERVICE_OF_JOB = "/([^/]+)$/"


def service_variable(job_selector: str, *, multi: bool) -> QueryVariable:
    """Hidden ``service``: the service.name of the selected job(s), for the Jaeger and Loki queries.

    ``multi``: All, with no allValue, so All is exactly the services of the selected jobs (every option,
    regex-escaped and joined); otherwise the one service of the one selected job."""
    v = (
        QueryVariable("service")
        .label("Service name (Jaeger, Loki)")
        .description("service.name of the selected service: its job without the service.namespace/ prefix")
        .datasource(PROMETHEUS)
        .query(f"label_values(trading_orders_submitted_total{{{job_selector}}}, job)")
        .regex(SERVICE_OF_JOB)
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_CASE_INSENSITIVE_ASC)
        .hide(VariableHide.HIDE_VARIABLE)
        # Derived, never chosen: a value from a URL (the dashboard links carry every variable, so the
        # overview's multi-value "All" reaches the drill-down's single one) is replaced by the options.
        .allow_custom_value(False)
    )
    return v.multi(True).include_all(True) if multi else v.multi(False).include_all(False)


# The drill-down's variables a link to one order carries over from the panel it is clicked in (its service,
# symbols, venue, strategy, trading mode and slow-order bounds), by Grafana's ``${var:queryparam}`` format:
# ``var-<name>=<value>`` for each selected value (``$__all`` for All).
ORDER_CONTEXT_VARS = ("mode", "job", "symbol", "venue", "strategy", "min_latency", "max_latency")


def order_link_url(*, keep_order_id: bool) -> str:
    """The URL of the Order drill-down for the trace of a Jaeger search row (the ``traceID`` field), in the
    drill-down itself: the row's trace id, the panel's time range and the context variables; the order id
    kept (the row is a trace of that order: the search by ``order.id``) or cleared (another order's trace,
    whose logs are then found by its trace id)."""
    order = "${order_id:queryparam}" if keep_order_id else "var-order_id="
    context = "&".join(f"${{{v}:queryparam}}" for v in ORDER_CONTEXT_VARS)
    return f"/d/{ORDER_UID}?{context}&{order}&var-trace_id=${{__value.raw}}&${{__url_time_range}}"


def trace_row_links(*, keep_order_id: bool) -> list[DynamicConfigValue]:
    """Field-override properties for a Jaeger search table's ``traceID`` column: a click fills the drill-down
    (its trace panel, its log panels, its comparisons) instead of the datasource's own link, which opened the
    trace in Explore (an override's ``links`` replace the field's)."""
    return [
        DynamicConfigValue(
            id_val="links",
            value=[
                {
                    "title": "Order drill-down: this trace, its logs and metrics",
                    "url": order_link_url(keep_order_id=keep_order_id),
                    "targetBlank": False,
                }
            ],
        )
    ]


def dashboard_link(title: str, uid: str) -> DashboardLink:
    """A link to another tradeobs dashboard that keeps the time range and the variables."""
    return (
        DashboardLink(title)
        .type(DashboardLinkType.LINK)
        .url(f"/d/{uid}")
        .include_vars(True)
        .keep_time(True)
        .target_blank(False)
    )


def thresholds(*steps: tuple[float | None, str]) -> ThresholdsConfig:
    """``thresholds((None, "green"), (0.05, "red"))``: absolute steps, the first from -inf."""
    return ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps([Threshold(value=v, color=c) for v, c in steps])
