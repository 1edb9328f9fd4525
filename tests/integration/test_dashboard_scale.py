"""The dashboards stay readable on a desk of 1,000 symbols: no panel draws hundreds of lines or rows.

    2 x tradeobs demo --symbols 1000 (the real agent, orders flowing)
        <-- Debian Prometheus, compose's rule files, each service scraped as job desk/<service> (honor_labels)
    every Prometheus query of every panel of compose/grafana/dashboards, as Grafana runs it
    (tests/integration/desk_scale.py, grafana_eval.py): variables at their defaults (All), default time range

Bound: :data:`MAX_SERIES` lines (time series, heatmap: its buckets), values (stat) or rows (table) per
panel. 50 is past what a legend, a tooltip or a colour palette tells apart, and Grafana draws and keeps
every series of every viewer's every refresh: the dashboards generated before the top-N panels drew 1,000
lines (market data staleness, feed lag), 743 (orders by symbol and side), 619 (P&L by symbol) and a table
of 2,322 rows (positions), all under the default "All". A panel whose title promises a number of symbols
("top 10", "5 best and 5 worst", "the 25 largest") must draw no more symbols than that, and draw some.
Query times are printed (benchmarks/dashboard_panels.py compares them before and after), not asserted.
"""

from __future__ import annotations

import json
import math
import re
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .desk_scale import DATASOURCES, Desk, PanelQuery, measure_panels, panel_series, start_desk
from .grafana_eval import Evaluator, Query, Variable
from .procs import REPO, http_get, prometheus_query, wait_for

pytestmark = pytest.mark.integration

DASHBOARDS = sorted((REPO / "compose" / "grafana" / "dashboards").glob("*.json"))
SYMBOLS = 1000
# Symbols with orders before measuring: orders pick symbols at random, so 500 of 1,000 is reached
# within a couple of minutes at 100 orders/s per service; every symbol ticks (staleness, feed lag) at once.
MIN_SYMBOLS_WITH_ORDERS = 500
MAX_SERIES = 50
# Failure deadline for the top-N panels to draw (a fresh desk's series need a few scrapes): measures nothing.
PANELS_DEADLINE = 300.0


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    with start_desk(tmp_path_factory.mktemp("desk"), instances=2, symbols=SYMBOLS, orders_hz=100) as d:
        d.wait_for_symbols(MIN_SYMBOLS_WITH_ORDERS)
        yield d


def _promised(title: str) -> int | None:
    """How many symbols a title promises ("top 10 symbols", "5 best and 5 worst", "the 25 largest"), if any."""
    if not re.search(r"\b(top|best|worst|largest|stalest|highest|most)\b", title):
        return None
    numbers = [int(n) for n in re.findall(r"\b(\d+)\b", title)]
    return sum(numbers) or None


