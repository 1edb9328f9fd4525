"""The morning after: "fills on venue X were slow around 14:32 and one order lost money; what happened?"

Followed link by link, as Grafana resolves each one, on real data: a service trading on venues X and Y (plus a
second service, so a link that selects every service shows) -> the real collector (collector/otel-collector.yaml)
-> Prometheus running compose's config (exemplar storage) and Jaeger v2 running compose's. The links are those
compose/grafana provisions: the trading overview's latency and slippage dots (exemplars, by the Prometheus
datasource's exemplarTraceIdDestinations) -> the trace; the trace's spans -> their service's metrics
(tracesToMetrics) and their trace's logs (tracesToLogsV2, on the collector's file exporter as Loki indexes it)
-> back to the trace (the Loki datasource's derived field).
"""

from __future__ import annotations

import contextlib
import http.server
import json
import re
import secrets
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from .agent_proc import AgentWorkload, unique_service
from .agent_workload import STRATEGY
from .grafana_eval import (
    DATASOURCES,
    GRAFANA,
    Evaluator,
    dashboard_choice,
    data_link,
    loki_match,
    provisioned,
    traces_to_metrics_links,
)
from .procs import (
    REPO,
    CollectorProc,
    JaegerProc,
    PrometheusProc,
    free_port,
    http_get,
    jaeger_search,
    jaeger_trace,
    prometheus_query,
    read_otlp_json_logs,
    span_tags,
    start_prometheus,
    wait_for,
)
from .test_dashboards import compose_prometheus_config, compose_stack
from .thanos import start_thanos

pytestmark = pytest.mark.integration

DS = {d["uid"]: d for d in DATASOURCES}
OVERVIEW = json.loads((GRAFANA / "dashboards" / "trading-overview.json").read_text())
DRILL = json.loads((GRAFANA / "dashboards" / "order-drilldown.json").read_text())
EXPORT_INTERVAL = 10.0  # the agent's default, as in compose
SLOW_S = 2.0
FILL_PRICE = 191.5  # a buy limit at 190.0 filled at 191.5: 78.9 bp adverse slippage, the order that lost money
# Failure deadline for data to reach Prometheus through compose's 10-15 s scrape and rule intervals.
DATA_DEADLINE = 240.0


@dataclass
class Incident:
    jaeger: JaegerProc
    collector: CollectorProc
    prometheus: PrometheusProc
    desk: AgentWorkload  # service.namespace=desk: its job is "desk/<service.name>"
    other: AgentWorkload  # no namespace: its job is its service.name
    slow: dict[str, Any]  # the slow order: order_id, trace_id, t0, t1

    @property
    def job(self) -> str:
        return f"desk/{self.desk.service_name}"


@pytest.fixture(scope="module")
def incident(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Incident]:
    tmp = tmp_path_factory.mktemp("incident")
    with (
        compose_stack(tmp) as (jaeger, collector, _, prom, _),
        AgentWorkload(
            "incident",
            collector,
            tmp / "desk",
            unique_service("incident"),
            EXPORT_INTERVAL,
            extra_env={"OTEL_RESOURCE_ATTRIBUTES": "service.namespace=desk"},
        ) as desk,
        AgentWorkload("incident", collector, tmp / "other", unique_service("other"), EXPORT_INTERVAL) as other,
    ):
        procs = (jaeger.proc, collector.proc, prom.proc)
        jobs = {f"desk/{desk.service_name}", other.service_name}

        def both_trading() -> bool:
            res = prometheus_query(prom.url, "job:trading_orders_submitted:rate5m > 0")
            return jobs <= {s["metric"]["job"] for s in res}

        wait_for(both_trading, "both services' order rates (recording rules)", DATA_DEADLINE, procs=procs)
        slow = desk.send({"cmd": "slow_fill", "venue": "X", "seconds": SLOW_S, "fill_price": FILL_PRICE})
        assert slow.get("flushed") is True, slow
        yield Incident(jaeger, collector, prom, desk, other, slow)


