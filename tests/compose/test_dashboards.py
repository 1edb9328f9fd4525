"""The Grafana dashboards are generated from code (compose/grafana/dashgen, grafana-foundation-sdk):
the committed JSON is exactly what the code generates, and what the generator reads from the
rest of the stack (scrape job names) really comes from there."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.grafana_eval import (
    Evaluator,
    Variable,
    apply_variable_regex,
    loki_match,
    loki_selector_problem,
)
from tests.integration.procs import logfmt_tags

from .helpers import GRAFANA_DIR, PROM_DIR, REPO, load_dashgen

GENERATE = GRAFANA_DIR / "generate.py"
DASHBOARD_FILES = sorted((GRAFANA_DIR / "dashboards").glob("*.json"))


def test_committed_dashboards_are_what_the_code_generates() -> None:
    """Fails when someone edits the JSON by hand or changes the code without regenerating."""
    res = subprocess.run([sys.executable, str(GENERATE), "--check"], capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 0, f"run `python compose/grafana/generate.py`:\n{res.stdout[-4000:]}{res.stderr}"
    committed = {p.name for p in (GRAFANA_DIR / "dashboards").glob("*.json")}
    assert (
        committed
        == set(load_dashgen().DASHBOARDS)
        == {
            "trading-overview.json",
            "order-drilldown.json",
            "pipeline-health.json",
        }
    )


def test_the_check_fails_on_a_hand_edit(tmp_path: Path) -> None:
    """The comparison is not vacuous: a changed panel title in a copy of the tree is reported."""
    import shutil

    tree = tmp_path / "grafana"
    shutil.copytree(GRAFANA_DIR, tree, ignore=shutil.ignore_patterns("__pycache__"))
    # dashgen reads ../prometheus/prometheus.yml relative to itself
    shutil.copytree(PROM_DIR, tmp_path / "prometheus")
    target = tree / "dashboards" / "trading-overview.json"
    target.write_text(target.read_text().replace('"Orders /s"', '"Orders per second"', 1))
    (tree / "dashboards" / "orphan.json").write_text("{}\n")
    res = subprocess.run([sys.executable, str(tree / "generate.py"), "--check"], capture_output=True, text=True)
    assert res.returncode == 1
    assert '-      "title": "Orders per second"' in res.stdout
    assert '+      "title": "Orders /s"' in res.stdout
    assert "orphan.json: committed, but no code generates it" in res.stdout
    assert "dashboards are stale" in res.stderr


def test_job_names_are_read_from_the_prometheus_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rename the collector's and Jaeger's scrape jobs in a copy of prometheus.yml: the generated
    pipeline dashboard follows (nothing hard-codes them)."""
    dashgen = load_dashgen()
    common = sys.modules["dashgen._common"]
    text = (PROM_DIR / "prometheus.yml").read_text()
    renamed = text.replace("job_name: otelcol\n", "job_name: tradeobs-collector\n").replace(
        "job_name: jaeger\n", "job_name: tradeobs-traces\n"
    )
    assert renamed.count("tradeobs-") == 2
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(renamed)
    monkeypatch.setattr(common, "PROMETHEUS_CONFIG", cfg)
    common._jobs_by_target.cache_clear()
    try:
        out = dashgen.render(dashgen.DASHBOARDS["pipeline-health.json"])
    finally:
        common._jobs_by_target.cache_clear()
    assert 'job=\\"tradeobs-collector\\"' in out and 'job=\\"tradeobs-traces\\"' in out
    assert 'job=\\"otelcol\\"' not in out and 'job=\\"jaeger\\"' not in out
    with pytest.raises(ValueError, match=r"no scrape job .* has target 'nowhere:1'"):
        common.job_scraping("nowhere:1")


def _targets(dash: dict) -> list[tuple[dict, dict]]:  # type: ignore[type-arg]
    return [(p, t) for p in dash["panels"] for t in p.get("targets", [])]


@pytest.mark.parametrize("name", ["trading-overview.json", "order-drilldown.json"])
def test_latency_panels_carry_exemplars(name: str) -> None:
    """Every latency histogram panel of a trading dashboard asks for the exemplars (the dots that open a trace) of
    each of its histograms' raw buckets, in a target of its own that draws nothing (``@`` 2100: the panels draw
    recorded rates, which have no exemplars), and every panel and target has a unique id/refId."""
    dash = json.loads((GRAFANA_DIR / "dashboards" / name).read_text())
    latency = [p for p in dash["panels"] if any("_latency_seconds" in t.get("expr", "") for t in p.get("targets", []))]
    assert len(latency) >= (4 if name == "trading-overview.json" else 1)
    for p in latency:
        drawn = set(
            re.findall(r"(trading_order_\w+_latency_seconds)_bucket", " ".join(t["expr"] for t in p["targets"]))
        )
        dots = {
            re.fullmatch(r"(trading_order_\w+_latency_seconds)_bucket\{[^}]*\} @ 4102444800", t["expr"]).group(1)  # type: ignore[union-attr]
            for t in p["targets"]
            if t.get("exemplar")
        }
        assert dots == drawn, (p["title"], dots, drawn)
    ids = [p["id"] for p in dash["panels"]]
    assert ids == list(range(1, len(ids) + 1))
    for p in dash["panels"]:
        refs = [t["refId"] for t in p.get("targets", [])]
        assert len(refs) == len(set(refs)), p["title"]


def test_order_drilldown_finds_the_order_by_id() -> None:
    """The drill-down's variables and its trace-store and log-store queries (evaluated against the
    real pipeline in tests/integration/test_dashboards.py)."""
    dash = json.loads((GRAFANA_DIR / "dashboards" / "order-drilldown.json").read_text())
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["order_id"]["type"] == "textbox" and variables["trace_id"]["type"] == "textbox"
    assert variables["job"]["multi"] is False  # Jaeger's search takes one service
    jaeger = [t for _, t in _targets(dash) if t.get("datasource", {}).get("type") == "jaeger"]
    assert {"tags": 'order.id="$order_id"', "service": "$service", "operation": "order"}.items() <= next(
        t for t in jaeger if t.get("tags") == 'order.id="$order_id"'
    ).items()
    # ...or by the other ids a broker reports it by, in the same table (one search each, the rows merged)
    (table,) = [p for p in dash["panels"] if any(t.get("tags") == 'order.id="$order_id"' for t in p.get("targets", []))]
    assert [t["tags"] for t in table["targets"]] == [
        'order.id="$order_id"',
        'order.new_id="$order_id"',
        'order.venue_order_id="$order_id"',
    ]
    assert [x["id"] for x in table["transformations"]] == ["merge"]
    assert any(t.get("query") == "$trace_id" for t in jaeger)
    assert any(t.get("minDuration") == "$min_latency" and t.get("maxDuration") == "$max_latency" for t in jaeger)
    logs = [t["expr"] for p, t in _targets(dash) if p["type"] == "logs"]
    assert all('order_id="$order_id"' in e for e in logs), logs


