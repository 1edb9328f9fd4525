"""Every Grafana panel shows the demo's data: the generated dashboards, evaluated against the real pipeline.

    tradeobs demo (orders flowing, agent exporting as in compose)
        --OTLP--> otelcol-tradeobs (collector/otel-collector.yaml)
                      --> Jaeger v2 with compose/jaeger/jaeger.yaml (Badger in tmp)
                      --> prometheus exporter <-- Debian Prometheus running compose/prometheus/prometheus.yml
                                                  (its jobs, intervals and rule files; targets moved to
                                                  the native processes) --> Alertmanager

Then every query of every panel of every dashboard in compose/grafana/dashboards is run as
Grafana would run it (tests/integration/grafana_eval.py: variables, $__interval, $__rate_interval,
$__range, instant/range, the Jaeger datasource's requests) and must return data, except the short
list below of panels that legitimately stay empty here, each with its reason. A query that returns
nothing is a bug in the dashboard or in the names the agent exports. Exemplars of the latency panels
must resolve, by the datasource's exemplar label, to traces in Jaeger.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from .agent_proc import start_demo, unique_service
from .grafana_eval import DATASOURCES, GRAFANA, Evaluator, NotOffered, Query, loki_match
from .procs import (
    COMPOSE_JAEGER_CONFIG,
    REPO,
    AlertmanagerProc,
    CollectorProc,
    JaegerProc,
    ManagedProcess,
    PrometheusProc,
    free_port,
    jaeger_trace,
    read_otlp_json_logs,
    span_tags,
    start_alertmanager,
    start_collector,
    start_jaeger,
    start_prometheus,
    wait_for,
)

pytestmark = pytest.mark.integration

PROMETHEUS_CONFIG = REPO / "compose" / "prometheus" / "prometheus.yml"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
# The agent's metric export interval in compose (the agent's default, compose sets none).
COMPOSE_EXPORT_INTERVAL = 10.0
# The demo runs in a service.namespace, as a desk's services may: the collector's prometheus exporter
# then names the job "<namespace>/<service.name>" while Jaeger and Loki know the service by its
# service.name, so a dashboard that used the job as Jaeger's service found no trace.
SERVICE_NAMESPACE = "desk"
# Failure deadline for every panel to show data (compose's scrape and rule intervals are 10-15 s
# and the 5m-window recording rules need two evaluations): bounds a broken test, measures nothing.
PANELS_DEADLINE = 300.0

# Panels that legitimately stay empty in this native run: (dashboard uid, panel title, refId) -> why.
LEGITIMATELY_EMPTY: dict[tuple[str, str, str], str] = {
    ("tradeobs-pipeline", "Last backup age", "A"): (
        "written by compose's backup container through node-exporter's textfile collector; neither runs "
        "natively (tests/compose/test_backup.py runs the backup scripts)"
    ),
    ("tradeobs-pipeline", "Loki discarded lines /s", "A"): "Loki runs only in compose (validated by config only here)",
    ("tradeobs-pipeline", "Sent / failed items /s (exporter)", "B"): (
        "the collector creates otelcol_exporter_send_failed_* at its first failed export; none fail here "
        "(test_pipeline.py's disk-queue test makes them fail)"
    ),
    ("tradeobs-pipeline", "Sent / failed items /s (exporter)", "C"): (
        "the collector creates otelcol_exporter_enqueue_failed_* when a sending queue is full; none fills here"
    ),
    ("tradeobs-trading", "P&L of crashed instances (held in the totals)", "A"): (
        "empty while no instance has crashed; a crashed worker's held P&L fills it in "
        "tests/compose/test_dashboards.py (promtool) and compose/prometheus/tests/crash_test.yml"
    ),
}
# The drill-down's order table searches each id an order may be reported by (compose/grafana/dashgen/order_drilldown.py,
# ORDER_ID_TAGS): given the client order id, the others find nothing.
_ORDER_TABLE = ("tradeobs-order", "Order $order_id: its trace (Jaeger search by the order's ids)")
LEGITIMATELY_EMPTY[(*_ORDER_TABLE, "B")] = (
    "the new client order id of a cancel/replace: the demo amends no order (test_broker_bot.py searches by it)"
)
LEGITIMATELY_EMPTY[(*_ORDER_TABLE, "C")] = (
    "the venue's order id: the order is given here by its client id (test_the_drilldown_finds_an_order_by_its_"
    "venues_order_id gives the venue's)"
)
# A latency panel's exemplar dots come from a target of its own: the raw buckets at an instant after any sample
# (`@ 4102444800`, 2100-01-01), which draws nothing by design (compose/grafana/dashgen/_common.py, exemplars());
# its exemplars are checked in test_latency_exemplars_open_traces_in_jaeger.
LEGITIMATELY_EMPTY.update(
    {
        (d["uid"], p["title"], t["refId"]): "exemplar dots only: draws nothing"
        for d in (json.loads(f.read_text()) for f in sorted((GRAFANA / "dashboards").glob("*.json")))
        for p in d["panels"]
        for t in p.get("targets", [])
        if t.get("expr", "").endswith("@ 4102444800")
    }
)
# Loki is not run here: its queries are checked by name (below), not for data.
NOT_RUN = {"loki": "Loki runs only in compose; its queries' labels are checked against the exported log records"}


@dataclass
class DashboardStack:
    jaeger: JaegerProc
    collector: CollectorProc
    prometheus: PrometheusProc
    alertmanager: AlertmanagerProc
    demo: ManagedProcess
    demo_url: str
    service: str
    dropped_jobs: list[str]

    @property
    def job(self) -> str:
        """The demo's Prometheus job (what the dashboards' job variable offers)."""
        return f"{SERVICE_NAMESPACE}/{self.service}"

    @property
    def procs(self) -> tuple[ManagedProcess, ...]:
        return (self.jaeger.proc, self.collector.proc, self.prometheus.proc, self.alertmanager.proc, self.demo)


def compose_prometheus_config(
    targets: dict[str, str], alertmanager: str, port: int, config: dict[str, Any] | None = None
) -> tuple[str, list[str]]:
    """compose/prometheus/prometheus.yml (or the parsed ``config``, a file beside it) with its targets
    moved to native processes -> (config, dropped jobs).

    Jobs, intervals, honor_labels, labels and rule files are compose's own; a job whose targets have
    no native process (Grafana, Loki, node-exporter, the gateways found by DNS) is dropped and reported.
    """
    doc = yaml.safe_load(PROMETHEUS_CONFIG.read_text()) if config is None else config
    native = {**targets, "localhost:9090": f"127.0.0.1:{port}"}
    doc["rule_files"] = [str(PROMETHEUS_CONFIG.parent / f) for f in doc["rule_files"]]
    doc["alerting"]["alertmanagers"] = [{"static_configs": [{"targets": [alertmanager]}]}]
    jobs, dropped = [], []
    for job in doc["scrape_configs"]:
        moved = [t for sc in job.get("static_configs", []) for t in sc["targets"] if t in native]
        if not moved:
            dropped.append(job["job_name"])
            continue
        for sc in job["static_configs"]:
            sc["targets"] = [native[t] for t in sc["targets"]]
        job.pop("dns_sd_configs", None)  # compose's tier gateways/agent by DNS: no native name
        jobs.append(job)
    doc["scrape_configs"] = jobs
    return yaml.safe_dump(doc, sort_keys=False), dropped


@contextlib.contextmanager
def compose_stack(
    tmp: Path, *, jaeger_metrics: bool = False
) -> Iterator[tuple[JaegerProc, CollectorProc, AlertmanagerProc, PrometheusProc, list[str]]]:
    """Compose's stack, natively: Jaeger on compose's config, our collector sending to it, Alertmanager, and Debian's
    Prometheus on compose's prometheus.yml with its targets moved to those processes (Jaeger's own metrics too with
    ``jaeger_metrics``) -> (jaeger, collector, alertmanager, prometheus, the jobs dropped for want of a process)."""
    with (
        start_jaeger(
            tmp / "jaeger", config=COMPOSE_JAEGER_CONFIG, extra_env={"JAEGER_BADGER_DIR": str(tmp / "badger")}
        ) as jaeger,
        start_collector(tmp / "collector", jaeger.otlp_grpc_endpoint) as collector,
        start_alertmanager(tmp / "alertmanager") as am,
    ):
        port = free_port()
        targets = {
            "otel-collector:8889": collector.prometheus_exporter_target,
            "otel-collector:8888": collector.metrics_target,
            **({"jaeger:8888": jaeger.metrics_target} if jaeger_metrics else {}),
            "alertmanager:9093": am.target,
        }
        config, dropped = compose_prometheus_config(targets, am.target, port)
        with start_prometheus(tmp / "prometheus", config, port=port) as prom:
            yield jaeger, collector, am, prom, dropped


def _post_order(base: str, **order: Any) -> dict[str, Any]:
    req = urllib.request.Request(
        f"{base}/api/orders",
        data=json.dumps(order).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 202
        return dict(json.loads(r.read()))


@pytest.fixture(scope="module")
def dstack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DashboardStack]:
    tmp = tmp_path_factory.mktemp("dashboards")
    service = unique_service("dash")
    with compose_stack(tmp, jaeger_metrics=True) as (jaeger, collector, am, prom, dropped):
        demo, base = start_demo(
            collector,
            tmp / "demo",
            service,
            orders_hz=5,
            symbols=4,
            export_interval=COMPOSE_EXPORT_INTERVAL,
            extra_env={"OTEL_RESOURCE_ATTRIBUTES": f"service.namespace={SERVICE_NAMESPACE}"},
        )
        try:
            stack = DashboardStack(jaeger, collector, prom, am, demo, base, service, dropped)
            # What every test here starts from: the dashboards' job variable offers the demo's job (its orders
            # are in Prometheus). It was the first test's wait (every panel's data) that made it so: a test run
            # on a stack no test had waited on (alone, or after that test failed early) read the variable before
            # the first scrape had the demo's orders and failed with "variable job offers []".
            wait_for(
                lambda: _offers_the_job(stack),
                f"the dashboards' job variable to offer {stack.job}",
                PANELS_DEADLINE,
                interval=1.0,
                procs=stack.procs,
            )
            yield stack
        finally:
            demo.stop()


def _offers_the_job(stack: DashboardStack) -> bool:
    """Every dashboard with a job variable offers the demo's job over its own time range ending now (raises
    :class:`NotOffered`, a ``ValueError``, while one does not)."""
    ev = Evaluator(stack.prometheus.url, stack.jaeger.query_url, DATASOURCES)
    for dash in (json.loads(p.read_text()) for p in DASHBOARDS):
        if any(v["name"] == "job" for v in dash["templating"].get("list", [])):
            ev.resolve_variables(dash, {"job": stack.job}, *ev.time_range(dash))
    return True


def test_the_native_prometheus_runs_composes_config(dstack: DashboardStack) -> None:
    """Only the jobs with no native process are dropped; the rules are compose's."""
    assert sorted(dstack.dropped_jobs) == ["grafana", "loki", "node"]
    text = dstack.prometheus.config_file.read_text()
    assert "honor_labels: true" in text and "rules/*.yml" in text


