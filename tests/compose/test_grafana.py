"""Grafana provisioning and dashboards: valid JSON, datasource UIDs that
exist, the metrics/traces/logs correlations, and PromQL that a real
Prometheus parses (with the recording rules loaded)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from .helpers import GRAFANA_DIR, PROM_DIR, require_binary, start_prometheus

DASHBOARDS = sorted((GRAFANA_DIR / "dashboards").glob("*.json"))
DATASOURCES = yaml.safe_load((GRAFANA_DIR / "provisioning/datasources/datasources.yml").read_text())["datasources"]
DS = {d["uid"]: d for d in DATASOURCES}


def _walk(node: Any) -> Any:
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from _walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v)


def _panels(dash: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for p in dash["panels"]:
        out.append(p)
        out += p.get("panels", [])
    return out


def test_datasources_have_fixed_uids_and_correlations() -> None:
    assert set(DS) == {"prometheus", "jaeger", "loki", "alertmanager", "thanos"}  # thanos: test_scaling.py
    prom, jaeger, loki = DS["prometheus"], DS["jaeger"], DS["loki"]
    assert prom["isDefault"] is True
    # Prometheus exemplars -> Jaeger: the exemplar label the agent/collector write is trace_id
    # (and the dot's Order drill-down: tests/integration/test_incident.py follows that link)
    trace, drill = prom["jsonData"]["exemplarTraceIdDestinations"]
    assert trace == {"name": "trace_id", "datasourceUid": "jaeger", "urlDisplayLabel": "Open trace"}
    assert drill["name"] == "trace_id" and drill["url"].startswith("/d/tradeobs-order?")
    assert jaeger["type"] == "jaeger"
    # Jaeger -> Loki by trace id (Loki keeps the OTLP record's trace id as structured metadata trace_id)
    t2l = jaeger["jsonData"]["tracesToLogsV2"]
    assert t2l["datasourceUid"] == "loki" and t2l["filterByTraceID"] is True and t2l["customQuery"] is True
    assert t2l["query"] == '{service_name=~".+"} | trace_id="$${__trace.traceId}"'  # $$: literal $
    # Jaeger -> Prometheus: by service.instance.id (a Jaeger process tag; service.name is not one), the instance
    # label; the queries use recording rules that exist (tests/integration/test_incident.py follows the links)
    t2m = jaeger["jsonData"]["tracesToMetrics"]
    assert t2m["datasourceUid"] == "prometheus"
    assert t2m["tags"] == [{"key": "service.instance.id", "value": "instance"}]
    recorded = {
        r["record"]
        for f in (PROM_DIR / "rules").glob("*.yml")
        for g in yaml.safe_load(f.read_text())["groups"]
        for r in g["rules"]
        if "record" in r
    }
    for q in t2m["queries"]:
        (name,) = re.findall(r"[a-z_]+:[a-z0-9_]+:[a-z0-9_]+", q["query"])
        assert name in recorded, q
        assert "{$$__tags}" in q["query"]
    # Loki trace_id (structured metadata from OTLP) -> Jaeger
    fields = loki["jsonData"]["derivedFields"]
    label = next(f for f in fields if f.get("matcherType") == "label")
    assert label["matcherRegex"] == "trace_id" and label["datasourceUid"] == "jaeger"
    for f in fields:
        assert f["url"] == "$${__value.raw}"  # $$: literal $ in provisioning files
        assert f["datasourceUid"] == "jaeger"
    # in-cluster URLs match the compose services/ports
    assert prom["url"] == "http://prometheus:9090"
    assert jaeger["url"] == "http://jaeger:16686"
    assert loki["url"] == "http://loki:3100"


def test_exemplar_destination_and_latency_panels_line_up() -> None:
    """Every latency panel's exemplars open a trace: the panel asks for exemplars from the Prometheus
    datasource, whose exemplar destination is a provisioned datasource of type jaeger."""
    (dest,) = [d for d in DS["prometheus"]["jsonData"]["exemplarTraceIdDestinations"] if "datasourceUid" in d]
    assert DS[dest["datasourceUid"]]["type"] == "jaeger"
    panels = 0
    for path in DASHBOARDS:
        for p in _panels(json.loads(path.read_text())):
            targets = [t for t in p.get("targets", []) if "_latency_seconds_bucket" in t.get("expr", "")]
            if targets:
                panels += 1
                assert p["datasource"] == {"type": "prometheus", "uid": "${ds_prometheus}"}, p["title"]
                assert any(t.get("exemplar") for t in targets), f"{path.name}: {p['title']} has no exemplars"
    assert panels >= 5


def test_derived_field_regex_extracts_trace_id() -> None:
    regex = next(f for f in DS["loki"]["jsonData"]["derivedFields"] if f["matcherType"] == "regex")
    line = 'order filled trace_id="4bf92f3577b34da6a3ce929d0e0e4736" symbol=BTC'
    m = re.search(regex["matcherRegex"], line)
    assert m and m.group(1) == "4bf92f3577b34da6a3ce929d0e0e4736"


def test_derived_field_regex_matches_the_agents_own_json_log_lines(tmp_path: Path) -> None:
    """Regression: the regex once matched only trace_id=..., not the agent's JSON ("trace_id":"...")."""
    import tradeobs_agent
    from tradeobs_agent import LogOptions

    agent = tradeobs_agent.init(otlp=False, prometheus=False, live=False, logs=LogOptions(dir=str(tmp_path)))
    with agent.tracer().start_as_current_span("fill") as span:
        tradeobs_agent.get_logger("execution").info("order %s filled", "o-1")
        trace_id = format(span.get_span_context().trace_id, "032x")
    tradeobs_agent.shutdown()
    lines = [ln for f in tmp_path.glob("*.jsonl") for ln in f.read_text().splitlines() if "o-1" in ln]
    assert lines, "the agent wrote no JSON log line"
    regex = next(f for f in DS["loki"]["jsonData"]["derivedFields"] if f["matcherType"] == "regex")
    m = re.search(regex["matcherRegex"], lines[0])
    assert m and m.group(1) == trace_id