def test_jaeger_tag_searches_keep_a_value_with_spaces_and_an_ampersand_whole() -> None:
    """A Jaeger search's tags are logfmt (Grafana parses them into the object it sends): a variable's value with a
    space, as the strategy ``mm & hedge``, must be one tag's value. ``strategy=$strategy`` was the tag strategy=mm and
    two more, ``&`` and ``hedge`` (no order has them: "Slow orders on $venue, strategy $strategy" was empty); every
    variable in a tag is quoted now."""
    searched = 0
    for path in DASHBOARD_FILES:
        dash = json.loads(path.read_text())
        for _, t in _targets(dash):
            if t.get("datasource", {}).get("type") != "jaeger" or not t.get("tags"):
                continue
            pairs = re.findall(r'([\w.]+)="?\$(\w+)"?', t["tags"])
            values = {var: f"{var} & co/BTC:1" for _, var in pairs}
            variables = {var: Variable(var, [v], False) for var, v in values.items()}
            sent = logfmt_tags(Evaluator.interpolate(t["tags"], variables, "jaeger"))
            assert {k: values[var] for k, var in pairs}.items() <= sent.items(), (path.name, t["tags"], sent)
            searched += bool(pairs)
    assert searched >= 4  # the drill-down's three searches by order id and its slow orders by venue and strategy


def _record(trace: str, stream: str, **ids: str) -> dict[str, Any]:
    """An OTLP log record as the collector's file exporter writes it (read_otlp_json_logs' shape)."""
    return {"_resource": {"service.name": "algo-1"}, "_attributes": {"stream": stream, **ids}, "traceId": trace}


def test_the_order_log_panels_find_the_records_by_any_id_of_the_order() -> None:
    """A broker's report names the order by the venue's id (FIX OrderID) or the new id of a cancel/replace: typed in
    Order id, the drill-down's log panels select the order's records that carry it (the agent adds
    ``venue_order_id`` and ``new_order_id`` to an order's lines from when it has them: tests/unit/logs/
    test_order_logs.py; the collector's output: tests/integration/test_broker_bot.py), as LogQL runs them on Loki's
    structured metadata. Before, only ``order_id`` and ``trace_id`` were matched: the panels stayed empty for those
    ids until the trace id was clicked. An empty variable selects nothing by itself (a LogQL filter on an empty value
    matches the records without the field)."""
    dash = json.loads((GRAFANA_DIR / "dashboards" / "order-drilldown.json").read_text())
    records = {
        "signal": _record("t1", "strategy", order_id="c-1"),
        "ack": _record("t1", "execution", order_id="c-1", venue_order_id="V-1"),
        "amended fill": _record("t1", "execution", order_id="c-1", venue_order_id="V-1", new_order_id="c-1b"),
        "other order": _record("t2", "execution", order_id="c-2", venue_order_id="V-2"),
        "no order": _record("t3", "service"),
    }
    cases = [  # (Order id, Trace id) -> the records of each panel: all of them, the execution stream's
        (("c-1", ""), {"signal", "ack", "amended fill"}),
        (("V-1", ""), {"ack", "amended fill"}),
        (("c-1b", ""), {"amended fill"}),
        (("V-2", ""), {"other order"}),
        (("", "t1"), {"signal", "ack", "amended fill"}),
        (("c-9", ""), set()),
        (("", ""), set()),
    ]
    panels = [(p["title"], t["expr"]) for p, t in _targets(dash) if p["type"] == "logs"]
    assert len(panels) == 2, panels
    for (order_id, trace_id), want in cases:
        variables = {
            "service": Variable("service", ["algo-1"], False),
            "order_id": Variable("order_id", [order_id], False),
            "trace_id": Variable("trace_id", [trace_id], False),
        }
        for title, expr in panels:
            query = Evaluator.interpolate(expr, variables, "loki")
            found = {name for name, r in records.items() if loki_match(query, r)}
            execution = {n for n in want if records[n]["_attributes"]["stream"] == "execution"}
            assert found == (execution if "execution" in expr else want), (title, order_id, trace_id, query)


def test_the_logql_check_follows_lokis_label_filter_grammar() -> None:
    """loki_match, which the tests above and tests/integration run the log panels with, reads ``and``, ``,``, ``or``
    and parentheses as Loki does (``and`` before ``or``), and refuses what it does not know."""
    r = _record("t1", "execution", order_id="c-1")
    assert loki_match('{service_name="algo-1"} | order_id="c-1" or stream="x" and order_id="c-2"', r)
    assert not loki_match('{service_name="algo-1"} | (order_id="x" or stream="execution") and order_id="c-2"', r)
    assert loki_match('{service_name="algo-1"} | order_id="c-1", stream="execution" | venue_order_id=""', r)
    assert not loki_match('{service_name="other"} | order_id="c-1"', r)
    with pytest.raises(AssertionError):
        loki_match('{service_name="algo-1"} |= "c-1"', r)


def _variables(dash: dict, selection: str) -> dict[str, Variable]:  # type: ignore[type-arg]
    """The dashboard's variables as Grafana resolves them for ``selection``: "all" (All where offered),
    "one" or "two" values (names with regex characters, as symbols and services can have)."""
    picks = {"one": ["BRK.B"], "two": ["BRK.B", "EUR/USD"]}
    out = {}
    for v in dash["templating"].get("list", []):
        multi_or_all = bool(v.get("multi") or v.get("includeAll"))
        if selection == "all" and v.get("includeAll"):
            values = ["$__all"]
        elif v.get("multi") and selection == "two":
            values = picks["two"]
        else:
            values = picks["one"]
        out[v["name"]] = Variable(v["name"], values, multi_or_all, v.get("allValue"), picks["two"])
    return out


@pytest.mark.parametrize("selection", ["all", "one", "two"])
def test_log_panels_are_queries_loki_accepts(selection: str) -> None:
    """Every Loki panel, with its variables substituted as Grafana's Loki datasource does, has a stream
    selector Loki runs. With All, a variable becomes its allValue verbatim: ``.*`` made the Trading
    overview's service logs ``{service_name=~".*"}``, which Loki refuses (no matcher that needs a
    non-empty value), so the panel showed an error in its default view."""
    checked = 0
    for path in sorted((GRAFANA_DIR / "dashboards").glob("*.json")):
        dash = json.loads(path.read_text())
        variables = _variables(dash, selection)
        for p, t in _targets(dash):
            if t.get("datasource", p.get("datasource", {})).get("type") != "loki":
                continue
            expr = Evaluator.interpolate(t["expr"], variables, "loki")
            assert loki_selector_problem(expr) is None, (dash["uid"], p["title"], loki_selector_problem(expr))
            checked += 1
    assert checked >= 3