def _trace(incident: Incident, trace_id: str) -> dict[str, Any]:
    """The order's whole trace from Jaeger (its spans arrive with the agent's next export)."""

    def whole() -> dict[str, Any] | None:
        trace = jaeger_trace(incident.jaeger.query_url, trace_id)
        return trace if trace and {"order", "fill"} <= {s["operationName"] for s in trace["spans"]} else None

    return wait_for(whole, f"trace {trace_id} with its order and fill spans", DATA_DEADLINE)


def _order_span(trace: dict[str, Any]) -> dict[str, Any]:
    (span,) = [s for s in trace["spans"] if s["operationName"] == "order"]
    return span


def test_the_highest_latency_and_slippage_dots_open_the_slow_losing_order(incident: Incident) -> None:
    """The dots a trader clicks at the spike: the highest exemplar of each trading-overview fill latency and
    slippage panel carries, under the label the Prometheus datasource sends to Jaeger, the trace of the order
    that filled SLOW_S late on venue X at a loss; Jaeger opens that trace by the id as Grafana asks for it."""
    (dest,) = [d for d in DS["prometheus"]["jsonData"]["exemplarTraceIdDestinations"] if "datasourceUid" in d]
    assert dest["datasourceUid"] == "jaeger"
    ev = Evaluator(incident.prometheus.url, incident.jaeger.query_url, DATASOURCES)
    start, end = ev.time_range(OVERVIEW)
    variables = ev.resolve_variables(OVERVIEW, {"job": incident.job}, start, end)
    panels = [
        q
        for q in ev.queries(OVERVIEW, variables, start, end)
        if q.exemplar and re.search(r"submit_to_fill|slippage", q.target["expr"])
    ]
    assert len(panels) >= 3, [q.describe() for q in panels]
    for q in panels:

        def top(q: Any = q) -> dict[str, Any] | None:
            exemplars = ev.exemplars(q)
            best = max(exemplars, key=lambda e: float(e["value"]), default=None)
            return best if best is not None and dest["name"] in best["labels"] and float(best["value"]) > 1 else None

        best = wait_for(top, f"the slow order's exemplar on {q.describe()}", DATA_DEADLINE)
        assert best["labels"][dest["name"]] == incident.slow["trace_id"], (q.describe(), best)
        trace = _trace(incident, best["labels"][dest["name"]])
        tags = span_tags(_order_span(trace))
        assert (tags["order.id"], tags["venue"]) == (incident.slow["order_id"], "X"), tags
        (fill,) = [s for s in trace["spans"] if s["operationName"] == "fill"]
        assert fill["duration"] >= SLOW_S * 1e6, fill["duration"]


def test_the_fill_latency_panel_tells_the_venues_apart(incident: Incident) -> None:
    """The trading overview's submit -> fill p50/p99 has a line per venue of the service: the service's p99
    over all venues (the panel had no other) hid a slow venue among fast ones."""
    ev = Evaluator(incident.prometheus.url, incident.jaeger.query_url, DATASOURCES)

    def p99_now() -> Any:
        """The panel's p99 query over the dashboard's range ending now: a range fixed once ended where the rate
        (two samples in its window) could still be empty, and waiting never moved it (seen in a full run)."""
        start, end = ev.time_range(OVERVIEW)
        variables = ev.resolve_variables(OVERVIEW, {"job": incident.job}, start, end)
        (p99,) = [
            q
            for q in ev.queries(OVERVIEW, variables, start, end)
            if q.panel.startswith("Submit -> fill latency p50 / p99")
            and q.target["expr"].startswith("histogram_quantile(0.99")
        ]
        return p99

    series = wait_for(lambda: ev.run(p99_now()), p99_now().describe(), DATA_DEADLINE)
    assert {(s["metric"]["job"], s["metric"].get("venue")) for s in series} == {
        (incident.job, "X"),
        (incident.job, "Y"),
    }, series


def _other_trace(incident: Incident) -> dict[str, Any]:
    traces = wait_for(
        lambda: jaeger_search(incident.jaeger.query_url, incident.other.service_name, operation="order", limit=1),
        "an order trace of the other service",
    )
    return traces[0]