def test_every_panel_of_every_dashboard_shows_the_demos_data(dstack: DashboardStack) -> None:
    # One order the drill-down follows, and one the risk limits reject (max order qty 1,000).
    order = _post_order(dstack.demo_url, symbol="AAPL", side="buy", qty=10)
    _post_order(dstack.demo_url, symbol="MSFT", side="sell", qty=5000)
    ev = Evaluator(dstack.prometheus.url, dstack.jaeger.query_url, DATASOURCES)
    choose: dict[str, dict[str, Any]] = {
        "tradeobs-trading": {"job": dstack.job},
        "tradeobs-order": {
            "job": dstack.job,
            "symbol": "AAPL",
            "order_id": order["order_id"],
            "trace_id": order["order_trace_id"],
        },
        "tradeobs-pipeline": {},
    }
    dashboards = [json.loads(p.read_text()) for p in DASHBOARDS]
    assert {d["uid"] for d in dashboards} == set(choose)

    def problems() -> tuple[list[str], list[Query]]:
        """-> (what is still empty, every query); a variable not offering its value is a problem too."""
        now = time.time()
        empty: list[str] = []
        queries: list[Query] = []
        for dash in dashboards:
            start, end = ev.time_range(dash, now)
            try:
                variables = ev.resolve_variables(dash, choose[dash["uid"]], start, end)
            except NotOffered as e:
                empty.append(str(e))
                continue
            for q in ev.queries(dash, variables, start, end):
                queries.append(q)
                if q.kind not in NOT_RUN and q.key not in LEGITIMATELY_EMPTY and not ev.run(q):
                    empty.append(q.describe())
        return empty, queries

    deadline = time.monotonic() + PANELS_DEADLINE
    while True:
        for p in dstack.procs:
            p.check_alive()
        empty, queries = problems()
        if not empty:
            break
        if time.monotonic() > deadline:
            pytest.fail(
                f"after {PANELS_DEADLINE:.0f}s these panel queries still return nothing:\n  " + "\n  ".join(empty),
                pytrace=False,
            )
        time.sleep(5)
    run = [q for q in queries if q.kind not in NOT_RUN]
    print(
        f"\ndashboards: {len(queries)} queries in {len(dashboards)} dashboards; {len(run)} run "
        f"({sum(q.kind == 'prometheus' for q in run)} Prometheus, {sum(q.kind == 'jaeger' for q in run)} Jaeger), "
        f"{len(run) - len(LEGITIMATELY_EMPTY)} with data, {len(LEGITIMATELY_EMPTY)} legitimately empty, "
        f"{len(queries) - len(run)} Loki checked by name"
    )
    # the allow-list names real panels (a renamed panel must not silently leave it stale)
    assert set(LEGITIMATELY_EMPTY) <= {q.key for q in queries}, set(LEGITIMATELY_EMPTY) - {q.key for q in queries}

    # The kill-switch panels show the demo's state, "off", not "no data".
    kill = [q for q in queries if "kill_switch" in q.target.get("expr", "")]
    assert len(kill) == 2
    for q in kill:
        values = {float(v) for s in ev.run(q) for _, v in s.get("values", [s.get("value", [0, "nan"])])}
        assert values == {0.0}, (q.describe(), values)

    # The drill-down found exactly the order it was given.
    drill = {q.key: q for q in queries if q.dashboard == "tradeobs-order" and q.kind == "jaeger"}
    (by_id,) = [q for q in drill.values() if q.target.get("tags", "").startswith("order.id=")]
    assert [t["traceID"] for t in ev.run(by_id)] == [order["order_trace_id"]]
    (trace,) = ev.run(next(q for q in drill.values() if "query" in q.target))
    assert {"order", "risk_check", "submit", "ack", "fill"} <= {s["operationName"] for s in trace["spans"]}


