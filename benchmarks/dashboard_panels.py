"""Every Grafana panel query of the generated dashboards against a 1,000-symbol desk: series, samples, time.

    python benchmarks/dashboard_panels.py [--before REF] [--symbols 1000] [--instances 2] [--min-symbols 800]

Starts the desk of tests/integration/desk_scale.py (``--instances`` real ``tradeobs demo`` services of
``--symbols`` symbols each, scraped by Debian's Prometheus with compose's rule files), waits until
``--min-symbols`` symbols have orders, then runs every Prometheus query of every panel as Grafana would
(variables at their defaults, All included; the dashboard's default range; the step Grafana picks for the
panel's width on a 1920 px screen): once for the dashboards committed at ``--before`` (a git ref, e.g.
the commit before the top-N panels) and once for the working tree's compose/grafana/dashboards, on the
same data, and prints per panel: series (lines, table rows, stat values), samples returned and the
query time (the sum over the panel's targets; the slowest of ``--repeat`` runs is not taken: the median).

The desk has run for minutes, not the 6 hours of the overview's default range: series counts are what a
desk sees, samples and times grow with the history (roughly linearly in it for the range queries).
Results: docs/deployment.md ("At 1,000 symbols").
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.integration.desk_scale import PanelQuery, measure_panels, panel_series, start_desk  # noqa: E402

DASHBOARDS = REPO / "compose" / "grafana" / "dashboards"


def dashboards_at(ref: str | None) -> list[dict[str, object]]:
    if ref is None:
        return [json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))]
    names = subprocess.run(
        ["git", "ls-tree", "--name-only", ref, "compose/grafana/dashboards/"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [
        json.loads(
            subprocess.run(["git", "show", f"{ref}:{n}"], cwd=REPO, capture_output=True, text=True, check=True).stdout
        )
        for n in sorted(names)
        if n.endswith(".json")
    ]


def per_panel(runs: list[list[PanelQuery]]) -> dict[tuple[str, str], tuple[str, int, int, float]]:
    """(dashboard, panel) -> (type, series, samples, median over runs of the summed query time)."""
    out: dict[tuple[str, str], tuple[str, int, int, float]] = {}
    keys = list(dict.fromkeys((r.dashboard, r.panel) for r in runs[0]))
    for key in keys:
        rows = [r for r in runs[-1] if (r.dashboard, r.panel) == key]
        times = [sum(r.seconds for r in run if (r.dashboard, r.panel) == key) for run in runs]
        out[key] = (
            rows[0].panel_type,
            panel_series(rows)[key],
            sum(r.samples for r in rows),
            statistics.median(times),
        )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", help="git ref whose committed dashboards to measure too")
    parser.add_argument("--symbols", type=int, default=1000)
    parser.add_argument("--instances", type=int, default=2)
    parser.add_argument("--min-symbols", type=int, default=500)
    parser.add_argument("--orders-hz", type=float, default=100.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--soak", type=float, default=0.0, help="seconds to keep trading after --min-symbols")
    parser.add_argument("--prometheus", help="measure against this running Prometheus (a desk already up) instead")
    args = parser.parse_args()
    sets = {"after": dashboards_at(None)}
    if args.before:
        sets = {"before": dashboards_at(args.before), **sets}
    if args.prometheus:
        results = {
            name: per_panel([measure_panels(args.prometheus, dash) for _ in range(args.repeat)])
            for name, dash in sets.items()
        }
    else:
        with (
            tempfile.TemporaryDirectory(prefix="dashpanels-") as tmp,
            start_desk(Path(tmp), instances=args.instances, symbols=args.symbols, orders_hz=args.orders_hz) as desk,
        ):
            n = desk.wait_for_symbols(args.min_symbols)
            if args.soak:
                time.sleep(args.soak)
                n = desk.symbols_with_orders()
            print(f"desk: {args.instances} services x {args.symbols} symbols, {n} symbols with orders; {desk.jobs}")
            results = {
                name: per_panel([measure_panels(desk.prometheus.url, dash) for _ in range(args.repeat)])
                for name, dash in sets.items()
            }
    keys = list(dict.fromkeys(k for r in results.values() for k in r))
    head = f"{'dashboard / panel':70} {'type':10}"
    for name in results:
        head += f" | {name + ' series':>14} {'samples':>9} {'ms':>7}"
    print(head)
    for key in keys:
        line = f"{(key[0].removeprefix('tradeobs-') + ' / ' + key[1])[:70]:70} "
        line += f"{next(r[key][0] for r in results.values() if key in r):10}"
        for r in results.values():
            if key in r:
                _, series, samples, secs = r[key]
                line += f" | {series:>14} {samples:>9} {secs * 1000:>7.0f}"
            else:
                line += f" | {'-':>14} {'-':>9} {'-':>7}"
        print(line)
    for name, r in results.items():
        worst = max(v[1] for v in r.values())
        print(
            f"{name}: {len(r)} panels, most series in one panel {worst}, panels over 50 series "
            f"{sum(v[1] > 50 for v in r.values())}, total query time {sum(v[3] for v in r.values()) * 1000:.0f} ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
