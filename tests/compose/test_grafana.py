"""Grafana provisioning and dashboards: valid JSON, datasource UIDs that
exist, the metrics/traces/logs correlations, and PromQL that a real
Prometheus parses (with the recording rules loaded)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from .helpers import GRAFANA_DIR, PROM_DIR, start_prometheus

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
    assert set(DS) == {"prometheus", "tempo", "loki", "alertmanager"}
    prom, tempo, loki = DS["prometheus"], DS["tempo"], DS["loki"]
    assert prom["isDefault"] is True
    # Prometheus exemplars -> Tempo
    assert prom["jsonData"]["exemplarTraceIdDestinations"][0] == {
        "name": "trace_id",
        "datasourceUid": "tempo",
        "urlDisplayLabel": "Open trace",
    }
    # Tempo -> Loki by trace id, Tempo -> Prometheus
    t2l = tempo["jsonData"]["tracesToLogsV2"]
    assert t2l["datasourceUid"] == "loki" and t2l["filterByTraceID"] is True
    assert "trace_id" in t2l["query"]
    assert tempo["jsonData"]["tracesToMetrics"]["datasourceUid"] == "prometheus"
    assert tempo["jsonData"]["serviceMap"]["datasourceUid"] == "prometheus"
    # Loki trace_id (structured metadata from OTLP) -> Tempo
    fields = loki["jsonData"]["derivedFields"]
    label = next(f for f in fields if f.get("matcherType") == "label")
    assert label["matcherRegex"] == "trace_id" and label["datasourceUid"] == "tempo"
    for f in fields:
        assert f["url"] == "$${__value.raw}"  # $$: literal $ in provisioning files
        assert f["datasourceUid"] == "tempo"
    # in-cluster URLs match the compose services/ports
    assert prom["url"] == "http://prometheus:9090"
    assert tempo["url"] == "http://tempo:3200"
    assert loki["url"] == "http://loki:3100"


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
    assert {p.name for p in DASHBOARDS} == {"trading-overview.json", "pipeline-health.json"}


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_json_and_datasource_uids(path: Path) -> None:
    dash = json.loads(path.read_text())
    assert dash["uid"] and dash["title"] and dash["panels"]
    assert "${DS_" not in path.read_text(), "exported-for-sharing placeholders"
    refs = [n["datasource"] for n in _walk(dash) if isinstance(n.get("datasource"), dict)]
    assert refs
    for ref in refs:
        assert ref["uid"] in DS, f"{path.name}: unknown datasource uid {ref['uid']}"
        assert ref["type"] == DS[ref["uid"]]["type"], ref
    ids = [p["id"] for p in _panels(dash)]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    for p in _panels(dash):
        if p["type"] != "row":
            assert p.get("targets"), f"{path.name}: panel {p['title']} has no query"


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
        "trading_drawdown_ratio",
        "trading_risk_kill_switch_engaged",
        "trading_marketdata_staleness_seconds",
    ):
        assert metric in exprs, metric
    assert any(p["type"] == "heatmap" for p in _panels(trading))
    assert any(t.get("exemplar") for p in _panels(trading) for t in p.get("targets", []))
    assert any(p["type"] == "logs" and p["datasource"]["uid"] == "loki" for p in _panels(trading))
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


def _substitute(expr: str) -> str:
    return expr.replace("$__rate_interval", "1m").replace("$job", ".*").replace("$symbol", ".*")


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
        for node in _walk(dash):
            ds = node.get("datasource")
            if isinstance(ds, dict) and ds.get("uid") == "prometheus" and isinstance(node.get("expr"), str):
                exprs.append(node["expr"])
        for var in dash["templating"]["list"]:
            m = re.fullmatch(r"label_values\((.+), \w+\)", var["query"]["query"])
            if m:
                exprs.append(m.group(1))
    assert len(exprs) > 30
    for expr in exprs:
        q = _substitute(expr)
        r = httpx.get(f"{url}/api/v1/query", params={"query": q}, timeout=5)
        assert r.status_code == 200, f"{expr!r}: {r.text}"
        for name in re.findall(r"\b([a-z_]+:[a-z0-9_]+:[a-z0-9_]+)\b", q):
            assert name in recorded, f"{expr!r} uses unknown recording rule {name}"