def test_the_drilldown_finds_an_order_by_its_venues_order_id(dstack: DashboardStack) -> None:
    """A trader with a broker's report (FIX OrderID, the venue's order id, not the client order id) types it in the
    drill-down's Order id: its order table finds exactly that order's trace, as it does by the client order id, and
    its log panels that order's lines."""

    def ended(order: dict[str, Any]) -> tuple[str] | None:
        """(the order's venue id, "" when it ended without one), once its trace's root is in Jaeger."""
        trace = jaeger_trace(dstack.jaeger.query_url, order["order_trace_id"])
        roots = [s for s in (trace or {}).get("spans", []) if s["operationName"] == "order"]
        if not roots:
            return None
        tags = span_tags(roots[0])
        done = "order.reject_reason" not in tags and "order.cancel_reason" not in tags
        return (str(tags.get("order.venue_order_id") or "") if done else "",)

    # The demo's risk check and venue reject some orders at random (a full run's order was rejected, and the test
    # waited for a venue id that never came): the first order of up to 10 that the venue acknowledged and filled.
    for _ in range(10):
        order = _post_order(dstack.demo_url, symbol="AAPL", side="buy", qty=10)
        (vid,) = wait_for(
            lambda order=order: ended(order), f"order {order['order_id']}'s end in Jaeger", procs=dstack.procs
        )
        if vid:
            break
    else:
        pytest.fail("10 orders in a row ended without the venue's order id")
    trace_id = order["order_trace_id"]
    ev = Evaluator(dstack.prometheus.url, dstack.jaeger.query_url, DATASOURCES)
    dash = json.loads((GRAFANA / "dashboards" / "order-drilldown.json").read_text())
    start, end = ev.time_range(dash)
    for typed in (vid, order["order_id"]):
        variables = ev.resolve_variables(dash, {"job": dstack.job, "order_id": typed}, start, end)
        queries = ev.queries(dash, variables, start, end)
        # the table that searches by the client order id, all its targets (the rows Grafana shows, merged)
        (panel,) = {q.panel for q in queries if q.target.get("tags", "").startswith("order.id=")}
        table = [q for q in queries if q.panel == panel]
        assert [t["traceID"] for q in table for t in ev.run(q)] == [trace_id], (typed, [q.describe() for q in table])
        # and its log panels, run on what the collector sends to Loki, show the order's lines: by the venue's id, from
        # the ack on (the fills); they stayed empty for it until the trace id was clicked
        for q in (q for q in queries if q.kind == "loki"):

            def lines(q: Query = q) -> list[dict[str, Any]] | None:
                found = [r for r in read_otlp_json_logs(dstack.collector.logs_file) if loki_match(q.target["expr"], r)]
                fills = [r for r in found if r["body"].get("stringValue", "").startswith(f"order {order['order_id']} ")]
                return found if fills else None

            found = wait_for(lines, f"the order's fill lines: {q.describe()}", procs=(dstack.demo,))
            assert {r["_attributes"].get("order_id") for r in found} == {order["order_id"]}, q.describe()
            assert {r["traceId"] for r in found} == {trace_id}, q.describe()