def test_the_loki_selector_check_refuses_what_loki_refuses() -> None:
    """The check above is Loki's rule, not a formality (cases of Loki's own parser tests)."""
    assert loki_selector_problem('{app=~".*"}') is not None
    assert loki_selector_problem('{app!="bar"}') is not None
    assert loki_selector_problem('{app=""} |= "x"') is not None
    assert loki_selector_problem('{app=~".+"}') is None
    assert loki_selector_problem('{app=~".*", env="prod"} | order_id="1"') is None
    assert loki_selector_problem('{service_name=~"BRK\\\\.B|EUR/USD"}') is None


def _drawdown_steps(dash: dict) -> list[float | None]:  # type: ignore[type-arg]
    (panel,) = [p for p in dash["panels"] if p["title"] == "Drawdown" and p["type"] == "stat"]
    return [s["value"] for s in panel["fieldConfig"]["defaults"]["thresholds"]["steps"]]


def test_the_drawdown_stat_turns_where_the_drawdown_alerts_fire(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Drawdown stat turns orange where TradingDrawdownWarning fires (half the limit of
    rules/limits.yml) and red where TradingDrawdownHigh pages (the limit). It was orange from 10% and
    red from 20% while the stack paged at 10%: green through the warning, orange while paging.
    The thresholds are read from limits.yml, so a changed limit moves them too."""
    rules = yaml.safe_load((PROM_DIR / "rules" / "trading.yml").read_text())
    alerts = {r["alert"]: r["expr"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    assert alerts["TradingDrawdownHigh"].endswith("> on () group_left () tradeobs:limit_drawdown:ratio")
    assert alerts["TradingDrawdownWarning"].endswith("> on () group_left () (0.5 * tradeobs:limit_drawdown:ratio)")
    limits = (PROM_DIR / "rules" / "limits.yml").read_text()
    (limit,) = re.findall(r"record: tradeobs:limit_drawdown:ratio\s+expr: vector\(([0-9.]+)\)", limits)
    dash = json.loads((GRAFANA_DIR / "dashboards" / "trading-overview.json").read_text())
    assert _drawdown_steps(dash) == [None, float(limit) / 2, float(limit)]

    dashgen = load_dashgen()
    common = sys.modules["dashgen._common"]
    changed = tmp_path / "limits.yml"
    changed.write_text(limits.replace(f"vector({limit})", "vector(0.25)"))
    monkeypatch.setattr(common, "LIMITS_RULES", changed)
    out = json.loads(dashgen.render(dashgen.DASHBOARDS["trading-overview.json"]))
    assert _drawdown_steps(out) == [None, 0.125, 0.25]


def test_latency_heatmaps_put_seconds_on_the_buckets_not_on_the_cells() -> None:
    """Grafana's heatmap formats the bucket axis of a pre-bucketed (``le``) histogram with
    ``options.yAxis.unit`` alone, and the cells with ``options.cellValues.unit`` or else the panel's unit
    (heatmap rowsToCellsHeatmap: the value field takes the bucket fields' config). With only the panel
    unit "s", the axis showed bare numbers and a cell of 0.2 orders/s read "200 ms"."""
    heatmaps = [
        (p, t) for path in DASHBOARD_FILES for p, t in _targets(json.loads(path.read_text())) if p["type"] == "heatmap"
    ]
    assert heatmaps
    for p, t in heatmaps:
        assert "_seconds_bucket" in t["expr"] and t["format"] == "heatmap", p["title"]
        assert p["options"]["yAxis"].get("unit") == "s", p["title"]
        cell_unit = p["options"].get("cellValues", {}).get("unit") or p["fieldConfig"]["defaults"].get("unit")
        assert cell_unit not in (None, "s", "ms", "µs", "ns"), (p["title"], cell_unit)


def test_the_fill_ratio_panel_says_100_percent_when_every_order_filled_completely(tmp_path: Path) -> None:
    """The drill-down's fill ratio, on promtool with the series the agent exports for orders that all
    filled in full (every observation 1.0: the buckets (0.99, 1] and above, sum = count), is 100%. Its
    p50 said 99.5%: histogram_quantile interpolates inside the top bucket (0.99, 1]."""
    from .helpers import require_binary

    dash = json.loads((GRAFANA_DIR / "dashboards" / "order-drilldown.json").read_text())
    (panel,) = [p for p in dash["panels"] if p["title"].startswith("Fill ratio of done orders")]
    (target,) = panel["targets"]
    expr = target["expr"].replace("$job", "algo").replace("$symbol", "BRK\\\\.B").replace("$__rate_interval", "2m")
    labels = 'job="algo",symbol="BRK.B",side="buy"'
    bounds = ["0", "0.1", "0.25", "0.5", "0.75", "0.9", "0.99", "1", "+Inf"]
    series = [
        {
            "series": f'trading_order_fill_ratio_bucket{{{labels},le="{le}"}}',
            "values": "0+0x10" if float(le) < 1 else "0+10x10",
        }
        for le in bounds
    ] + [{"series": f"trading_order_fill_ratio_{n}{{{labels}}}", "values": "0+10x10"} for n in ("sum", "count")]
    test = {
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "promql_expr_test": [{"expr": expr, "eval_time": "5m", "exp_samples": [{"labels": "{}", "value": 1}]}],
            }
        ],
    }
    path = tmp_path / "fill_ratio_test.yml"
    path.write_text(yaml.safe_dump(test))
    res = subprocess.run(
        [require_binary("promtool"), "test", "rules", str(path)], capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, res.stdout + res.stderr


def test_total_pnl_counts_a_service_that_reports_only_one_kind_of_pnl(tmp_path: Path) -> None:
    """The overview's Total P&L on promtool: `sum(realized) + sum(unrealized)` was empty for a service with only
    realized P&L (no unrealized series: no mark price, or a NaN the agent refused), so the stat said "No data" while
    it had lost 1,200; with both reported it is their sum."""
    from .helpers import require_binary

    dash = json.loads((GRAFANA_DIR / "dashboards" / "trading-overview.json").read_text())
    (panel,) = [p for p in dash["panels"] if p["title"] == "Total P&L"]
    (target,) = panel["targets"]
    cases = {
        "flat": ([("trading_pnl_realized", "-1200")], -1200),
        "both": ([("trading_pnl_realized", "-600"), ("trading_pnl_unrealized", "250")], -350),
    }
    tests = []
    for job, (series, want) in cases.items():
        tests.append(
            {
                "interval": "1m",
                "input_series": [
                    {"series": f'{name}{{job="{job}",instance="a",symbol="BTC"}}', "values": f"{v}x5"}
                    for name, v in series
                ],
                "promql_expr_test": [
                    {
                        "expr": target["expr"].replace("$job", job).replace("$mode", "(live|paper)"),
                        "eval_time": "2m",
                        "exp_samples": [{"labels": "{}", "value": want}],
                    }
                ],
            }
        )
    path = tmp_path / "total_pnl_test.yml"
    doc = {"rule_files": [str(PROM_DIR / "rules" / "recording.yml")], "evaluation_interval": "1m", "tests": tests}
    path.write_text(yaml.safe_dump(doc))
    res = subprocess.run(
        [require_binary("promtool"), "test", "rules", str(path)], capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.parametrize("name", ["trading-overview.json", "order-drilldown.json"])
def test_trading_dashboards_show_live_and_paper_by_default_and_backtests_when_chosen(name: str) -> None:
    """A backtest or replay exporting under a live service's name was summed into that service's panels (its P&L,
    orders, rejects): the dashboards selected by job only. Every Prometheus selector of a service's series (and the
    Service variable) now takes ``trading_mode=~"$mode|"``, and ``mode`` is live and paper unless backtest is
    chosen; a series without the label (no trading.mode on its resource) is shown whatever the choice."""
    dash = json.loads((GRAFANA_DIR / "dashboards" / name).read_text())
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    mode = variables["mode"]
    assert mode["multi"] and mode["query"].split(",") == ["live", "paper", "backtest"]
    assert mode["current"]["value"] == ["live", "paper"]
    names = [v["name"] for v in dash["templating"]["list"]]
    assert names.index("mode") < names.index("job")  # the job variable's query uses it
    assert 'trading_mode=~"$mode|"' in variables["job"]["query"]
    selectors = [
        (p["title"], sel)
        for p, t in _targets(dash)
        if t.get("datasource", p.get("datasource", {})).get("type") == "prometheus"
        for sel in re.findall(r"\{[^{}]*\bjob=[^{}]*\}", t.get("expr", ""))
    ]
    assert len(selectors) > 5
    unfiltered = [(title, sel) for title, sel in selectors if 'trading_mode=~"$mode|"' not in sel]
    assert unfiltered == []


def test_total_pnl_of_a_service_leaves_out_its_backtest_unless_chosen(tmp_path: Path) -> None:
    """The overview's Total P&L on promtool for a paper process (+200) and a backtest under the same service name
    (-5000): the default modes show the paper book's 200 (before: -4800), backtest alone its -5000, and a service
    without trading.mode (no label) keeps its P&L under any choice."""
    from .helpers import require_binary

    dash = json.loads((GRAFANA_DIR / "dashboards" / "trading-overview.json").read_text())
    (panel,) = [p for p in dash["panels"] if p["title"] == "Total P&L"]
    (target,) = panel["targets"]
    series = [
        ('trading_pnl_realized{job="algo",instance="p",symbol="BTC",trading_mode="paper"}', "200x5"),
        ('trading_pnl_realized{job="algo",instance="b",symbol="BTC",trading_mode="backtest"}', "-5000x5"),
        ('trading_pnl_realized{job="plain",instance="a",symbol="BTC"}', "-70x5"),
    ]
    cases = [("algo", "(live|paper)", 200), ("algo", "backtest", -5000), ("plain", "(live|paper)", -70)]
    cases += [("plain", "backtest", -70)]
    test = {
        "interval": "1m",
        "input_series": [{"series": s, "values": v} for s, v in series],
        "promql_expr_test": [
            {
                "expr": target["expr"].replace("$job", job).replace("$mode", mode),
                "eval_time": "2m",
                "exp_samples": [{"labels": "{}", "value": want}],
            }
            for job, mode, want in cases
        ],
    }
    path = tmp_path / "pnl_modes_test.yml"
    doc = {"rule_files": [str(PROM_DIR / "rules" / "recording.yml")], "evaluation_interval": "1m", "tests": [test]}
    path.write_text(yaml.safe_dump(doc))
    res = subprocess.run(
        [require_binary("promtool"), "test", "rules", str(path)], capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, res.stdout + res.stderr


def _money_panels() -> dict[str, str]:
    dash = json.loads((GRAFANA_DIR / "dashboards" / "trading-overview.json").read_text())
    exprs = {p["title"]: [t["expr"] for t in p.get("targets", [])] for p in dash["panels"]}
    (total,) = exprs["Total P&L"]
    (equity,) = exprs["Equity"]
    quantity = next(e for t, es in exprs.items() if t.startswith("Positions now") for e in es)
    (realized,) = next(es for t, es in exprs.items() if t.startswith("Realized P&L"))
    return {"total": total, "equity": equity, "quantity": quantity, "realized": realized}


def _promtool_panels(
    tmp_path: Path,
    interval: str,
    series: list[tuple[str, str]],
    cases: list[tuple[str, str, str, float]],
    at: str,
    *,
    empty: bool = False,
) -> None:
    """``cases`` (expression, $job, expected labels, value) at ``at`` over ``series``, with the recording rules the
    panels read (job_instance:tradeobs_agent:gone) evaluated as Prometheus would; ``empty``: each expects no sample."""
    from .helpers import require_binary

    test = {
        "interval": interval,
        "input_series": [{"series": s, "values": v} for s, v in series],
        "promql_expr_test": [
            {
                "expr": expr.replace("$job", job).replace("$mode", "(live|paper)"),
                "eval_time": at,
                "exp_samples": [] if empty else [{"labels": labels, "value": want}],
            }
            for expr, job, labels, want in cases
        ],
    }
    path = tmp_path / "gone_instances_test.yml"
    doc = {"rule_files": [str(PROM_DIR / "rules" / "recording.yml")], "evaluation_interval": "15s", "tests": [test]}
    path.write_text(yaml.safe_dump(doc))
    res = subprocess.run(
        [require_binary("promtool"), "test", "rules", str(path)], capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, res.stdout + res.stderr


def test_money_panels_leave_out_a_replaced_instance_that_stopped_cleanly(tmp_path: Path) -> None:
    """Over OTLP the collector serves a replaced process's last values for 5 minutes (metric_expiration) beside its
    successor's report of the same book: Total P&L read -1200 for a book at -600 after each deploy, and equity,
    exposure and the positions table doubled the same way. An instance that sent tradeobs_agent_stopped 1 is left
    out; a scrape target (the embedded endpoint: one instance across restarts) is not, whatever it said at a stop."""
    p = _money_panels()
    series = [
        ('trading_pnl_realized{job="otlp",instance="old",symbol="BTC"}', "-600x4"),
        ('trading_equity{job="otlp",instance="old",strategy="mm",venue="v"}', "9400x4"),
        ('trading_position_quantity{job="otlp",instance="old",symbol="BTC",strategy="mm"}', "3x4"),
        ('trading_position_notional{job="otlp",instance="old",symbol="BTC",strategy="mm"}', "300x4"),
        ('tradeobs_agent_stopped{job="otlp",instance="old"}', "_x2 1x2"),
        ('trading_pnl_realized{job="otlp",instance="new",symbol="BTC"}', "_x2 -600x2"),
        ('trading_equity{job="otlp",instance="new",strategy="mm",venue="v"}', "_x2 9400x2"),
        ('trading_position_quantity{job="otlp",instance="new",symbol="BTC",strategy="mm"}', "_x2 3x2"),
        ('trading_position_notional{job="otlp",instance="new",symbol="BTC",strategy="mm"}', "_x2 300x2"),
        ('up{job="scraped",instance="app:9464"}', "1x4"),
        ('trading_pnl_realized{job="scraped",instance="app:9464",symbol="BTC"}', "-900x4"),
        ('tradeobs_agent_stopped{job="scraped",instance="app:9464"}', "_x2 1 stale"),
    ]
    cases = [
        (p["total"], "otlp", "{}", -600),
        (p["equity"], "otlp", '{job="otlp"}', 9400),
        (p["quantity"].replace("$symbol", ".*"), "otlp", '{job="otlp", symbol="BTC"}', 3),
        (p["total"], "scraped", "{}", -900),
        (p["realized"].replace("$symbol", ".*").replace("$__range", "3m"), "otlp", '{symbol="BTC"}', -600),
    ]
    _promtool_panels(tmp_path, "1m", series, cases, "3m")


def test_money_panels_leave_out_a_crashed_instance_once_its_successor_exports(tmp_path: Path) -> None:
    """A crash sends no stop marker: the collector served the dead process's last P&L, equity and positions for its
    metric_expiration (5 minutes) beside its successor's, and the money panels added both (Total P&L -1200 for a book
    at -600 after each crash and restart). Its export count (the heartbeat) stalled at the crash (2m), and once its
    successor (a new instance) has exported twice in 30 s it is left out, as in the P&L recording rules
    (compose/prometheus/tests/trading_test.yml)."""
    p = _money_panels()
    old, new = 'job="otlp",instance="old"', 'job="otlp",instance="new"'
    series = [
        (f'trading_pnl_realized{{{old},symbol="BTC"}}', "-600x28"),  # served until 7m (metric_expiration)
        (f'trading_equity{{{old},strategy="mm",venue="v"}}', "9400x28"),
        (f'trading_position_quantity{{{old},symbol="BTC",strategy="mm"}}', "3x28"),
        (f'trading_position_notional{{{old},symbol="BTC",strategy="mm"}}', "300x28"),
        (f'tradeobs_agent_exports_succeeded_total{{{old},signal="metrics"}}', "0+1x8 8x20"),  # killed at 2m
        (f'trading_pnl_realized{{{new},symbol="BTC"}}', "_x10 -600x18"),
        (f'trading_equity{{{new},strategy="mm",venue="v"}}', "_x10 9400x18"),
        (f'trading_position_quantity{{{new},symbol="BTC",strategy="mm"}}', "_x10 3x18"),
        (f'trading_position_notional{{{new},symbol="BTC",strategy="mm"}}', "_x10 300x18"),
        (f'tradeobs_agent_exports_succeeded_total{{{new},signal="metrics"}}', "_x10 0+1x18"),
    ]
    cases = [
        (p["total"], "otlp", "{}", -600),
        (p["equity"], "otlp", '{job="otlp"}', 9400),
        (p["quantity"].replace("$symbol", ".*"), "otlp", '{job="otlp", symbol="BTC"}', 3),
        (p["realized"].replace("$symbol", ".*").replace("$__range", "1m"), "otlp", '{symbol="BTC"}', -600),
    ]
    _promtool_panels(tmp_path, "15s", series, cases, "4m")


def test_money_panels_keep_a_crashed_workers_book_as_the_loss_page_does(tmp_path: Path) -> None:
    """One worker of two (b) crashes at 30m holding -900 with no successor; its sibling (a, -300) lives. The loss
    limit alert reads job_strategy:trading_pnl_total:sum, which holds b's last P&L (the positions are still at the
    venue) and pages on -1200; Total P&L summed the instances' gauges and read -300 once the collector and
    last_over_time dropped b (10 minutes after the crash), so the dashboard and the page disagreed. Now Total P&L and
    "P&L by strategy vs loss limit" read the recorded totals (compose/prometheus/tests/trading_test.yml, "a crashed
    worker among live ones ...")."""
    dash = json.loads((GRAFANA_DIR / "dashboards" / "trading-overview.json").read_text())
    exprs = {p["title"]: [t["expr"] for t in p.get("targets", [])] for p in dash["panels"]}
    (total,) = exprs["Total P&L"]
    by_strategy, limit = exprs["P&L by strategy vs loss limit"]
    a, b = 'job="desk",instance="a"', 'job="desk",instance="b"'
    series = [
        (f'trading_pnl_realized{{{a},strategy="mm",symbol="AAPL"}}', "-300x240"),
        (f'tradeobs_agent_exports_succeeded_total{{{a},signal="metrics"}}', "0+1x240"),
        (f"target_info{{{a}}}", "1x240"),
        # crashed at 30m: its heartbeat stalls, the collector serves its last values until 35m
        (f'trading_pnl_realized{{{b},strategy="mm",symbol="MSFT"}}', "-900x140 stale"),
        (f'tradeobs_agent_exports_succeeded_total{{{b},signal="metrics"}}', "0+1x120 120x20 stale"),
        (f"target_info{{{b}}}", "1x140 stale"),
    ]
    (crashed,) = exprs["P&L of crashed instances (held in the totals)"]
    cases = [
        (total, "desk", "{}", -1200),
        (by_strategy, "desk", '{__name__="job_strategy:trading_pnl_total:sum", job="desk", strategy="mm"}', -1200),
        # the part of the totals no live gauge shows (b's positions, equity and exposure left those panels at 35m)
        (crashed, "desk", '{job="desk", instance="b"}', -900),
    ]
    _promtool_panels(tmp_path, "15s", series, cases, "55m")
    assert "tradeobs:limit_pnl_loss:currency" in limit


def test_crashed_instances_panel_is_empty_for_a_worker_recycled_cleanly(tmp_path: Path) -> None:
    """gunicorn's max_requests: worker b stops cleanly at 30m (tradeobs_agent_stopped 1) and c takes its place. The
    "P&L of crashed instances" panel names no instance (no promtool sample: the expected list is empty)."""
    dash = json.loads((GRAFANA_DIR / "dashboards" / "trading-overview.json").read_text())
    exprs = {p["title"]: [t["expr"] for t in p.get("targets", [])] for p in dash["panels"]}
    (crashed,) = exprs["P&L of crashed instances (held in the totals)"]
    a, b, c = (f'job="desk",instance="{i}"' for i in "abc")
    series = [
        (f'trading_pnl_realized{{{a},strategy="mm",symbol="AAPL"}}', "-300x240"),
        (f'tradeobs_agent_exports_succeeded_total{{{a},signal="metrics"}}', "0+1x240"),
        (f"target_info{{{a}}}", "1x240"),
        (f'trading_pnl_realized{{{b},strategy="mm",symbol="MSFT"}}', "-900x140 stale"),
        (f'tradeobs_agent_exports_succeeded_total{{{b},signal="metrics"}}', "0+1x121 121x19 stale"),
        (f"tradeobs_agent_stopped{{{b}}}", "0x120 1x19 stale"),
        (f"target_info{{{b}}}", "1x140 stale"),
        (f'trading_pnl_realized{{{c},strategy="mm",symbol="MSFT"}}', "_x121 0x119"),
        (f'tradeobs_agent_exports_succeeded_total{{{c},signal="metrics"}}', "_x121 0+1x119"),
        (f"target_info{{{c}}}", "_x121 1x119"),
    ]
    _promtool_panels(tmp_path, "15s", series, [(crashed, "desk", "", 0.0)], "45m", empty=True)


def test_panels_say_orders_filled_where_they_count_orders_not_fills() -> None:
    """trading_orders_filled_total counts orders filled completely; "fills" is every fill, partial ones
    too, on the live page (docs/live.md: desk.fills) and in trading_orders_partially_filled_total. The
    Trading overview's stat over the first was titled "Fills (time range)": next to the live page's
    fills (1,280 on the demo) it showed 886 for the same moment."""
    for path in DASHBOARD_FILES:
        for p, t in _targets(json.loads(path.read_text())):
            expr = t.get("expr", "")
            if "trading_orders_filled_total" in expr and "partially_filled" not in expr:
                title = p["title"].lower()
                assert "fills" not in title.replace("filled", ""), (path.name, p["title"], expr)


def test_trace_and_log_queries_name_the_service_as_jaeger_and_loki_do() -> None:
    """A service with a service.namespace has the Prometheus job "<namespace>/<service.name>" (the
    collector's prometheus exporter), but Jaeger's service and Loki's service_name are the service.name.
    The Jaeger and Loki queries used $job, so with a namespace the drill-down found no trace and no log
    line (the live page links it with that job). They use the hidden $service, the job's service.name
    (tests/integration/test_dashboards.py runs the demo in a namespace)."""
    checked = 0
    for path in DASHBOARD_FILES:
        dash = json.loads(path.read_text())
        variables = {v["name"]: v for v in dash["templating"].get("list", [])}
        for p, t in _targets(dash):
            kind = t.get("datasource", p.get("datasource", {})).get("type")
            if kind not in ("jaeger", "loki"):
                continue
            text = json.dumps({k: v for k, v in t.items() if k != "datasource"})
            assert "$job" not in text, (path.name, p["title"], text)
            if "$service" in text:
                service = variables["service"]
                assert service["hide"] == 2 and service["query"].endswith(", job)"), service
                assert service["allowCustomValue"] is False, service  # derived: no value from a link's URL
                assert apply_variable_regex(service["regex"], ["desk/algo-1", "algo-2", "a/b/algo-3"]) == [
                    "algo-1",
                    "algo-2",
                    "algo-3",
                ]
                checked += 1
    assert checked >= 6


def test_tables_of_several_queries_name_each_value_column() -> None:
    """Grafana's Prometheus datasource names the value column of each of several table-format queries
    "Value #<refId>" (result_transformer getValueText). The Trading overview's positions table showed
    columns "Value #A", "Value #B", "Value #C" for quantity, notional and unrealized P&L: each is
    renamed now."""
    tables = 0
    for path in DASHBOARD_FILES:
        for p in json.loads(path.read_text())["panels"]:
            refs = [t["refId"] for t in p.get("targets", []) if t.get("format") == "table"]
            if p["type"] != "table" or len(refs) < 2:
                continue
            tables += 1
            renamed = {
                k: v
                for tr in p.get("transformations", [])
                if tr["id"] == "organize"
                for k, v in tr["options"].get("renameByName", {}).items()
            }
            for ref in refs:
                assert renamed.get(f"Value #{ref}"), (path.name, p["title"], ref, renamed)
    assert tables >= 1


# ---------------------------------------------------------------- the latency panels read recorded bucket rates

BEFORE_RECORDING = json.loads((Path(__file__).parent / "data" / "bucket_panels_before_recording.json").read_text())
# the histograms, their bounds, per series a rate multiplier; every combination of these labels is a series
_HISTOGRAMS = {
    "trading_order_submit_to_fill_latency_seconds": ["0.01", "0.1", "1", "+Inf"],
    "trading_order_submit_to_ack_latency_seconds": ["0.005", "0.05", "0.5", "+Inf"],
    "trading_order_signal_to_submit_latency_seconds": ["0.001", "0.01", "0.1", "+Inf"],
    "trading_order_slippage": ["-5", "0", "5", "+Inf"],
}
_SERIES = [
    dict(job=job, trading_mode=mode, instance=inst, symbol=symbol, side=side, venue=venue, strategy=strategy)
    for job, mode, inst in (("a", "paper", "a1"), ("a", "paper", "a2"), ("b", "live", "b1"), ("a", "backtest", "bt"))
    for symbol in ("AAPL", "BRK.B", "MSFT")
    for side in ("buy", "sell")
    for venue, strategy in (("x", "s1"), ("y", "s2"))
] + [dict(job="a", trading_mode="paper", instance="a1", otel_metric_overflow="true")]  # past the series limit


def _bucket_series() -> list[dict[str, str]]:
    """Every histogram's buckets for every set of labels: cumulative counters, each set with its own spread
    over the buckets and its own rate, one set's rate changing half-way (so that a 1m rate is not a 6h one)."""
    out = []
    for h, bounds in _HISTOGRAMS.items():
        for n, labels in enumerate(_SERIES):
            text = ",".join(f'{k}="{v}"' for k, v in labels.items())
            for i, le in enumerate(bounds):
                per_step = (n % 5 + 1) * (i + 1 + n % 3) if i < len(bounds) - 1 else (n % 5 + 1) * (len(bounds) + 3)
                values = f"0+{per_step}x20 {20 * per_step}+{per_step * (1 + n % 2)}x30"
                out.append({"series": f'{h}_bucket{{{text},le="{le}"}}', "values": values})
    return out


def _grafana_queries(dash: dict, symbol_all: str, symbols: list[str] | None) -> dict[tuple[str, str], str]:  # type: ignore[type-arg]
    """Each Prometheus target's query as Grafana sends it (tests/integration/grafana_eval.py) for services All
    (the overview) or "a" (the drill-down), live and paper, and Symbol All or ``symbols``."""
    variables = {
        "mode": Variable("mode", ["live", "paper"], True),
        "job": (
            Variable("job", ["$__all"], True, ".+")
            if dash["uid"] == "tradeobs-trading"
            else Variable("job", ["a"], False)
        ),
        "symbol": Variable("symbol", ["$__all"] if symbols is None else symbols, True, symbol_all),
        # the overview's slippage ranking (a query_result variable): of the three symbols here, every one with
        # slippage is in the top 10; tests/integration/test_dashboard_scale.py ranks 1,000 on a real Prometheus
        "slippage_top": Variable("slippage_top", ["$__all"], True, None, symbols or ["AAPL", "BRK.B", "MSFT"]),
    }
    datasources = yaml.safe_load((GRAFANA_DIR / "provisioning" / "datasources" / "datasources.yml").read_text())
    ev = Evaluator("http://127.0.0.1:1", "http://127.0.0.1:1", datasources["datasources"])
    end = 1_800_000_000.0
    start, _ = ev.time_range(dash, end)
    queries = ev.queries(dash, variables, start, end)
    return {(q.panel, q.ref): q.target["expr"] for q in queries if q.kind == "prometheus"}


@pytest.mark.parametrize("symbols", [None, ["AAPL", "BRK.B"], ["MSFT"]], ids=["All", "two", "one"])
def test_bucket_panels_show_what_they_showed_from_the_raw_buckets(tmp_path: Path, symbols: list[str] | None) -> None:
    """The latency and slippage panels read the recorded bucket rates (rules/recording.yml, tradeobs-dashboard-*)
    while Symbol is All, the raw buckets of the symbols picked otherwise: on promtool, with the services,
    modes, venues, strategies, sides and symbols above (a backtest and an overflow series among them, neither
    shown before), each query of the generated dashboards gives the values its query over the raw buckets gave
    (BEFORE_RECORDING, Symbol's All ".+" then) at the instants the rules ran, 1 to 9 minutes in."""
    from .helpers import require_binary

    overview = json.loads((GRAFANA_DIR / "dashboards" / "trading-overview.json").read_text())
    assert next(v["allValue"] for v in overview["templating"]["list"] if v["name"] == "symbol") == ".*"
    dashboards = {p.stem: json.loads(p.read_text()) for p in DASHBOARD_FILES}
    by_uid = {d["uid"]: d for d in dashboards.values()}
    old_dash: dict[str, dict] = {}  # type: ignore[type-arg]
    for t in BEFORE_RECORDING["targets"]:
        d = old_dash.setdefault(t["dashboard"], {**by_uid[t["dashboard"]], "panels": []})
        panel = next(p for p in by_uid[t["dashboard"]]["panels"] if p["title"] == t["panel"])
        target = next(x for x in panel["targets"] if x["refId"] == t["ref"])
        d["panels"].append({**panel, "targets": [{**target, "expr": t["expr"]}]})
    cases = []
    for uid, d in old_dash.items():
        old = _grafana_queries(d, BEFORE_RECORDING["symbol_all"], symbols)
        new = _grafana_queries(by_uid[uid], ".*", symbols)
        for key, old_expr in old.items():
            new_expr = new[key]
            assert ":rate1m" in new_expr, (uid, key, new_expr)  # it reads a recorded rate (both branches when picked)
            assert "$" not in old_expr + new_expr, (old_expr, new_expr)
            cases.append((uid, key, old_expr, new_expr))
    assert len(cases) == len(BEFORE_RECORDING["targets"]) == 14
    tests = []
    none_differ = [{"labels": "{}", "value": 0}]
    for t in ("1m", "2m30s", "5m", "6m15s", "9m"):
        for _uid, _key, old_expr, new_expr in cases:
            new, old = f"({new_expr})", f"({old_expr})"
            differ = f"(abs({new} - {old}) > 1e-9) or ({new} unless {old}) or ({old} unless {new})"
            tests += [
                {"expr": f"count({differ}) or vector(0)", "eval_time": t, "exp_samples": none_differ},
                # and it draws something: the comparison is not of two empty panels
                {"expr": f"count({old}) > bool 0", "eval_time": t, "exp_samples": [{"labels": "{}", "value": 1}]},
            ]
    test = {
        "rule_files": [str(PROM_DIR / "rules" / "recording.yml")],
        "evaluation_interval": "15s",
        "tests": [{"interval": "15s", "input_series": _bucket_series(), "promql_expr_test": tests}],
    }
    path = tmp_path / "bucket_panels_test.yml"
    path.write_text(yaml.safe_dump(test, width=100_000))
    res = subprocess.run(
        [require_binary("promtool"), "test", "rules", str(path)], capture_output=True, text=True, timeout=600
    )
    assert res.returncode == 0, (res.stdout + res.stderr)[:6000]


def test_no_panel_rates_raw_buckets_of_every_symbol_while_symbol_is_all() -> None:
    """At the dashboards' defaults (Symbol All), no panel query reads a histogram's raw buckets at every step:
    at 1,000 symbols that was 79,000 series a histogram, rated at each of a thousand steps of each refresh
    (2-25 s a panel, benchmarks/dashboard_queries.py). A raw bucket selector is allowed where it selects nothing
    while Symbol is All (the picked-symbols branch), reads one instant far after any sample (the exemplars'
    selector), or ranks over the whole range once (``@ end()``); or a histogram without a symbol (the event loop's
    lag: one set of buckets per process, tradeobs_agent.trading.instruments.SPECS)."""
    from tradeobs_agent.trading.instruments import SPECS

    per_process = {
        s.name.replace(".", "_") + ("_seconds" if s.unit == "s" else "") + "_bucket"
        for s in SPECS
        if s.kind == "histogram" and "symbol" not in s.attributes
    }
    assert "trading_eventloop_lag_seconds_bucket" in per_process
    raw_rate = re.compile(r"(?:rate|increase)\((\w+_bucket)\{([^}]*)\}\[([^\]]+)\]( @ end\(\))?\)")
    checked = 0
    for path in DASHBOARD_FILES:
        dash = json.loads(path.read_text())
        variables = {
            v["name"]: Variable(v["name"], ["$__all"] if v.get("includeAll") else ["x"], True, v.get("allValue"))
            for v in dash.get("templating", {}).get("list", [])
        }
        # the panels' targets, and the variables' queries (the slippage ranking, query_result: once per refresh)
        exprs = [(p["title"], t["refId"], t.get("expr", "")) for p in dash["panels"] for t in p.get("targets", [])]
        exprs += [(v["name"], "variable", str(v.get("query", ""))) for v in dash.get("templating", {}).get("list", [])]
        for title, ref, text in exprs:
            expr = Evaluator.interpolate(text, variables, "prometheus")
            for m in raw_rate.finditer(expr):
                checked += 1
                picked_only = 'tradeobs_symbols_picked!~".*"' in m.group(2)
                assert picked_only or m.group(4) or m.group(1) in per_process, (path.name, title, ref, m.group(0))
    assert checked >= 11


def _panel(dash: dict, title: str) -> dict:  # type: ignore[type-arg]
    (panel,) = [p for p in dash["panels"] if p["title"] == title]
    return panel  # type: ignore[no-any-return]


WAITING_PANELS = {  # title -> (the limit's recording rule, the alert that pages on it)
    "Oldest unacknowledged order by venue vs limit": (
        "tradeobs:limit_order_ack_age:seconds",
        "TradingOrdersUnacknowledged",
    ),
    "Event loop lag p99 vs limit": ("tradeobs:limit_eventloop_lag:seconds", "TradingEventLoopLagHigh"),
    "Event loop stall vs limit": ("tradeobs:limit_eventloop_stall:seconds", "TradingEventLoopStalled"),
}


def test_waiting_orders_and_the_event_loop_have_panels_with_the_alerts_limits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """trading_orders_unacknowledged, its oldest order's age and trading_eventloop_stall_seconds were in Prometheus,
    the alerts and the runbook only (and the loop's lag in no panel either): an on-call engineer paged by
    TradingOrdersUnacknowledged or TradingEventLoopStalled found nothing on the trading overview to see since when.
    Each panel with a limit draws the limit's recording rule (the series the alert compares with) and turns red from
    its value, read from limits.yml (a changed limit moves it too)."""
    rules = yaml.safe_load((PROM_DIR / "rules" / "trading.yml").read_text())
    alerts = {r["alert"]: r["expr"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    limits = (PROM_DIR / "rules" / "limits.yml").read_text()
    dash = json.loads((GRAFANA_DIR / "dashboards" / "trading-overview.json").read_text())
    count = _panel(dash, "Orders awaiting the venue's ack, by venue")
    assert [t["legendFormat"] for t in count["targets"]] == ["{{venue}}"]
    assert "trading_orders_unacknowledged{" in count["targets"][0]["expr"]
    for title, (record, alert) in WAITING_PANELS.items():
        panel = _panel(dash, title)
        # the alert compares with the same record (TradingOrdersUnacknowledged's age branch; it also fires on
        # orders expired unanswered, a branch with no limit to draw)
        assert re.search(rf"\)\s*> on \(\) group_left \(\) {re.escape(record)}\s*(\)|$)", alerts[alert]), alert
        assert panel["fieldConfig"]["defaults"]["unit"] == "s"
        assert [(t["expr"], t["legendFormat"]) for t in panel["targets"]][-1] == (record, "limit")
        (value,) = re.findall(rf"record: {re.escape(record)}\s+expr: vector\(([0-9.]+)\)", limits)
        steps = [s["value"] for s in panel["fieldConfig"]["defaults"]["thresholds"]["steps"]]
        assert steps == [None, float(value)], title
    assert "{{pid}}" in _panel(dash, "Event loop stall vs limit")["targets"][0]["legendFormat"]  # each worker's

    dashgen = load_dashgen()
    common = sys.modules["dashgen._common"]
    changed = tmp_path / "limits.yml"
    changed.write_text(
        limits.replace(
            "tradeobs:limit_order_ack_age:seconds\n        expr: vector(30)",
            "tradeobs:limit_order_ack_age:seconds\n        expr: vector(20)",
        )
    )
    assert changed.read_text() != limits
    monkeypatch.setattr(common, "LIMITS_RULES", changed)
    out = json.loads(dashgen.render(dashgen.DASHBOARDS["trading-overview.json"]))
    panel = _panel(out, "Oldest unacknowledged order by venue vs limit")
    assert [s["value"] for s in panel["fieldConfig"]["defaults"]["thresholds"]["steps"]] == [None, 20.0]


def test_waiting_order_and_stall_panels_add_up_workers_keep_the_worst_and_answer_0(tmp_path: Path) -> None:
    """Evaluated by promtool over series as a worker group's endpoint and OTLP instances export them: the count adds
    up strategies, instances and workers per venue and says 0 for a venue where none waits (a series at 0, not "no
    data"); the age is the worst; the stall is one line per process (pid); an instance that stopped is left out."""
    from .helpers import require_binary

    dash = json.loads((GRAFANA_DIR / "dashboards" / "trading-overview.json").read_text())
    expr = {
        t: _panel(dash, t)["targets"][0]["expr"] for t in (*WAITING_PANELS, "Orders awaiting the venue's ack, by venue")
    }
    a, b, old = 'job="otlp",instance="a"', 'job="otlp",instance="b"', 'job="otlp",instance="old"'
    series = [
        (f'trading_orders_unacknowledged{{{a},strategy="mm",venue="X"}}', "2x4"),
        (f'trading_orders_unacknowledged{{{a},strategy="arb",venue="X"}}', "1x4"),
        (f'trading_orders_unacknowledged{{{b},strategy="mm",venue="X"}}', "1x4"),
        (f'trading_orders_unacknowledged{{{b},strategy="mm",venue="Y"}}', "0x4"),
        (f'trading_orders_unacknowledged{{{old},strategy="mm",venue="Y"}}', "7x4"),  # stopped: its last values
        (f'trading_orders_oldest_unacknowledged_age_seconds{{{a},strategy="mm",venue="X"}}', "12x4"),
        (f'trading_orders_oldest_unacknowledged_age_seconds{{{a},strategy="arb",venue="X"}}', "41x4"),
        (f'trading_orders_oldest_unacknowledged_age_seconds{{{b},strategy="mm",venue="X"}}', "3x4"),
        (f'trading_orders_oldest_unacknowledged_age_seconds{{{b},strategy="mm",venue="Y"}}', "0x4"),
        (f'trading_orders_oldest_unacknowledged_age_seconds{{{old},strategy="mm",venue="Y"}}', "99x4"),
        (f"tradeobs_agent_stopped{{{old}}}", "1x4"),
        (f'trading_eventloop_stall_seconds{{{a},pid="11"}}', "0x4"),
        (f'trading_eventloop_stall_seconds{{{a},pid="12"}}', "0 15 30 45"),
        (f'trading_eventloop_lag_seconds_bucket{{{a},pid="11",le="0.1"}}', "0+10x4"),
        (f'trading_eventloop_lag_seconds_bucket{{{a},pid="11",le="+Inf"}}', "0+10x4"),
    ]
    cases = [
        (expr["Orders awaiting the venue's ack, by venue"], [('{venue="X"}', 4), ('{venue="Y"}', 0)]),
        (expr["Oldest unacknowledged order by venue vs limit"], [('{venue="X"}', 41), ('{venue="Y"}', 0)]),
        (
            expr["Event loop stall vs limit"],
            [('{job="otlp",instance="a",pid="11"}', 0), ('{job="otlp",instance="a",pid="12"}', 45)],
        ),
        (
            "round(" + expr["Event loop lag p99 vs limit"].replace("$__rate_interval", "2m") + ", 0.001)",
            [('{job="otlp",instance="a"}', 0.099)],
        ),
        ("tradeobs:limit_order_ack_age:seconds", [('{__name__="tradeobs:limit_order_ack_age:seconds"}', 30)]),
    ]
    test = {
        "interval": "1m",
        "input_series": [{"series": s, "values": v} for s, v in series],
        "promql_expr_test": [
            {
                "expr": e.replace("$job", "otlp").replace("$mode", "(live|paper)"),
                "eval_time": "3m",
                "exp_samples": [{"labels": labels, "value": want} for labels, want in samples],
            }
            for e, samples in cases
        ],
    }
    path = tmp_path / "waiting_panels_test.yml"
    rule_files = [str(PROM_DIR / "rules" / "recording.yml"), str(PROM_DIR / "rules" / "limits.yml")]
    path.write_text(yaml.safe_dump({"rule_files": rule_files, "evaluation_interval": "15s", "tests": [test]}))
    res = subprocess.run(
        [require_binary("promtool"), "test", "rules", str(path)], capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, res.stdout + res.stderr
