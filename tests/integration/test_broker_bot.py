"""Orders of a bot not shaped like the demo, in the real trace store (tests/integration/broker_bot.py).

    broker_bot.py --OTLP/gRPC--> otelcol-tradeobs (collector/otel-collector.yaml) --> Jaeger v2
                                                                                  --> file/logs (Loki's stand-in)

Its orders are placed from several asyncio tasks at once; acks and fills come on the broker SDK's socket thread
(and one ack from another task). Each order must be one trace in Jaeger with every step a child of its root
span, nothing of another order in it, and every root span ended (an order still open at shutdown too); the log
lines the broker thread writes inside an order carry that order's trace and root span.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from .agent_proc import agent_env, unique_service
from .grafana_eval import DATASOURCES, GRAFANA, Evaluator, Query, Variable, loki_match
from .procs import (
    REPO,
    CollectorProc,
    JaegerProc,
    _clean_env,
    jaeger_search,
    jaeger_trace,
    read_otlp_json_logs,
    span_tags,
    wait_for,
)

pytestmark = pytest.mark.integration
BOT = Path(__file__).resolve().parent / "broker_bot.py"


def _run_bot(collector: CollectorProc, tmp_path: Path, service: str) -> dict[str, str]:
    env = {**_clean_env(), **agent_env(collector, tmp_path, service)}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "agent"), str(REPO)])
    done = subprocess.run(
        [sys.executable, str(BOT)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    ids: dict[str, str] = json.loads(done.stdout.strip().splitlines()[-1])
    return ids


def _exporter_page(collector: CollectorProc) -> str:
    req = urllib.request.Request(
        f"{collector.prometheus_exporter_url}/metrics", headers={"Accept": "application/openmetrics-text"}
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return str(r.read().decode())


def _fills(trace: dict[str, Any]) -> list[tuple[float, float]]:
    spans = sorted((s for s in trace["spans"] if s["operationName"] == "fill"), key=lambda s: s["startTime"])
    return [(float(span_tags(s)["fill.qty"]), float(span_tags(s)["fill.price"])) for s in spans]


def _steps(trace: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted((s["operationName"], s["spanID"]) for s in trace["spans"])


def test_each_order_of_a_threaded_asyncio_bot_is_one_whole_trace(
    collector: CollectorProc, jaeger: JaegerProc, tmp_path: Path
) -> None:
    service = unique_service("bot")
    ids = _run_bot(collector, tmp_path, service)
    assert len(set(ids.values())) == len(ids) and all(ids.values()), ids
    expected = {  # the steps each order's trace holds, and how its root span ended
        "partial": (["ack", "fill", "fill", "risk_check", "submit"], "filled"),
        "cxl-race": (["ack", "fill", "risk_check", "submit"], "cancelled"),
        "venue-rej": (["risk_check", "submit"], "rejected"),
        "dup": (["ack", "fill", "fill", "risk_check", "submit"], "filled"),
        "4242": (["ack", "fill", "fill", "risk_check", "submit"], "filled"),
        "amend": (["ack", "fill", "fill", "replace", "risk_check", "submit"], "filled"),
        "over": (["ack", "fill", "risk_check", "submit"], "filled"),
        "bad": (["ack", "fill", "risk_check", "submit"], "filled"),
        "task-ack": (["ack", "fill", "risk_check", "submit"], "filled"),
        "no-ack": (["risk_check", "submit"], "closed"),
        # acked at every status, once counted; the second order 7 (ids numbered again) without the first's replay
        "7-first": (["ack", "fill", "risk_check", "submit"], "filled"),
        "7": (["ack", "fill", "risk_check", "submit"], "filled"),
        # the previous run's order, resumed: its fill after the restart, not the replay of the one before
        "before-restart": (["fill", "resume"], "filled"),
    }
    traces: dict[str, dict[str, Any]] = {}
    for cid, (steps, outcome) in expected.items():
        trace_id = ids[cid]

        def whole(trace_id: str = trace_id, n: int = len(steps) + 1) -> dict[str, Any] | None:
            t = jaeger_trace(jaeger.query_url, trace_id)
            return t if t is not None and len(t["spans"]) >= n else None

        trace = wait_for(whole, f"order {cid}'s trace {trace_id} in Jaeger", procs=(collector.proc, jaeger.proc))
        [root] = [s for s in trace["spans"] if s["operationName"] == "order"]
        tags = span_tags(root)
        assert (tags["order.id"], tags.get("order.outcome")) == (cid.removesuffix("-first"), outcome), (cid, tags)
        children = [s for s in trace["spans"] if s is not root]
        assert sorted(s["operationName"] for s in children) == steps, (cid, _steps(trace))
        for s in children:
            assert [(r["refType"], r["spanID"]) for r in s["references"]] == [("CHILD_OF", root["spanID"])], (cid, s)
        assert not trace.get("warnings"), (cid, trace["warnings"])
        traces[cid] = trace
    # child_spans=False: the steps are events on the root; the fill that came after the cancel (the root had ended)
    # is a child span, not an event the SDK dropped.
    ev = wait_for(
        lambda: (lambda t: t if t is not None and len(t["spans"]) >= 2 else None)(
            jaeger_trace(jaeger.query_url, ids["events-late-fill"])
        ),
        "the one-span order's trace with its late fill",
        procs=(collector.proc, jaeger.proc),
    )
    [ev_root] = [s for s in ev["spans"] if s["operationName"] == "order"]
    assert [f["value"] for log in ev_root["logs"] for f in log["fields"] if f["key"] == "event"] == ["submit"]
    [ev_fill] = [s for s in ev["spans"] if s["operationName"] == "fill"]
    assert ev_fill["references"][0]["spanID"] == ev_root["spanID"] and span_tags(ev_fill)["fill.qty"] == 5

    # The resent execution (same exec_id) is not a second fill; the replace's fill, reported under its new id,
    # is on the one trace, measured against the new terms.
    assert _fills(traces["dup"]) == [(5.0, 100.0), (5.0, 100.3)]
    # An integer order id's reports find it (they were unknown orders), and a resend without exec_id is told by its
    # cum_qty (it was a second fill, completing the order early and dropping the real last fill as a repeat).
    assert _fills(traces["4242"]) == [(5.0, 100.0), (5.0, 100.1)]
    assert _fills(traces["amend"]) == [(4.0, 100.0), (11.0, 100.5)]
    assert (_fills(traces["7-first"]), _fills(traces["7"])) == ([(10.0, 100.0)], [(4.0, 100.1)])
    assert _fills(traces["before-restart"]) == [(6.0, 100.1)]
    res = span_tags(next(s for s in traces["before-restart"]["spans"] if s["operationName"] == "order"))
    assert (res["order.resumed"], res["order.venue_order_id"], res["order.filled_qty"]) == (True, "V-old", 10)
    amend_root = span_tags(next(s for s in traces["amend"]["spans"] if s["operationName"] == "order"))
    assert (amend_root["order.qty"], amend_root["order.price"], amend_root.get("order.overfilled")) == (15, 100.5, None)
    # Found by either id, as Grafana's Jaeger search asks (the new id is on the replace span).
    [by_new_id] = jaeger_search(jaeger.query_url, service, tags="order.new_id=amend-2")
    assert by_new_id["traceID"] == ids["amend"]

    # The same with the steps as events on the root span (child_spans=False): the new id is on the root's replace
    # event, which Jaeger's tag search matches too. The drill-down's own order table (its three searches, the rows
    # merged) finds the order by each id a broker reports; and its log panels, run on what the collector sends to
    # Loki (LogQL on the records as Loki's OTLP ingestion stores them), select the order's lines by each id too.
    drill = json.loads((GRAFANA / "dashboards" / "order-drilldown.json").read_text())
    ev = Evaluator("", jaeger.query_url, DATASOURCES)
    end = time.time() + 60
    amended = ids["ev-amend"]

    def drilldown(typed: str) -> list[Query]:
        variables = {
            name: Variable(name, [value], False)
            for name, value in (("service", service), ("order_id", typed), ("trace_id", ""))
        }
        return ev.queries(drill, variables, end - 3600, end)

    def lines(query: Query) -> dict[str, str] | None:
        """The log records the panel's query selects -> their order ids, once the order's fill line is there."""
        recs = [r for r in read_otlp_json_logs(collector.logs_file) if loki_match(query.target["expr"], r)]
        bodies = {r["body"]["stringValue"]: r["_attributes"].get("order_id") for r in recs}
        return bodies if any(b.startswith("fill ev-amend-2") for b in bodies) else None

    ev_root = wait_for(
        lambda: jaeger_trace(jaeger.query_url, amended), "the amended one-span order's trace", procs=(collector.proc,)
    )
    [root_span] = ev_root["spans"]
    assert [f["value"] for log in root_span["logs"] for f in log["fields"] if f["key"] == "event"] == [
        "risk_check",
        "submit",
        "ack",
        "replace",
        "fill",
    ]
    for typed, logged_after in (
        ("ev-amend", {"sent", "acked", "replaced", "fill"}),
        ("V-ev-77", {"acked", "replaced", "fill"}),
        ("ev-amend-2", {"replaced", "fill"}),
    ):
        queries = drilldown(typed)
        (table,) = {q.panel for q in queries if q.target.get("tags", "").startswith("order.id=")}
        found = [t["traceID"] for q in queries if q.panel == table for t in ev.run(q)]
        assert found == [amended], (typed, found)
        for q in (q for q in queries if q.kind == "loki"):
            bodies = wait_for(lambda q=q: lines(q), f"{q.describe()}: the order's lines", procs=(collector.proc,))
            assert set(bodies.values()) == {"ev-amend"}, (q.describe(), bodies)
            # (the bot's lines are all of the execution stream: both panels show them; a line logged just before
            # the ack or the replace may carry its id too, so at least these)
            assert {b.split()[0] for b in bodies} >= logged_after, (q.describe(), sorted(bodies))

    # The broker thread's log lines are on their order's trace and root span (the collector's log file).
    roots = {}
    for cid, trace_id in ids.items():
        t = jaeger_trace(jaeger.query_url, trace_id)
        assert t is not None
        roots[cid] = next(s["spanID"] for s in t["spans"] if s["operationName"] == "order")

    def records() -> list[dict[str, Any]] | None:
        recs = [r for r in read_otlp_json_logs(collector.logs_file) if r["_resource"].get("service.name") == service]
        return recs if any("from-yesterday" in r["body"]["stringValue"] for r in recs) else None

    recs = wait_for(records, "the bot's log records in the collector", procs=(collector.proc,))
    by_cid = 0
    for r in recs:
        body = r["body"]["stringValue"]
        cid = r["_attributes"].get("order_id")
        if cid is None:
            continue
        by_cid += 1
        assert cid in body, (cid, body)
        # (order id 7 named two orders, one after the other: a line of either is on one of theirs)
        mine = {(ids[c], roots[c]) for c in (cid, f"{cid}-first") if c in ids}
        assert (r.get("traceId"), r.get("spanId")) in mine, (cid, body, r.get("traceId"))
    assert by_cid >= 20, recs

    # What the collector serves for Prometheus: the fills and the odd reports counted, and each latency exemplar
    # on the trace of an order that has that step, pointing at that step's span.
    sel = f'job="{service}"'

    def last_export() -> list[str] | None:  # the bot's last export (at its shutdown) through the collector's batch
        lines = [x for x in _exporter_page(collector).splitlines() if sel in x and not x.startswith("#")]
        return (
            lines
            if any(
                x.startswith("tradeobs_agent_stopped{") and float(x.rsplit("}", 1)[1].split()[0]) == 1 for x in lines
            )
            else None
        )

    samples = wait_for(last_export, "the bot's last metrics export on the collector's page", procs=(collector.proc,))

    def total(name: str, **labels: str) -> float:
        out = 0.0
        for line in samples:
            if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
                out += float(line.split(" # ")[0].rsplit("}", 1)[1].split()[0])
        return out

    # filled: partial, dup, 4242, amend, over, bad, task-ack, both orders 7, before-restart, ev-amend; partly: partial's
    # 40, cxl-race's 20, dup's E1, 4242's first 5, amend's 4, events-late-fill's 5 (after its cancel)
    assert (total("trading_orders_filled_total"), total("trading_orders_partially_filled_total")) == (11, 5 + 1)
    assert total("tradeobs_agent_measurements_invalid_total", reason="unknown_order") == 1
    # dup's E1 and 4242's cum_qty resent; the first order 7's execution replayed under the second's id; the resumed
    # order's execution of before the restart, replayed
    assert total("tradeobs_agent_measurements_invalid_total", reason="duplicate_fill") == 4
    assert total("tradeobs_agent_measurements_invalid_total", reason="overfill") == 1
    assert total("tradeobs_agent_measurements_invalid_total", reason="order_closed") == 0
    # each acknowledged order once, however many statuses said so: partial, cxl-race, dup, 4242, amend, over, bad,
    # task-ack, the two orders 7
    assert total("trading_orders_acknowledged_total", strategy="bot") == 10
    assert total("trading_order_submit_to_ack_latency_seconds_count", strategy="bot") == 10
    # partial, cxl-race, dup, 4242, amend, over, bad, task-ack, the two orders 7 (not the replay's 10 again), the
    # resumed order's 6 filled after the restart
    assert total("trading_fills_quantity_total", strategy="bot") == 100 + 20 + 10 + 10 + 15 + 15 + 10 + 10 + 10 + 4 + 6
    # sent by this run: every order but the resumed one (not counted again), venue-rej and no-ack included
    assert total("trading_orders_submitted_total", strategy="bot") == 12
    span_ids = {cid: {s["spanID"]: s["operationName"] for s in t["spans"]} for cid, t in traces.items()}
    by_trace = {ids[cid]: cid for cid in traces}
    checked = 0
    for line in samples:
        name = line.split("{", 1)[0]
        if " # " not in line or not name.startswith("trading_order_") or 'strategy="bot"' not in line:
            continue
        ex = line.split(" # ", 1)[1]
        labels = dict(kv.split("=", 1) for kv in ex[ex.index("{") + 1 : ex.index("}")].split(","))
        trace_id, span_id = labels["trace_id"].strip('"'), labels["span_id"].strip('"')
        assert trace_id in by_trace, line
        step = span_ids[by_trace[trace_id]].get(span_id)
        want = {
            "trading_order_submit_to_ack_latency_seconds_bucket": "ack",
            "trading_order_submit_to_fill_latency_seconds_bucket": "fill",
            "trading_order_signal_to_submit_latency_seconds_bucket": "submit",
            "trading_order_slippage_bucket": "fill",
            "trading_order_fill_ratio_bucket": "order",
        }[name]
        assert step == want, (line, by_trace[trace_id], step)
        checked += 1
    assert checked >= 5, samples