def test_latency_exemplars_open_traces_in_jaeger(dstack: DashboardStack) -> None:
    """The dots on the latency panels: their label is the one the Prometheus datasource sends to its
    exemplar destination (Jaeger), and that trace-id query finds the order's trace and measured span. Every
    dot of every panel has the labels its "Order drill-down" link reads (a label the dot lacks would be an
    empty variable in the drill-down: Grafana puts "" for a missing ``${__data.fields.<name>}``)."""
    dests = next(d for d in DATASOURCES if d["uid"] == "prometheus")["jsonData"]["exemplarTraceIdDestinations"]
    (dest,) = [d for d in dests if "datasourceUid" in d]
    (drill,) = [d for d in dests if "url" in d]
    link_fields = set(re.findall(r"\$\{__data\.fields\.(\w+)\}", drill["url"]))
    assert link_fields >= {"job", "symbol", "venue", "strategy"}, drill["url"]
    ev = Evaluator(dstack.prometheus.url, dstack.jaeger.query_url, DATASOURCES)
    checked = 0
    for dash in (json.loads(p.read_text()) for p in DASHBOARDS):
        has_job = any(v["name"] == "job" for v in dash["templating"].get("list", []))

        def dotted(dash: dict[str, Any] = dash, has_job: bool = has_job) -> list[Query]:
            """The dashboard's exemplar targets as Grafana runs them now: the variables resolved again each time (the
            slippage panels' symbols are a query_result variable, the 10 of highest p95 over the range: none until
            the demo's first slippages are scraped twice, and "()" selects no dot)."""
            start, end = ev.time_range(dash)
            variables = ev.resolve_variables(dash, {"job": dstack.job} if has_job else {}, start, end)
            return [q for q in ev.queries(dash, variables, start, end) if q.exemplar]

        for key in [q.key for q in dotted()]:

            def dots(key: tuple[str, str, str] = key) -> tuple[Query, list[dict[str, Any]]] | None:
                (q,) = [q for q in dotted() if q.key == key]
                exemplars = ev.exemplars(q)
                return (q, exemplars) if exemplars else None

            q, exemplars = wait_for(dots, f"exemplars of {key}", PANELS_DEADLINE, interval=2.0, procs=(dstack.demo,))
            trace_ids = {e["labels"][dest["name"]] for e in exemplars}
            for row in ev.exemplar_rows(q):
                assert link_fields <= set(row), (q.describe(), link_fields - set(row), row)
            trace_id = sorted(trace_ids)[0]
            trace = wait_for(lambda t=trace_id: jaeger_trace(dstack.jaeger.query_url, t), f"trace {trace_id}")
            assert any(s["operationName"] == "order" for s in trace["spans"]), (q.describe(), trace_id)
            checked += 1
    assert checked >= 8