def test_dashboards_exist() -> None:
    assert {p.name for p in DASHBOARDS} == {"trading-overview.json", "order-drilldown.json", "pipeline-health.json"}


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_json_and_datasource_uids(path: Path) -> None:
    dash = json.loads(path.read_text())
    assert dash["uid"] and dash["title"] and dash["panels"]
    assert "${DS_" not in path.read_text(), "exported-for-sharing placeholders"
    refs = [n["datasource"] for n in _walk(dash) if isinstance(n.get("datasource"), dict)]
    assert refs
    # Every reference is a datasource variable (no UID written in: imported into a Grafana whose datasources have
    # other UIDs, a literal one is "datasource not found" in every panel), whose default is a provisioned UID.
    ds_vars = {v["name"]: v for v in dash["templating"]["list"] if v["type"] == "datasource"}
    for ref in refs:
        m = re.fullmatch(r"\$\{(\w+)\}", ref["uid"])
        assert m and m.group(1) in ds_vars, f"{path.name}: {ref} is not one of {sorted(ds_vars)}"
        var = ds_vars[m.group(1)]
        assert var["query"] == ref["type"], (ref, var)
        uid = var["current"]["value"]
        assert uid in DS and DS[uid]["type"] == ref["type"], f"{path.name}: {var['name']} defaults to {uid!r}"
    ids = [p["id"] for p in _panels(dash)]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    for p in _panels(dash):
        if p["type"] != "row":
            assert p.get("targets"), f"{path.name}: panel {p['title']} has no query"
            for t in p["targets"]:
                ds = t.get("datasource", p["datasource"])
                assert ds["uid"].removeprefix("${").removesuffix("}") in ds_vars, f"{path.name}: {p['title']}: {ds}"


def test_dashboard_uids_unique_and_trading_panels_present() -> None:
    dashes = {p.name: json.loads(p.read_text()) for p in DASHBOARDS}
    assert len({d["uid"] for d in dashes.values()}) == len(dashes)
    trading = dashes["trading-overview.json"]
    exprs = " ".join(t.get("expr", "") for p in _panels(trading) for t in p.get("targets", []))
    for metric in (
        "trading_orders_submitted_total",
        "trading_orders_filled_total",
        "trading_orders_rejected_total",
        "trading_order_submit_to_fill_latency_seconds_bucket",
        "trading_pnl_realized",
        "trading_pnl_unrealized",
        "trading_equity",
        "trading_drawdown",
        "trading_risk_kill_switch_engaged",
        "trading_marketdata_staleness_seconds",
    ):
        assert metric in exprs, metric
    assert any(p["type"] == "heatmap" for p in _panels(trading))
    assert any(t.get("exemplar") for p in _panels(trading) for t in p.get("targets", []))
    assert any(p["type"] == "logs" and p["datasource"]["type"] == "loki" for p in _panels(trading))
    pipeline = dashes["pipeline-health.json"]
    pexprs = " ".join(t.get("expr", "") for p in _panels(pipeline) for t in p.get("targets", []))
    for needle in (
        "tradeobs_agent_exports_failed_total",
        "tradeobs_agent_items_dropped_total",
        "tradeobs_agent_logs_dropped_total",
        "otelcol_exporter_send_failed",
        "prometheus_rule_evaluation_failures_total",
        "alertmanager_notifications_failed_total",
    ):
        assert needle in pexprs, needle