def test_no_panel_draws_more_than_a_person_can_read_at_1000_symbols(desk: Desk) -> None:
    # the desk is the size this is about: every symbol ticks, most have orders, both services report
    staleness = prometheus_query(desk.prometheus.url, "count(count by (symbol) (trading_marketdata_staleness_seconds))")
    assert int(float(staleness[0]["value"][1])) == SYMBOLS
    assert desk.symbols_with_orders() >= MIN_SYMBOLS_WITH_ORDERS
    dashboards = [json.loads(Path(p).read_text()) for p in DASHBOARDS]

    def measured() -> list[PanelQuery] | None:
        """Every panel's queries, once the panels that promise symbols draw some (a desk minutes old can
        still lack the samples a panel's rate needs: then measure again, until the failure deadline)."""
        rows = measure_panels(desk.prometheus.url, dashboards)
        drawn = {(r.dashboard, r.panel) for r in rows if r.symbols}
        return rows if all(key in drawn for key in panel_series(rows) if _promised(key[1])) else None

    rows = wait_for(
        measured, "the top-N panels to draw symbols", timeout=PANELS_DEADLINE, interval=10, procs=tuple(desk.procs)
    )
    assert not [r for r in rows if r.error], [(r.panel, r.ref, r.error) for r in rows if r.error]
    drawn = panel_series(rows)
    for r in sorted(rows, key=lambda r: -r.seconds)[:10]:
        print(f"slowest: {r.dashboard} / {r.panel} / {r.ref}: {r.series} series, {r.samples} samples, {r.seconds:.2f}s")
    too_many = {f"{d} / {p}": n for (d, p), n in drawn.items() if n > MAX_SERIES}
    assert not too_many, f"panels drawing more than {MAX_SERIES} series/rows at {SYMBOLS} symbols: {too_many}"

    promises = {key: _promised(key[1]) for key in drawn}
    promises = {k: n for k, n in promises.items() if n is not None}
    assert len(promises) >= 7, promises  # the per-symbol panels of the overview say how many they show
    for (dash, panel), n in promises.items():
        symbols = frozenset().union(*(r.symbols for r in rows if (r.dashboard, r.panel) == (dash, panel)))
        assert 0 < len(symbols) <= n, f"{dash} / {panel}: promises {n} symbols, draws {len(symbols)}"


# ---------------------------------------------------------------- the slippage panels, before and after

SLIPPAGE_BEFORE = json.loads((REPO / "tests" / "compose" / "data" / "slippage_panels_before.json").read_text())
TOP = 10


def _slippage(ev: Evaluator, choose: dict[str, Any], end: float) -> tuple[dict[tuple[str, str], Query], ...]:
    """The slippage panels' targets A and B as generated now and as they were (SLIPPAGE_BEFORE), as Grafana sends
    them for ``choose`` (the overview; the drill-down for its first service) over the 10 minutes ending at ``end``."""
    old: dict[tuple[str, str], Query] = {}
    new: dict[tuple[str, str], Query] = {}
    for path in DASHBOARDS:
        # the last 10 minutes instead of the default 6 h: the same queries over less history and a few dozen steps,
        # so that the old query, the slow one, answers within Prometheus' 2 minutes on a loaded machine
        dash = {**json.loads(Path(path).read_text()), "time": {"from": "now-10m", "to": "now"}}
        mine = [t for t in SLIPPAGE_BEFORE["targets"] if t["dashboard"] == dash["uid"]]
        before = {(t["panel"], t["ref"]): t["expr"] for t in mine}
        if not before:
            continue
        start, _ = ev.time_range(dash, end)
        pick = dict(choose)
        if dash["uid"] == "tradeobs-order":
            pick.setdefault("job", ev.resolve_variables(dash, {}, start, end)["job"].options[0])
        variables = ev.resolve_variables(dash, pick, start, end)
        old_dash = {
            **dash,
            "panels": [
                {
                    **p,
                    "targets": [
                        {**t, "expr": before[(p["title"], t["refId"])]}
                        for t in p["targets"]
                        if (p["title"], t["refId"]) in before
                    ],
                }
                for p in dash["panels"]
                if any((p["title"], t["refId"]) in before for t in p.get("targets", []))
            ],
        }
        for q in ev.queries(old_dash, variables, start, end):
            if (q.panel, q.ref) in before:
                old[(dash["uid"], f"{q.panel} / {q.ref}")] = q
        for q in ev.queries(dash, variables, start, end):
            if (q.panel, q.ref) in before:
                new[(dash["uid"], f"{q.panel} / {q.ref}")] = q
    assert len(old) == len(new) == len(SLIPPAGE_BEFORE["targets"]) == 4, (sorted(old), sorted(new))
    return old, new


def _points(ev: Evaluator, q: Query, until: float) -> dict[str, dict[float, str]]:
    """Each series the range query draws (by its symbol, or "" for one without) -> {time: value} up to ``until``."""
    series = ev.run(q)
    return {s["metric"].get("symbol", ""): {float(t): v for t, v in s["values"] if float(t) <= until} for s in series}