def test_log_queries_use_the_names_the_logs_carry(dstack: DashboardStack) -> None:
    """Loki is not run here, so its queries are checked by name: every label and filter key they use
    exists on the demo's exported log records, as Loki's OTLP ingestion names them (resource
    service.name -> service_name index label; record attributes -> structured metadata, dots -> _)."""

    def records(order_id: str) -> tuple[bool, list[dict[str, Any]]] | None:
        """(True, the service's records) once the order's strategy and execution lines are in (the fill's come a
        little later); (False, ...) once its risk line is: rejected by the demo's risk check, it has no other."""
        recs = [
            r
            for r in read_otlp_json_logs(dstack.collector.logs_file)
            if r["_resource"].get("service.name") == dstack.service
        ]
        streams = {r["_attributes"].get("stream") for r in recs if r["_attributes"].get("order_id") == order_id}
        if streams >= {"strategy", "execution"}:
            return True, recs
        return (False, recs) if "risk" in streams else None

    # The demo's risk check rejects some orders (its kill switch after a 20 % drawdown, for 30 s; a limit in use),
    # and such an order logs one line, on the risk stream: the first order that the risk check let through, posted
    # one after another for as long as a kill switch's cooldown (a venue reject logs on both streams too).
    deadline = time.monotonic() + 60
    while True:
        order = _post_order(dstack.demo_url, symbol="AAPL", side="buy", qty=10)
        passed, recs = wait_for(
            lambda order=order: records(order["order_id"]),
            f"the demo's log records for order {order['order_id']} (strategy and execution, or risk)",
            procs=(dstack.demo,),
        )
        if passed:
            break
        assert time.monotonic() < deadline, "the demo's risk check rejected every order for 60 s"
    # the new client order id of a cancel/replace: the demo amends no order (test_broker_bot.py runs these queries on
    # the lines of an amended order)
    names: set[str] = {"new_order_id"}
    for r in recs:
        names |= {k.replace(".", "_") for k in r["_resource"]} | {k.replace(".", "_") for k in r["_attributes"]}
        if r.get("traceId"):
            names.add("trace_id")
    exprs = [
        t["expr"]
        for p in DASHBOARDS
        for panel in json.loads(p.read_text())["panels"]
        for t in panel.get("targets", [])
        if panel.get("datasource", {}).get("type") == "loki"
    ]
    exprs.append(next(d for d in DATASOURCES if d["uid"] == "jaeger")["jsonData"]["tracesToLogsV2"]["query"])
    assert len(exprs) >= 4
    for expr in exprs:
        used = set(re.findall(r"(\w+)\s*(?:=~|!=|=)", expr))
        assert used <= names, f"{expr}: {used - names} not on the exported records ({sorted(names)})"
    # and the drill-down's filters select this order's records: its strategy and execution streams
    mine = [r for r in recs if r["_attributes"].get("order_id") == order["order_id"]]
    assert {r["_attributes"].get("stream") for r in mine} >= {"strategy", "execution"}