def test_a_spans_metrics_links_show_its_own_service(incident: Incident) -> None:
    """From a span of the slow order, "Fill latency p99" and "Orders submitted/s" (the Jaeger datasource's
    tracesToMetrics, $__tags made of the span's tags as Grafana makes it) show that service's numbers.
    The datasource mapped service.name to job: Jaeger's process tags have no service.name, so $__tags was empty
    and both links showed every service (here the desk's link = the other service's link = all services)."""
    slow = _trace(incident, incident.slow["trace_id"])
    other = _other_trace(incident)
    spans = {incident.job: (slow, _order_span(slow)), incident.other.service_name: (other, _order_span(other))}
    at = _order_span(slow)["startTime"] / 1e6 + _order_span(slow)["duration"] / 1e6
    # every sample up to the slow fill is in (scrapes and rule results are written a moment after their time)
    wait_for(lambda: time.time() > at + 20 or None, "the samples up to the slow fill", 60)
    every = {
        name: q for name, q, _, _ in traces_to_metrics_links(DS["jaeger"], {"processes": {"p": {}}}, _no_tags_span())
    }
    checked = 0
    for job, (trace, span) in spans.items():
        for name, expr, start, end in traces_to_metrics_links(DS["jaeger"], trace, span):
            assert start <= at <= end, (name, start, at, end)
            mine = _instant(incident.prometheus.url, expr, at)
            assert mine, f"{name}: {expr} is empty at the slow fill"
            assert {s["metric"].get("job", job) for s in mine} == {job}, (name, expr, mine)
            # the service's share: the link of the one service and the other's add up to all services
            theirs_job = next(j for j in spans if j != job)
            theirs = next(e for n, e, _, _ in traces_to_metrics_links(DS["jaeger"], *spans[theirs_job]) if n == name)
            total = _instant(incident.prometheus.url, every[name], at)
            assert _sum(mine) + _sum(_instant(incident.prometheus.url, theirs, at)) == pytest.approx(_sum(total)), (
                f"{name}: the link of {job} ({expr}) and of {theirs_job} ({theirs}) do not split all services "
                f"({every[name]})"
            )
            checked += 1
    assert checked == 2 * len(DS["jaeger"]["jsonData"]["tracesToMetrics"]["queries"])


def _no_tags_span() -> dict[str, Any]:
    """A span with no tag at all: its links' queries are the templates with an empty $__tags (every service)."""
    return {"processID": "p", "tags": [], "spanID": "0", "traceID": "0", "operationName": "x", "duration": 0,
            "startTime": 0}  # fmt: skip


def _instant(prometheus_url: str, expr: str, at: float) -> list[dict[str, Any]]:
    q = urllib.parse.urlencode({"query": expr, "time": at})
    status, body = http_get(f"{prometheus_url}/api/v1/query?{q}")
    data = json.loads(body)
    assert status == 200 and data["status"] == "success", (expr, body[:500])
    return list(data["data"]["result"])


def _sum(result: list[dict[str, Any]]) -> float:
    return sum(float(s["value"][1]) for s in result)


def test_the_slow_orders_trace_opens_its_logs_and_they_open_it_back(incident: Incident) -> None:
    """Trace -> logs (tracesToLogsV2's query, over the span's range with its time shifts) finds the fill's log
    line of the slow order; the Loki datasource's trace_id derived field on that line opens the same trace."""
    t2l = DS["jaeger"]["jsonData"]["tracesToLogsV2"]
    trace = _trace(incident, incident.slow["trace_id"])
    span = _order_span(trace)
    expr = provisioned(t2l["query"]).replace("${__trace.traceId}", trace["traceID"])
    assert "$" not in expr, expr
    start = span["startTime"] / 1e6 - 300  # spanStartTimeShift -5m, spanEndTimeShift 5m (asserted below)
    end = (span["startTime"] + span["duration"]) / 1e6 + 300
    assert (t2l["spanStartTimeShift"], t2l["spanEndTimeShift"]) == ("-5m", "5m")

    def lines() -> list[dict[str, Any]] | None:
        found = [
            r
            for r in read_otlp_json_logs(Path(incident.collector.logs_file))
            if loki_match(expr, r) and start <= int(r["timeUnixNano"]) / 1e9 <= end
        ]
        return found or None

    found = wait_for(lines, f"the slow order's log lines ({expr})", DATA_DEADLINE)
    bodies = [r["body"].get("stringValue", "") for r in found]
    assert any(f"{incident.slow['order_id']} on venue X at {FILL_PRICE}" in b for b in bodies), bodies
    assert {r["_attributes"].get("order_id") for r in found} == {incident.slow["order_id"]}, bodies
    # the log line's derived field (label trace_id, url ${__value.raw}) -> Jaeger, the same trace
    (field,) = [f for f in DS["loki"]["jsonData"]["derivedFields"] if f.get("matcherType") == "label"]
    assert provisioned(field["url"]) == "${__value.raw}"
    for r in found:
        assert span_tags(_order_span(_trace(incident, r["traceId"])))["order.id"] == incident.slow["order_id"]


