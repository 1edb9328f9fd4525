"""Metrics beyond one Prometheus: Prometheus remote-writes to Thanos (2 receive nodes, replication factor 2).

    tradeobs demo --OTLP--> otelcol-tradeobs --scrape--> Debian Prometheus running compose's config
                                                         (compose/prometheus/prometheus-store.yml: its
                                                         jobs, intervals, rules and remote_write)
                                                              --remote_write--> thanos receive x2
                                                                                  <-- thanos query

1. Every Prometheus query of every dashboard (compose/grafana/dashgen, enumerated as
   tests/integration/test_dashboards.py does) returns on the query tier what it returns on
   Prometheus for the same range: the same series (the labels the store adds aside), the same
   values at every step (up to float rounding), except at steps whose rate() window holds the
   first samples of a series: the query tier's PromQL engine (Prometheus 3 code inside Thanos)
   extrapolates those differently from Debian's Prometheus 2.42, from the same raw samples.
   The query tier merges the replicas 1:1 (``--deduplication.func=chain``); with the default
   penalty algorithm even later steps differed (thanos.py).
2. The trading series at the same instants: equal.
3. One storage node stopped: queries still answer, complete (the other node holds a replica of
   everything), with a warning naming the node that is gone. Writes go on: for a replication
   factor of 2 Thanos (v0.42) needs one node's acknowledgement (its documented write quorum is
   rf/2+1, except rf=2: 1), so Prometheus fails and retries nothing. The stopped node misses the
   outage (receive has no hand-off): the store reports that gap per replica (``dedup=false``
   shows replica 1 without a sample in the window, replica 0 with them), and the deduplicated
   answer over the window equals Prometheus's own once the node is back.
"""

from __future__ import annotations

import json
import math
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from .agent_proc import start_demo, unique_service
from .grafana_eval import Evaluator, NotOffered, Query
from .procs import (
    COMPOSE_JAEGER_CONFIG,
    REPO,
    AlertmanagerProc,
    CollectorProc,
    ManagedProcess,
    PrometheusProc,
    free_port,
    http_get,
    prometheus_query,
    start_alertmanager,
    start_collector,
    start_jaeger,
    start_prometheus,
    wait_for,
)
from .test_dashboards import (
    COMPOSE_EXPORT_INTERVAL,
    DASHBOARDS,
    DATASOURCES,
    LEGITIMATELY_EMPTY,
    PANELS_DEADLINE,
    _post_order,
    compose_prometheus_config,
)
from .thanos import REPLICA_LABEL, TENANT_LABEL, ThanosStore, start_thanos

pytestmark = pytest.mark.integration

STORE_CONFIG = REPO / "compose" / "prometheus" / "prometheus-store.yml"


@dataclass
class StoreStack:
    collector: CollectorProc
    prometheus: PrometheusProc
    alertmanager: AlertmanagerProc
    store: ThanosStore
    demo: ManagedProcess
    demo_url: str
    service: str
    added_labels: set[str]
    demo_ready: float  # the demo's series start within ~20 s after this (export 10 s, scrape 10 s)

    @property
    def procs(self) -> tuple[ManagedProcess, ...]:
        return (self.collector.proc, self.prometheus.proc, self.store.query, self.demo)


def store_prometheus_config(targets: dict[str, str], alertmanager: str, port: int, remote_write_url: str) -> str:
    """compose/prometheus/prometheus-store.yml with its targets moved to native processes (as
    test_dashboards does for prometheus.yml) and its remote_write URL pointed at the native store."""
    doc = yaml.safe_load(STORE_CONFIG.read_text())
    (rw,) = doc["remote_write"]
    rw["url"] = remote_write_url
    text, _dropped = compose_prometheus_config(targets, alertmanager, port, config=doc)
    return text