def _same(a: str, b: str) -> bool:
    x, y = float(a), float(b)
    return (math.isnan(x) and math.isnan(y)) or abs(x - y) <= 1e-9 * max(abs(x), abs(y), 1e-12)


@pytest.mark.parametrize("pick", [None, 20], ids=["All", "20 symbols picked"])
def test_slippage_panels_draw_what_they_drew_and_read_only_the_symbols_they_draw(desk: Desk, pick: int | None) -> None:
    """At 1,000 symbols the overview's "10 symbols of highest p95" panel ranked inside its query (``<quantiles> and
    on (symbol) topk(10, ...)``): Prometheus computed every symbol's quantiles from 36,000 recorded bucket series at
    each step to keep ten, 18-25 s a refresh (benchmarks/dashboard_queries.py). The ranking is now the hidden
    variable slippage_top (the same topk, run once as a query_result at the end of the range) and the panel selects
    those symbols by name; the drill-down reads job:trading_order_slippage_bucket:rate1m while Symbol is All. On
    this desk (compose's rules), each target as Grafana sends it draws the same symbols with the same values at
    every step as the query it replaced, and every selector in the overview panel's targets selects at most ten
    symbols (the old query's selected all 1,000)."""
    ev = Evaluator(desk.prometheus.url, "", DATASOURCES)
    choose: dict[str, Any] = {}
    if pick:
        dash = json.loads((REPO / "compose" / "grafana" / "dashboards" / "trading-overview.json").read_text())
        now = time.time()
        start, _ = ev.time_range(dash, now)
        choose["symbol"] = ev.resolve_variables(dash, {}, start, now)["symbol"].options[:pick]

    def recorded() -> bool:
        """The slippage rules (every 60 s) record more than ten symbols, and ran 4 minutes ago already: the points
        compared below end 3 minutes ago."""
        per_symbol = "count(count by (symbol) (job_symbol:trading_order_slippage_bucket:rate1m))"
        earlier = "count(count_over_time(job:trading_order_slippage_bucket:rate1m[6m] offset 4m))"
        return all(
            (res := prometheus_query(desk.prometheus.url, expr)) and float(res[0]["value"][1]) >= n
            for expr, n in ((per_symbol, TOP + 1), (earlier, 1))
        )

    # a failure deadline: a loaded machine skips evaluations of the 60 s groups
    wait_for(recorded, "the slippage rules to run", timeout=3 * PANELS_DEADLINE, interval=10)
    # the range's end: a whole second (Grafana's variable query runs at the end rounded up to a second, and the
    # panels' ``@ end()`` is that end), a minute ago: a scrape stamped before it but appended after the variable's
    # query (a 1,000-symbol scrape takes seconds) would change the ranking between the old query and the new
    end = float(int(time.time()) - 60)
    old, new = _slippage(ev, choose, end)
    # a point in the last two minutes could read the per-symbol rate of an evaluation whose sum over symbols (the
    # drill-down's, the next rule of the group) was not yet appended
    until = end - 120
    for key, q in new.items():
        before, after = _points(ev, old[key], until), _points(ev, q, until)
        assert set(after) == set(before), (key, sorted(before), sorted(after))
        assert sum(len(v) for v in before.values()) > 0, key
        differ = [
            (sym, t, before[sym][t], after[sym].get(t))
            for sym in before
            for t in before[sym]
            if t not in after[sym] or not _same(before[sym][t], after[sym][t])
        ]
        assert not differ and all(set(after[s]) == set(before[s]) for s in before), (key, differ[:5])
        if key[0] == "tradeobs-trading":
            assert len(after) == TOP, (key, sorted(after))
            assert "and on" not in q.target["expr"], q.target["expr"]
            for selector in re.findall(r"\b[a-z_:]+\{[^}]*\}", q.target["expr"]):
                res = prometheus_query(desk.prometheus.url, f"count(count by (symbol) ({selector}))")
                assert res and int(float(res[0]["value"][1])) <= TOP, (key, selector, res)
    print(f"slippage panels ({pick or 'All'}): {sorted(new)} drew the same symbols and values as before")


