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
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from .desk_scale import Desk, PanelQuery, measure_panels, panel_series, start_desk
from .procs import REPO, prometheus_query, wait_for

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