REJECT_CASE = "reject ratio is over the orders decided, risk rejects (never submitted) included"


def test_reject_ratio_panel_is_the_recording_rule(tmp_path: Path) -> None:
    """The Trading overview's reject ratio gives, for each service of the promtool case (venue rejects only, half and
    all rejected at risk, nothing ever submitted), what job:trading_order_reject_ratio:rate5m gives: rejected /
    (submitted + rejected at risk). rejected / submitted said 100% for half, +Inf or nothing for all."""
    trading = json.loads((GRAFANA_DIR / "dashboards" / "trading-overview.json").read_text())
    (panel,) = [p for p in _panels(trading) if p["title"] == "Reject ratio (5m)"]
    (target,) = panel["targets"]
    suite = yaml.safe_load((PROM_DIR / "tests" / "trading_test.yml").read_text())
    (case,) = [t for t in suite["tests"] if t["name"] == REJECT_CASE]
    (recorded,) = [e for e in case["promql_expr_test"] if e["expr"] == "job:trading_order_reject_ratio:rate5m"]
    expected = {re.findall(r'job="(\w+)"', s["labels"])[0]: s["value"] for s in recorded["exp_samples"]}
    assert len(expected) == 4
    exprs = [
        {
            "expr": target["expr"].replace("$job", job).replace("$mode", "(live|paper)"),
            "eval_time": recorded["eval_time"],
            "exp_samples": [{"labels": "{}", "value": value}],
        }
        for job, value in expected.items()
    ]
    test = {
        "rule_files": [str(PROM_DIR / "rules" / "recording.yml")],
        "evaluation_interval": suite["evaluation_interval"],
        "tests": [{"interval": case["interval"], "input_series": case["input_series"], "promql_expr_test": exprs}],
    }
    path = tmp_path / "panel_test.yml"
    path.write_text(yaml.safe_dump(test))
    res = subprocess.run(
        [require_binary("promtool"), "test", "rules", str(path)], capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, res.stdout + res.stderr


def _substitute(expr: str) -> str:
    """Enough of Grafana's substitution for a parse check (tests/integration/test_dashboards.py does
    it exactly, against data)."""
    for var, value in (
        ("$__rate_interval", "1m"),
        ("$__interval", "15s"),
        ("$__range", "6h"),
        ("$job", ".*"),
        ("$symbol", ".*"),
        ("$mode", "(live|paper)"),
    ):
        expr = expr.replace(var, value)
    return expr


@pytest.mark.integration
def test_dashboard_promql_parses_on_real_prometheus(tmp_path: Path, procs) -> None:  # type: ignore[no-untyped-def]
    rules = sorted(str(p) for p in (PROM_DIR / "rules").glob("*.yml"))
    config = "global: {scrape_interval: 1m}\nrule_files:\n" + "".join(f"  - {r}\n" for r in rules)
    _, url = start_prometheus(procs, tmp_path, "dash", config, tmp_path / "data")
    loaded = httpx.get(f"{url}/api/v1/rules", timeout=5).json()["data"]["groups"]
    recorded = {r["name"] for g in loaded for r in g["rules"] if r["type"] == "recording"}
    exprs = []
    for path in DASHBOARDS:
        dash = json.loads(path.read_text())
        for p in _panels(dash):
            for t in p.get("targets", []):
                if t.get("datasource", p.get("datasource", {})).get("type") == "prometheus":
                    exprs.append(t["expr"])
        for var in dash["templating"].get("list", []):
            m = re.fullmatch(r"label_values\((.+), \w+\)", str(var.get("query", "")))
            if var.get("datasource", {}).get("type") == "prometheus" and m:
                exprs.append(m.group(1))
    assert len(exprs) > 30
    for expr in exprs:
        q = _substitute(expr)
        r = httpx.get(f"{url}/api/v1/query", params={"query": q}, timeout=5)
        assert r.status_code == 200, f"{expr!r}: {r.text}"
        for name in re.findall(r"\b([a-z_]+:[a-z0-9_]+:[a-z0-9_]+)\b", q):
            assert name in recorded, f"{expr!r} uses unknown recording rule {name}"