def _lands_on_the_slow_order(incident: Incident, params: dict[str, list[str]]) -> None:
    """The Order drill-down opened with these URL parameters shows the slow order: every variable the link sets
    is offered (job, symbol, venue, strategy), its trace panel shows the order's trace, and both its log panels,
    run on the records the collector sends to Loki (its file exporter) over the link's time range, show that
    order's records and no other order's."""
    choose, start, end = dashboard_choice(params)
    ev = Evaluator(incident.prometheus.url, incident.jaeger.query_url, DATASOURCES)
    variables = ev.resolve_variables(DRILL, choose, start, end)
    queries = ev.queries(DRILL, variables, start, end)
    (by_trace,) = [q for q in queries if q.kind == "jaeger" and "query" in q.target]
    (trace,) = ev.run(by_trace)
    assert span_tags(_order_span(trace))["order.id"] == incident.slow["order_id"], by_trace.describe()
    logs = [q for q in queries if q.kind == "loki" and "order_id" in q.target["expr"]]
    assert len(logs) == 2, [q.describe() for q in queries if q.kind == "loki"]
    for q in logs:

        def lines(q: Any = q) -> list[dict[str, Any]] | None:
            found = [
                r
                for r in read_otlp_json_logs(Path(incident.collector.logs_file))
                if start <= int(r["timeUnixNano"]) / 1e9 <= end and loki_match(q.target["expr"], r)
            ]
            return found or None

        found = wait_for(lines, f"the slow order's records: {q.describe()}", DATA_DEADLINE)
        assert {r["_attributes"].get("order_id") for r in found} == {incident.slow["order_id"]}, q.describe()
        bodies = [r["body"].get("stringValue", "") for r in found]
        assert any(f"{incident.slow['order_id']} on venue X at {FILL_PRICE}" in b for b in bodies), bodies


def test_a_dots_drilldown_link_opens_that_order_its_trace_and_its_logs(incident: Incident) -> None:
    """The highest dot of each fill latency and slippage panel has an "Order drill-down" link (the Prometheus
    datasource's exemplar destination with a url, filled from the dot's exemplar frame as Grafana fills it) to
    the drill-down of THAT order: its trace id, service, symbol, venue and strategy, the panel's time range; it
    shows the order's trace and its log records. The dots had only "Open trace" (Explore): the exemplar has no
    order id, so the drill-down's log panels (by order_id) could not be filled from a dot."""
    dests = DS["prometheus"]["jsonData"]["exemplarTraceIdDestinations"]
    links = [d for d in dests if d.get("url")]
    assert len(links) == 1, f"no exemplar link opens the Order drill-down: {dests}"
    (link,) = links
    ev = Evaluator(incident.prometheus.url, incident.jaeger.query_url, DATASOURCES)
    start, end = ev.time_range(OVERVIEW)
    variables = ev.resolve_variables(OVERVIEW, {"job": incident.job}, start, end)
    panels = [
        q
        for q in ev.queries(OVERVIEW, variables, start, end)
        if q.exemplar and re.search(r"submit_to_fill|slippage", q.target["expr"])
    ]
    assert len(panels) >= 3, [q.describe() for q in panels]
    for q in panels:

        def top(q: Any = q) -> dict[str, str] | None:
            rows = [r for r in ev.exemplar_rows(q) if link["name"] in r]
            best = max(rows, key=lambda r: float(r["Value"]), default=None)
            return best if best is not None and float(best["Value"]) > 1 else None

        best = wait_for(top, f"the slow order's exemplar on {q.describe()}", DATA_DEADLINE)
        path, params = data_link(provisioned(link["url"]), value=best[link["name"]], fields=best, start=start, end=end)
        assert path == f"/d/{DRILL['uid']}", path
        assert params["var-trace_id"] == [incident.slow["trace_id"]], (q.describe(), params)
        assert (params["var-job"], params["var-venue"], params["var-strategy"]) == ([incident.job], ["X"], [STRATEGY])
        _lands_on_the_slow_order(incident, params)