# ---------------------------------------------------------------- the order-count panels, before and after

ORDERS_BEFORE = json.loads((REPO / "tests" / "compose" / "data" / "order_panels_before.json").read_text())
# The 'Orders (time range)' stat: what the day counted, exactly, across restarts (docs/runbook.md, 'End of day'). It
# needs each raw series' own last samples, in and before the range (a recorded sum per instance would count what the
# rule saw at its evaluations, up to a minute off at each end of the range): one instant query per refresh.
EXACT_COUNTS = "Orders (time range): sent, filled, rejected, cancelled"
ORDERS_RULE = "job_strategy_venue:trading_orders_submitted:rate1m"


def _order_instruments() -> list[str]:
    """The Prometheus name prefixes of the agent's instruments with a series per order attribute set (symbol, side,
    order type, strategy, venue: thousands of series a service at 1,000 symbols), counters and histograms."""
    from tradeobs_agent.trading.instruments import ORDER_ATTRS, SPECS

    per_order = [s for s in SPECS if set(ORDER_ATTRS) <= set(s.attributes) and s.kind != "gauge"]
    return sorted(s.name.replace(".", "_") for s in per_order)


def _raw_range_reads(dash: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(panel or variable, ref, selector) of every selector of a raw order series over a range (``[...]``) in the
    dashboard's panel targets and query_result variables, variables at their defaults (All), but the branch that
    reads the raw series of the symbols picked (it selects nothing at All: _common.SYMBOL_PICKED)."""
    names = "|".join(_order_instruments())
    selector = re.compile(rf"\b((?:{names})\w*\{{([^}}]*)\}}\[[^\]]+\])")
    variables = {
        v["name"]: Variable(v["name"], ["$__all"] if v.get("includeAll") else ["x"], True, v.get("allValue"))
        for v in dash.get("templating", {}).get("list", [])
    }
    exprs = [(p["title"], t["refId"], t.get("expr", "")) for p in dash["panels"] for t in p.get("targets", [])]
    exprs += [(v["name"], "variable", str(v.get("query", ""))) for v in dash.get("templating", {}).get("list", [])]
    out = []
    for title, ref, text in exprs:
        for m in selector.finditer(Evaluator.interpolate(text, variables, "prometheus")):
            if 'tradeobs_symbols_picked!~".*"' not in m.group(2):
                out.append((title, ref, m.group(1)))
    return out


def test_no_panel_reads_the_raw_order_series_over_a_range_while_symbol_is_all() -> None:
    """At 1,000 symbols an order counter or histogram has thousands of series a service (symbol x side x order type x
    strategy x venue x instance). The order-count panels rated them at every step of every refresh (4-17 s a panel
    on a desk 35 minutes old), the slippage and orders rankings read them over the whole range once a refresh (5.9 s
    at 35 minutes for slippage, growing with the range), and both grow with symbols x range. At the dashboards'
    defaults no panel target and no ranking variable of the overview and the drill-down reads one over a range now,
    but the 'Orders (time range)' stat (exact counts, an instant query) and the picked-symbols branches."""
    assert "trading_orders_submitted" in _order_instruments() and "trading_order_slippage" in _order_instruments()
    reads = {}
    for path in DASHBOARDS:
        dash = json.loads(Path(path).read_text())
        if dash["uid"] in ("tradeobs-trading", "tradeobs-order"):
            reads[dash["uid"]] = [r for r in _raw_range_reads(dash) if r[0] != EXACT_COUNTS]
    assert set(reads) == {"tradeobs-trading", "tradeobs-order"}
    assert not any(reads.values()), reads


def _instants(prom_url: str, rule: str, since: float, until: float) -> tuple[list[float], int]:
    """The instants in [since, until] at which ``rule`` ran (its samples' timestamps) while no scrape of the desk
    was in flight, and how many were left out for one. A rule reads the raw samples appended when it runs;
    a scrape stamped before the instant (its start) but appended after (a 1,000-symbol scrape takes seconds) is in
    the raw query afterwards and not in the recording: at such an instant the two differ by that scrape."""
    window = f"[{int(time.time() - since) + 60}s]"
    recorded = prometheus_query(prom_url, f"{rule}{window}")
    stamps = sorted({float(t) for s in recorded for t, _ in s["values"] if since <= float(t) <= until})
    scrapes = [
        (float(t), float(v))
        for s in prometheus_query(prom_url, f'scrape_duration_seconds{{job=~"desk/.*"}}{window}')
        for t, v in s["values"]
    ]
    # in flight: started at or before the instant, ended (appended: a second for the append after the body) after it
    clean = [t for t in stamps if not any(start <= t < start + took + 1.0 for start, took in scrapes)]
    return clean, len(stamps) - len(clean)


def _values(prom_url: str, expr: str, at: float) -> dict[tuple[tuple[str, str], ...], float]:
    q = urllib.parse.urlencode({"query": expr, "time": at})
    status, body = http_get(f"{prom_url}/api/v1/query?{q}", timeout=120)
    data = json.loads(body)
    assert status == 200 and data["status"] == "success", (expr, body[:300])
    out = {}
    for s in data["data"]["result"]:
        v = float(s["value"][1])
        if math.isfinite(v):
            out[tuple(sorted((k, x) for k, x in s["metric"].items() if k != "__name__"))] = v
    return out


def test_order_panels_draw_what_the_raw_counters_drew(desk: Desk) -> None:
    """The order-count panels of the overview (orders /s, by service, by strategy and venue, by symbol and side;
    rejects by reason; turnover; the fill and reject ratio stats) and the drill-down's fill ratio read recorded rates
    (compose/prometheus/rules/dashboard_orders.yml; the ratio stats the 5m rates the alerts read) instead of the raw
    counters at every step. On the 1,000-symbol desk, at the instants the rules ran, each target as Grafana sends it
    gives what its old query over the raw counters (ORDERS_BEFORE) gives, to 1e-9: the same series (by their labels),
    the same values. The per-symbol panel draws the ten symbols of its ranking (orders_top, from the recorded
    per-symbol rate) with the raw counters' values of those symbols. Instants where a scrape was in flight when the
    rule ran are left out (:func:`_instants`); the rankings themselves are compared (printed), not asserted: from the
    recorded rates they may pick a different ten where symbols are close (docs/deployment.md)."""
    ev = Evaluator(desk.prometheus.url, "", DATASOURCES)

    def recorded() -> bool:
        """Six evaluations of the order rules (every 60 s) with data: the compared instants end 90 s ago."""
        res = prometheus_query(desk.prometheus.url, f"max(count_over_time({ORDERS_RULE}[8m]))")
        return bool(res) and float(res[0]["value"][1]) >= 6

    wait_for(recorded, "the order rules to run", timeout=3 * PANELS_DEADLINE, interval=10, procs=tuple(desk.procs))
    end = float(int(time.time()))
    instants: dict[str, list[float]] = {}
    compared = 0
    for path in DASHBOARDS:
        dash = json.loads(Path(path).read_text())
        before = {(t["panel"], t["ref"]): t["expr"] for t in ORDERS_BEFORE["targets"] if t["dashboard"] == dash["uid"]}
        if not before:
            continue
        start, _ = ev.time_range(dash, end)
        pick: dict[str, Any] = {}
        if dash["uid"] == "tradeobs-order":
            pick["job"] = ev.resolve_variables(dash, {}, start, end)["job"].options[0]
        variables = ev.resolve_variables(dash, pick, start, end)
        old_dash = {
            **dash,
            "panels": [
                {
                    **p,
                    "targets": [
                        {**t, "expr": before[(p["title"], t["refId"])]}
                        for t in p["targets"]
                        if (p["title"], t["refId"]) in before
                    ],
                }
                for p in dash["panels"]
                if any((p["title"], t["refId"]) in before for t in p.get("targets", []))
            ],
        }
        old = {(q.panel, q.ref): q for q in ev.queries(old_dash, variables, start, end)}
        new = {(q.panel, q.ref): q for q in ev.queries(dash, variables, start, end) if (q.panel, q.ref) in before}
        assert set(new) == set(old) == set(before), (sorted(new), sorted(before))
        for key, q in new.items():
            old_expr, new_expr = old[key].target["expr"], q.target["expr"]
            # the instants the rule it reads ran (the ratio stats read the alerts' 5m rates, every 15 s)
            rule = re.findall(r"\b\w+:\w+:\w+\b", new_expr)[0]
            if rule not in instants:
                instants[rule], in_flight = _instants(desk.prometheus.url, rule, end - 480, end - 90)
                print(f"{rule}: {len(instants[rule])} instants compared, {in_flight} left out (a scrape in flight)")
                assert len(instants[rule]) >= 2, (rule, instants[rule], in_flight)
            if key[0] == "Orders /s":  # the stat: the last minute's rate now (tests/compose/test_dashboards.py)
                old_expr = re.sub(r"\[[0-9ms]+\]", "[1m]", old_expr)
            if " and on (symbol) " in old_expr:  # the per-symbol panel: its ranking is the variable orders_top now
                symbols = variables["orders_top"].options
                assert len(symbols) == TOP, symbols
                old_expr = old_expr.split(" and on (symbol) ")[0]
            for t in instants[rule]:
                a, b = _values(desk.prometheus.url, old_expr, t), _values(desk.prometheus.url, new_expr, t)
                if " and on (symbol) " in old[key].target["expr"]:
                    a = {k: v for k, v in a.items() if dict(k)["symbol"] in symbols}
                    assert {dict(k)["symbol"] for k in b} <= set(symbols), (key, sorted(b))
                assert set(a) == set(b), (key, t, sorted(set(a) ^ set(b))[:5])
                differ = [(k, a[k], b[k]) for k in a if abs(a[k] - b[k]) > 1e-9 * max(abs(a[k]), 1.0)]
                assert not differ, (key, t, differ[:5])
                compared += len(a)
    assert compared > 0

    # the rankings, printed: from the recorded rates (now) against the raw series' (the old panels' rankings)
    dash = json.loads((REPO / "compose" / "grafana" / "dashboards" / "trading-overview.json").read_text())
    start, _ = ev.time_range(dash, end)
    variables = ev.resolve_variables(dash, {}, start, end)
    overview = [t for t in ORDERS_BEFORE["targets"] + SLIPPAGE_BEFORE["targets"] if t["dashboard"] == dash["uid"]]
    raw_rank = {
        "orders_top": next(t["expr"] for t in overview if t["panel"].startswith("Orders /s by symbol")),
        "slippage_top": next(t["expr"] for t in overview if t["panel"].startswith("Slippage")),
    }
    for name, old_expr in raw_rank.items():
        rank = ev.intervals(
            ev.interpolate(old_expr.split(" and on (symbol) ")[1], variables, "prometheus"), ev.scrape, end - start
        )
        raw = {dict(k)["symbol"] for k in _values(desk.prometheus.url, rank, math.ceil(end))}
        ten = set(variables[name].options)
        assert len(ten) == TOP, (name, sorted(ten))
        print(f"{name}: {len(ten & raw)} of {TOP} as from the raw series; only recorded {sorted(ten - raw)},")
        print(f"  only raw {sorted(raw - ten)}")