@pytest.fixture(scope="module")
def sstack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreStack]:
    tmp = tmp_path_factory.mktemp("store")
    service = unique_service("store")
    with (
        start_jaeger(
            tmp / "jaeger", config=COMPOSE_JAEGER_CONFIG, extra_env={"JAEGER_BADGER_DIR": str(tmp / "badger")}
        ) as jaeger,
        start_collector(tmp / "collector", jaeger.otlp_grpc_endpoint) as collector,
        start_alertmanager(tmp / "alertmanager") as am,
        start_thanos(tmp / "thanos") as store,
    ):
        port = free_port()
        config = store_prometheus_config(
            {
                "otel-collector:8889": collector.prometheus_exporter_target,
                "otel-collector:8888": collector.metrics_target,
                "jaeger:8888": jaeger.metrics_target,
                "alertmanager:9093": am.target,
            },
            am.target,
            port,
            store.remote_write_url,
        )
        external = set(yaml.safe_load(config)["global"].get("external_labels", {}))
        # The store first, as an operator adds it: Prometheus starts scraping only itself and the
        # services once both receive nodes hold a sample (each creates its tenant's TSDB at the first
        # write; with a write quorum of 1, a node still doing that would miss the first samples).
        warmup = yaml.safe_load(config)
        warmup["scrape_configs"] = [j for j in warmup["scrape_configs"] if j["job_name"] == "prometheus"]
        with start_prometheus(tmp / "prometheus", yaml.safe_dump(warmup, sort_keys=False), port=port) as prom:
            wait_for(
                lambda: len(_replicas(store.query_url, 'up{job="prometheus"}')) == len(store.nodes),
                "a sample on every receive node",
                procs=(prom.proc, store.query),
            )
            prom.config_file.write_text(config)
            status, body = http_post(f"{prom.url}/-/reload")
            assert status == 200, body
            demo, base = start_demo(
                collector, tmp / "demo", service, orders_hz=5, symbols=4, export_interval=COMPOSE_EXPORT_INTERVAL
            )
            demo_ready = time.time()
            try:
                yield StoreStack(collector, prom, am, store, demo, base, service, external | {TENANT_LABEL}, demo_ready)
            finally:
                demo.stop()


def _replicas(url: str, promql: str) -> set[str]:
    """The receive replicas holding series of ``promql`` (the query tier without deduplication)."""
    q = urllib.parse.urlencode({"query": promql, "dedup": "false"})
    status, body = http_get(f"{url}/api/v1/query?{q}")
    data = json.loads(body)
    assert status == 200 and data["status"] == "success", (status, body[:500])
    return {s["metric"][REPLICA_LABEL] for s in data["data"]["result"]}


def http_post(url: str) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=b"", method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _sent_until(prometheus_url: str) -> float:
    """Timestamp of the newest sample the store acknowledged (Prometheus's own remote-write metric; 0 before
    the first)."""
    found = prometheus_query(prometheus_url, "prometheus_remote_storage_queue_highest_sent_timestamp_seconds")
    return max((float(s["value"][1]) for s in found), default=0.0)


_DURATION = re.compile(r"\[((?:\d+(?:ms|s|m|h|d))+)\]")
_UNIT = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _longest_window(expr: str) -> float:
    """The longest range selector of a PromQL expression, in seconds (e.g. [2m15s] -> 135)."""
    return max(
        (sum(int(n) * _UNIT[u] for n, u in re.findall(r"(\d+)(ms|s|m|h|d)", d)) for d in _DURATION.findall(expr)),
        default=0.0,
    )


def _differing_steps(mine: list[dict[str, Any]], theirs: list[dict[str, Any]], drop: set[str]) -> list[float]:
    """Steps whose values differ beyond the last bits of a float (the query tier sums the nodes'
    answers in another order; float addition is not associative: 4.860000000000001 vs 4.86).
    Call only when both have the same series."""
    a, b = _normalize(mine, set()), _normalize(theirs, drop)
    steps: list[float] = []
    for key in a:
        pa = a[key] if isinstance(a[key][0], list) else [a[key]]
        pb = dict((t, v) for t, v in (b[key] if isinstance(b[key][0], list) else [b[key]]))
        steps += [t for t, v in pa if t not in pb or not _close(float(v), float(pb[t]))]
        steps += [t for t in pb if t not in {t for t, _ in pa}]
    return sorted(set(steps))