def _row_link(panel_title: str) -> str:
    """The url of the drill-down panel's link on its Jaeger rows' trace id (a field override of traceID)."""
    (panel,) = [p for p in DRILL["panels"] if p["title"].startswith(panel_title)]
    links = [
        link
        for o in panel.get("fieldConfig", {}).get("overrides", [])
        if o["matcher"] == {"id": "byName", "options": "traceID"}
        for prop in o["properties"]
        if prop["id"] == "links"
        for link in prop["value"]
    ]
    assert len(links) == 1, f"{panel['title']!r}: its rows' trace ids have no drill-down link (Explore only)"
    return str(links[0]["url"])


def test_the_slow_orders_table_filters_by_venue_and_a_row_opens_that_order(incident: Incident) -> None:
    """ "Slow orders on $venue": the Venue and Strategy variables filter the Jaeger search (every row an order of
    that venue and strategy; the slow order on X, not on Y), and a click on its row's trace id fills the
    drill-down with that order (its trace, its log records), not Explore. Before, "Slow orders" had no venue
    filter, and every Jaeger table's trace id opened Explore."""
    ev = Evaluator(incident.prometheus.url, incident.jaeger.query_url, DATASOURCES)
    _trace(incident, incident.slow["trace_id"])
    end = time.time()
    start = end - 3600
    title = "Slow orders on"
    for venue, at_least in (("Y", "10ms"), ("X", "500ms")):
        choose = {"job": incident.job, "venue": venue, "strategy": STRATEGY, "min_latency": at_least}
        variables = ev.resolve_variables(DRILL, choose, start, end)
        tables = [q for q in ev.queries(DRILL, variables, start, end) if q.panel.startswith(title)]
        assert len(tables) == 1, f"no {title!r} table in the drill-down"
        (table,) = tables
        rows = wait_for(lambda t=table: ev.run(t), table.describe(), DATA_DEADLINE)
        for trace in rows:
            tags = span_tags(_order_span(trace))
            assert (tags["venue"], tags["strategy"]) == (venue, STRATEGY), (table.describe(), tags)
        assert (incident.slow["trace_id"] in {t["traceID"] for t in rows}) == (venue == "X"), table.describe()
    path, params = data_link(
        _row_link(title),
        value=incident.slow["trace_id"],
        fields={"traceID": incident.slow["trace_id"]},
        start=start,
        end=end,
        variables=variables,
    )
    assert path == f"/d/{DRILL['uid']}", path
    assert (params["var-trace_id"], params["var-order_id"], params["var-venue"]) == (
        [incident.slow["trace_id"]],
        [""],
        ["X"],
    ), params
    _lands_on_the_slow_order(incident, params)
    # the other Jaeger tables' rows open the drill-down too (the by-order.id one keeps the order id)
    for other in ("Slow orders:", "Rejected orders", "Order $order_id: its trace"):
        _row_link(other)


class _ExemplarPage(http.server.BaseHTTPRequestHandler):
    """An OpenMetrics page of SERIES histograms, each scrape a new exemplar on every one (a busy desk's)."""

    SERIES = 10_000
    first: ClassVar[list[str]] = []  # the first scrape's trace ids

    def do_GET(self) -> None:
        now = time.time()
        ids = [secrets.token_hex(16) for _ in range(self.SERIES)]
        if not self.first:
            self.first.extend(ids)
        lines = ["# TYPE tradeobs_dots histogram"]
        for i, trace_id in enumerate(ids):
            lines.append(f'tradeobs_dots_bucket{{i="{i}",le="+Inf"}} 1 # {{trace_id="{trace_id}"}} 1.0 {now:.3f}')
            lines.append(f'tradeobs_dots_count{{i="{i}"}} 1')
            lines.append(f'tradeobs_dots_sum{{i="{i}"}} 1')
        body = ("\n".join(lines) + "\n# EOF\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/openmetrics-text; version=1.0.0; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


@contextlib.contextmanager
def _dots() -> Iterator[tuple[str, list[str]]]:
    """The exemplar page on a free port -> (its host:port, the first scrape's trace ids once scraped)."""
    page = type("Page", (_ExemplarPage,), {"first": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), page)
    thread = threading.Thread(target=server.serve_forever, name="exemplar-page", daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", page.first
    finally:
        server.shutdown()
        server.server_close()


def _fast_config(file: str, target: str, port: int) -> str:
    """compose's ``file`` (compose/prometheus/) with its exporter job scraping ``target`` every second."""
    doc = yaml.safe_load((REPO / "compose" / "prometheus" / file).read_text())
    for job in doc["scrape_configs"]:
        if job["job_name"] == "otelcol-exporter":
            job["scrape_interval"] = "1s"
    config, _ = compose_prometheus_config({"otel-collector:8889": target}, "127.0.0.1:9", port, config=doc)
    return config


def _counter(url: str, name: str, at_least: float) -> float | None:
    """A counter of a /metrics page (summed over its series) once it reaches ``at_least``."""
    _, body = http_get(url)
    n = sum(float(v) for v in re.findall(rb"^" + name.encode() + rb"(?:\{[^}]*\})? (\S+)$", body, re.M))
    return n if n >= at_least else None


def _kept(url: str, first: list[str]) -> None:
    """Every one of the first scrape's dots is still answered by the exemplar API at ``url``."""
    q = urllib.parse.urlencode({"query": "tradeobs_dots_bucket", "start": time.time() - 600, "end": time.time()})
    status, body = http_get(f"{url}/api/v1/query_exemplars?{q}", timeout=60.0)
    assert status == 200, body[:500]
    kept = {e["labels"]["trace_id"] for s in json.loads(body)["data"] for e in s["exemplars"]}
    assert first and set(first) <= kept, f"{len(set(first) - kept)} of the first {len(first)} dots are gone"


def test_a_dot_outlives_150000_later_exemplars(tmp_path: Path) -> None:
    """Exemplars live in Prometheus's circular buffer, not in its TSDB: at the default size (100,000) the compose
    demo's dots lasted 3.7 h (7.5 exemplars/s), so the afternoon's were gone the morning after. Prometheus
    running compose's config (its exporter job scraped every second here, so the buffer fills in seconds)
    still answers the first scrape's exemplars after 150,000 more."""
    with _dots() as (target, first):
        port = free_port()
        with start_prometheus(tmp_path / "prometheus", _fast_config("prometheus.yml", target, port), port=port) as prom:
            wait_for(
                lambda: _counter(f"{prom.url}/metrics", "prometheus_tsdb_exemplar_exemplars_appended_total", 150_000),
                "150,000 exemplars appended",
                DATA_DEADLINE,
                interval=1.0,
                procs=(prom.proc,),
            )
            _kept(prom.url, first)


def test_the_stores_dots_outlive_30000_later_exemplars(tmp_path: Path) -> None:
    """The Thanos datasource (profile store) keeps metrics beyond one Prometheus; its dots are each receive
    node's exemplar ring (compose's --tsdb.max-exemplars), which at 10,000 held 22 minutes of the demo. Prometheus
    on compose's prometheus-store.yml remote-writes 30,000 exemplars to the two receive nodes; the query tier
    still answers the first scrape's."""
    with _dots() as (target, first), start_thanos(tmp_path / "thanos") as store:
        port = free_port()
        doc = _fast_config("prometheus-store.yml", target, port)
        config = yaml.safe_load(doc)
        (rw,) = config["remote_write"]
        rw["url"] = store.remote_write_url
        with start_prometheus(tmp_path / "prometheus", yaml.safe_dump(config, sort_keys=False), port=port) as prom:
            wait_for(
                lambda: _counter(f"{prom.url}/metrics", "prometheus_remote_storage_exemplars_total", 30_000),
                "30,000 exemplars written to the store",
                DATA_DEADLINE,
                interval=1.0,
                procs=(prom.proc, store.query),
            )
            _kept(store.query_url, first)