def _close(x: float, y: float) -> bool:
    return (math.isnan(x) and math.isnan(y)) or math.isclose(x, y, rel_tol=1e-12, abs_tol=1e-15)


def _normalize(series: list[dict[str, Any]], drop: set[str]) -> dict[str, Any]:
    """{labels without the store's own: values} of a query result (instant: [t, v]; range: [[t, v], ...])."""
    out: dict[str, Any] = {}
    for s in series:
        key = json.dumps({k: v for k, v in s["metric"].items() if k not in drop}, sort_keys=True)
        assert key not in out, f"two series differ only in the store's labels: {key}"
        out[key] = s.get("values", s.get("value"))
    return out


def _query(url: str, promql: str, at: float) -> tuple[list[dict[str, Any]], list[str]]:
    """Instant query -> (result, warnings)."""
    status, body = http_get(f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": promql, "time": at}))
    data = json.loads(body)
    assert status == 200 and data["status"] == "success", (promql, status, body[:500])
    return data["data"]["result"], list(data.get("warnings") or [])


def _at(q: Query, end: float) -> Query:
    """The same query over the same length of range, ending at ``end``."""
    return Query(
        q.dashboard, q.panel, q.ref, q.kind, q.target, q.instant, end - (q.end - q.start), end, q.step, q.exemplar
    )


def _dashboard_queries(ev: Evaluator, choose: dict[str, dict[str, Any]], now: float) -> tuple[list[Query], list[str]]:
    """Every Prometheus query of every dashboard -> (queries, problems: variables not offering a value)."""
    queries: list[Query] = []
    problems: list[str] = []
    for dash in (json.loads(p.read_text()) for p in DASHBOARDS):
        start, end = ev.time_range(dash, now)
        try:
            variables = ev.resolve_variables(dash, choose[dash["uid"]], start, end)
        except NotOffered as e:
            problems.append(str(e))
            continue
        queries += [q for q in ev.queries(dash, variables, start, end) if q.kind == "prometheus"]
    return queries, problems


def test_every_dashboard_query_answers_on_the_store_as_on_prometheus(sstack: StoreStack) -> None:
    order = _post_order(sstack.demo_url, symbol="AAPL", side="buy", qty=10)
    _post_order(sstack.demo_url, symbol="MSFT", side="sell", qty=5000)  # rejected by the risk limits
    on_prom = Evaluator(sstack.prometheus.url, "http://127.0.0.1:1", DATASOURCES)
    on_store = Evaluator(sstack.store.query_url, "http://127.0.0.1:1", DATASOURCES)
    choose: dict[str, dict[str, Any]] = {
        "tradeobs-trading": {"job": sstack.service},
        "tradeobs-order": {
            "job": sstack.service,
            "symbol": "AAPL",
            "order_id": order["order_id"],
            "trace_id": order["order_trace_id"],
        },
        "tradeobs-pipeline": {},
    }

    def empty_on_store() -> list[str]:
        sent = _sent_until(sstack.prometheus.url)
        if not sent:
            return ["no sample written to the store yet"]
        queries, problems = _dashboard_queries(on_store, choose, sent)
        return problems + [q.describe() for q in queries if q.key not in LEGITIMATELY_EMPTY and not on_store.run(q)]

    deadline = time.monotonic() + PANELS_DEADLINE
    while empty := empty_on_store():
        for p in sstack.procs:
            p.check_alive()
        if time.monotonic() > deadline:
            pytest.fail(f"after {PANELS_DEADLINE:.0f}s these return nothing on the store:\n  " + "\n  ".join(empty))
        time.sleep(5)

    # The same queries, the same range, ending where the store has every sample: the same answers.
    end = _sent_until(sstack.prometheus.url)
    queries, problems = _dashboard_queries(on_prom, choose, end)
    assert not problems, problems
    missing, differ, at_start = [], [], []
    with_data = 0
    for q in queries:
        mine, theirs = on_prom.run(_at(q, end)), on_store.run(_at(q, end))
        with_data += bool(mine)
        if set(_normalize(mine, set())) != set(_normalize(theirs, sstack.added_labels)):
            missing.append(f"{q.describe()}\n    prometheus: {mine[:3]}\n    store:      {theirs[:3]}")
            continue
        steps = _differing_steps(mine, theirs, sstack.added_labels)
        # The query tier evaluates PromQL with Thanos' engine (Prometheus 3 code), Prometheus here is
        # Debian's 2.42: rate()/increase() over a window that holds a series' FIRST samples are
        # extrapolated differently (the raw samples are equal: the next test). Such steps only.
        window = _longest_window(q.target.get("expr", ""))
        late = [t for t in steps if t - window > sstack.demo_ready + 30]
        if late:
            differ.append(f"{q.describe()}: steps {late}\n    prometheus: {mine[:3]}\n    store:      {theirs[:3]}")
        elif steps:
            at_start.append(q)
    print(
        f"\nstore: {len(queries)} dashboard queries, {with_data} with data on Prometheus, the same series on "
        f"the store for {len(queries) - len(missing)}, the same values at every step for "
        f"{len(queries) - len(missing) - len(differ) - len(at_start)}, differing only at steps whose window "
        f"holds the first samples of the series for {len(at_start)}"
    )
    assert not missing, "\n".join(missing)
    assert not differ, "\n".join(differ)


def test_trading_series_equal_prometheus_at_the_same_instants(sstack: StoreStack) -> None:
    selector = f'{{__name__=~"trading_.+", job="{sstack.service}"}}'
    wait_for(lambda: prometheus_query(sstack.prometheus.url, selector), "the demo's trading series", procs=sstack.procs)
    # the earliest instant compared (end - 60) after the demo's first export and scrape (~20 s)
    end = wait_for(
        lambda: (
            (t := _sent_until(sstack.prometheus.url)) > sstack.demo_ready + 90
            and _query(sstack.store.query_url, selector, t)[0]
            and t
        ),
        "the trading series on the store, 90 s after the demo started",
        timeout=240,
        procs=sstack.procs,
    )
    for at in (end, end - 15, end - 30, end - 60):
        mine, _ = _query(sstack.prometheus.url, selector, at)
        theirs, warnings = _query(sstack.store.query_url, selector, at)
        assert not warnings, warnings
        assert mine, f"no trading series on Prometheus at {at}"
        assert _normalize(mine, set()) == _normalize(theirs, sstack.added_labels), at
    # ...and every raw sample of the last 5 minutes: the same timestamps, the same values.
    raw_mine, _ = _query(sstack.prometheus.url, f"{selector}[5m]", end)
    raw_theirs, _ = _query(sstack.store.query_url, f"{selector}[5m]", end)
    assert _normalize(raw_mine, set()) == _normalize(raw_theirs, sstack.added_labels)
    samples = sum(len(s["values"]) for s in raw_mine)
    print(f"\nstore: {len(mine)} trading series equal at 4 instants; {samples} raw samples of 5 minutes equal")


def _range(url: str, promql: str, start: float, end: float, step: float) -> dict[str, Any]:
    q = urllib.parse.urlencode({"query": promql, "start": start, "end": end, "step": step})
    status, body = http_get(f"{url}/api/v1/query_range?{q}")
    data = json.loads(body)
    assert status == 200 and data["status"] == "success", (promql, status, body[:500])
    return data


def _samples_per_replica(url: str, selector: str, start: float, end: float) -> dict[str, int]:
    """{receive_replica: raw samples with start < t <= end} as the store holds them (no deduplication)."""
    window = f"{int((end - start) * 1000)}ms"
    q = urllib.parse.urlencode({"query": f"{selector}[{window}]", "time": f"{end:.3f}", "dedup": "false"})
    status, body = http_get(f"{url}/api/v1/query?{q}")
    data = json.loads(body)
    assert status == 200 and data["status"] == "success", (status, body[:500])
    out: dict[str, int] = {}
    for s in data["data"]["result"]:
        replica = s["metric"][REPLICA_LABEL]
        out[replica] = out.get(replica, 0) + len(s["values"])
    return out


def _counter(prometheus_url: str, name: str) -> float:
    return float(prometheus_query(prometheus_url, f"sum({name}) or vector(0)")[0]["value"][1])


def test_one_storage_node_stopped_queries_answer_and_the_store_reports_its_gap(sstack: StoreStack) -> None:
    prom, store = sstack.prometheus.url, sstack.store
    selector = f'{{__name__=~"trading_orders.+", job="{sstack.service}"}}'
    before = wait_for(
        lambda: (t := _sent_until(prom)) and _query(store.query_url, selector, t)[0] and t,
        "trading series on the store",
        procs=sstack.procs,
    )
    failed_before = _counter(prom, "prometheus_remote_storage_samples_failed_total")
    retried_before = _counter(prom, "prometheus_remote_storage_samples_retried_total")
    node = store.nodes[1]
    node.stop()
    stopped_at = time.time()
    try:
        # Queries: complete from the other node's replica, with a warning naming the one gone.
        mine, _ = _query(prom, selector, before)
        theirs, warnings = _query(store.query_url, selector, before)
        assert _normalize(mine, set()) == _normalize(theirs, sstack.added_labels)
        assert any(node.grpc in w for w in warnings), warnings
        # Writes: acknowledged by the remaining node (write quorum 1 for a factor of 2).
        acked = wait_for(
            lambda: (t := _sent_until(prom)) > stopped_at + 30 and t,
            "the store to acknowledge 30 s of writes with one node",
            timeout=120,
            procs=(sstack.prometheus.proc, store.query, store.nodes[0].proc),  # type: ignore[arg-type]
        )
    finally:
        if node.proc is None:
            store.restart(node)
    back_at = time.time()
    caught_up = wait_for(
        lambda: (t := _sent_until(prom)) > back_at + 15 and t,
        "writes after the node came back",
        timeout=120,
        procs=sstack.procs,
    )
    failed = _counter(prom, "prometheus_remote_storage_samples_failed_total") - failed_before
    retried = _counter(prom, "prometheus_remote_storage_samples_retried_total") - retried_before
    assert failed == 0

    # The gap, per replica: node 1 holds nothing from its stop until what was acknowledged without it.
    window = (stopped_at, acked - 15)
    per_replica = wait_for(
        lambda: (r := _samples_per_replica(store.query_url, selector, *window)) and "0" in r and r,
        "the outage window per replica",
        procs=sstack.procs,
    )
    assert per_replica.get("1", 0) == 0 and per_replica["0"] > 0, per_replica
    # ...and the deduplicated answer over the window (and after) is Prometheus's own.
    start, end, step = stopped_at - 30, math.floor(caught_up), 15.0
    mine = _range(prom, selector, start, end, step)
    theirs = wait_for(
        lambda: (r := _range(store.query_url, selector, start, end, step)) and not r.get("warnings") and r,
        "a range query without warnings (the query node re-discovers the node every 5 s)",
        procs=sstack.procs,
    )
    assert _normalize(mine["data"]["result"], set()) == _normalize(theirs["data"]["result"], sstack.added_labels)
    print(
        f"\nstore node down {back_at - stopped_at:.0f}s: writes acknowledged up to {acked - stopped_at:.0f}s into "
        f"the outage, {failed:.0f} samples failed, {retried:.0f} retried; replica samples in the window "
        f"{per_replica}; deduplicated range over the outage equals Prometheus's"
    )
