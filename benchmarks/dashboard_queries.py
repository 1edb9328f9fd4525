"""The heavy panel queries of the dashboards at 1,000 symbols, old query vs new, on the same Prometheus and data.

    python benchmarks/dashboard_queries.py --before REF [--rounds 3] [--soak 600] [--prometheus URL]

Starts the desk of tests/integration/desk_scale.py (2 real ``tradeobs demo`` services of 1,000 symbols, scraped
by Debian's Prometheus with the working tree's compose/prometheus rules, recording rules included), waits until
``--min-symbols`` symbols have orders and ``--soak`` seconds more (history: a range query's cost grows with the
part of its range that has data), then runs every Prometheus target of the generated dashboards as Grafana runs
it (tests/integration/grafana_eval.py: variables at their defaults, All; the default time range; the step of the
panel's width on a 1920 px screen), twice per round: the target as committed at ``--before`` (the old query) and
as in the working tree (the new one), one right after the other, alternating which goes first. Printed per
target whose query changed, and per other target slower than 0.5 s: the median over the rounds of each, and the
ratio (a ``query_result`` variable's query, run once per refresh before the panels that read it, as a row of
its own: "variable"); then the exemplar query Grafana sends for each target with exemplars
(``/api/v1/query_exemplars``, the same for both: it matches selectors, it does not evaluate the query).

Then whether the new query shows what the old one did: both at instants where the recording rules ran (the
timestamps of the recorded samples, so that a recorded 1m rate and the raw buckets' rate over 1m cover the same
window), the largest relative difference per target. (Exact equality on synthetic data:
tests/compose/test_dashboards.py, promtool; here a scrape that began before an evaluation and was appended
after it can make a few instants differ.)

And every rule group's ``evaluationTime`` (``/api/v1/rules``), polled every 5 s for ``--groups-for`` seconds
(each evaluation counted once): median, highest and the interval, and the evaluations Prometheus skipped
(``prometheus_rule_group_iterations_missed_total``).

Times are on this machine (2 shared cores, others' work included): compare the columns of one run. Results:
docs/deployment.md ("At 1,000 symbols").
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dashboard_panels import dashboards_at  # noqa: E402  (benchmarks/: the script's directory)
from rule_groups import run_phase  # noqa: E402

from tests.integration.desk_scale import DATASOURCES, start_desk  # noqa: E402
from tests.integration.grafana_eval import Evaluator, Query  # noqa: E402
from tests.integration.procs import http_get  # noqa: E402

Key = tuple[str, str, str]


def prom_get(url: str, path: str, params: dict[str, Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    status, body = http_get(f"{url}{path}?{urllib.parse.urlencode(params)}", timeout=300)
    elapsed = time.perf_counter() - t0
    data = json.loads(body)
    if status != 200 or data.get("status") != "success":
        raise RuntimeError(f"{path} {params.get('query', '')[:120]}: {status} {data.get('error', body[:200])}")
    return data["data"], elapsed


def run(url: str, q: Query) -> float:
    """The query's wall time; infinite when Prometheus gave up on it (its query timeout, 2 minutes)."""
    expr = q.target["expr"]
    try:
        if q.instant:
            _, secs = prom_get(url, "/api/v1/query", {"query": expr, "time": q.end})
        else:
            start = math.floor(q.start / q.step) * q.step
            params = {"query": expr, "start": start, "end": q.end, "step": q.step}
            _, secs = prom_get(url, "/api/v1/query_range", params)
    except RuntimeError as e:
        if "timed out" not in str(e):
            raise
        return math.inf
    return secs


def queries(url: str, dashboards: list[dict[str, Any]], now: float) -> dict[Key, Query]:
    """Every Prometheus target, variables at their defaults, the range ending at ``now``."""
    ev = Evaluator(url, "", DATASOURCES)
    out: dict[Key, Query] = {}
    for dash in dashboards:
        start, end = ev.time_range(dash, now)
        variables = ev.resolve_variables(dash, {}, start, end)
        for q in ev.queries(dash, variables, start, end):
            if q.kind == "prometheus":
                out[q.key] = q
    return out


def variable_times(url: str, dashboards: list[dict[str, Any]], now: float) -> dict[Key, float]:
    """Wall time of each ``query_result`` variable's query (the others are label lookups), keyed
    (dashboard, variable name, "variable")."""
    ev = Evaluator(url, "", DATASOURCES)
    out: dict[Key, float] = {}
    for dash in dashboards:
        start, end = ev.time_range(dash, now)
        variables = ev.resolve_variables(dash, {}, start, end)
        for v in dash.get("templating", {}).get("list", []):
            m = re.fullmatch(r"query_result\((.+)\)", str(v.get("query", "")), re.S)
            if m:
                t0 = time.perf_counter()
                try:
                    ev.query_result(m.group(1), variables, start, end)
                except TimeoutError:  # the evaluator's 2 minutes, Prometheus' query timeout
                    out[(dash["uid"], v["name"], "variable")] = math.inf
                    continue
                out[(dash["uid"], v["name"], "variable")] = time.perf_counter() - t0
    return out


def values(result: list[Any], instant: bool) -> dict[tuple[tuple[str, str], ...], float]:
    out = {}
    for s in result:
        v = float((s["value"] if instant else s["values"][-1])[1])
        if math.isfinite(v):
            out[tuple(sorted(s["metric"].items()))] = v
    return out


def eval_instants(url: str, recorded: str, n: int) -> list[float]:
    """The last ``n`` instants at which the rule recording ``recorded`` ran (its samples' timestamps)."""
    data, _ = prom_get(url, "/api/v1/query", {"query": f"{recorded}[10m]"})
    stamps = sorted({float(t) for s in data["result"] for t, _ in s["values"]})
    return stamps[-n - 1 : -1]  # not the very last: a scrape may still be on its way at it


def compare(url: str, old: Query, new: Query, at: list[float]) -> tuple[float, int]:
    """Largest relative difference of the two queries' values at ``at`` (instant queries), and values compared."""
    worst, compared = 0.0, 0
    for t in at:
        a, _ = prom_get(url, "/api/v1/query", {"query": old.target["expr"], "time": t})
        b, _ = prom_get(url, "/api/v1/query", {"query": new.target["expr"], "time": t})
        va, vb = values(a["result"], True), values(b["result"], True)
        if set(va) != set(vb):
            return math.inf, compared
        for k, x in va.items():
            compared += 1
            worst = max(worst, abs(vb[k] - x) / max(abs(x), 1e-12))
    return worst, compared


def rule_groups(url: str, seconds: float) -> None:
    times, _, missed, interval = run_phase(url, seconds)
    print(f"\nrule groups over {seconds:.0f} s: evaluations, evaluationTime median / max, interval, missed")
    for name in sorted(times, key=lambda n: -statistics.median(times[n])):
        t = times[name]
        print(
            f"  {name:40} {len(t):3}  {statistics.median(t):7.2f} s / {max(t):7.2f} s  of {interval[name]:.0f} s"
            f"  missed {missed.get(name, 0):.0f}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="git ref of the old dashboards, e.g. HEAD~3")
    parser.add_argument("--symbols", type=int, default=1000)
    parser.add_argument("--instances", type=int, default=2)
    parser.add_argument("--min-symbols", type=int, default=500)
    parser.add_argument("--orders-hz", type=float, default=100.0)
    parser.add_argument("--soak", type=float, default=600.0, help="seconds of history after --min-symbols")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--groups-for", type=float, default=120.0, help="seconds to poll the rule groups")
    parser.add_argument("--prometheus", help="a desk already up (its Prometheus URL) instead of starting one")
    args = parser.parse_args()
    if args.prometheus:
        return measure(args.prometheus, args)
    with (
        tempfile.TemporaryDirectory(prefix="dashqueries-") as tmp,
        start_desk(Path(tmp), instances=args.instances, symbols=args.symbols, orders_hz=args.orders_hz) as desk,
    ):
        n = desk.wait_for_symbols(args.min_symbols)
        time.sleep(args.soak)
        print(f"desk: {args.instances} services x {args.symbols} symbols, {n}+ with orders, {args.soak:.0f}s soaked")
        return measure(desk.prometheus.url, args)


def measure(url: str, args: argparse.Namespace) -> int:
    print(f"load average {os.getloadavg()[0]:.1f}; old = {args.before}, new = working tree")
    old_dash, new_dash = dashboards_at(args.before), dashboards_at(None)
    times: dict[Key, dict[str, list[float]]] = {}
    now = time.time()
    old_q, new_q = queries(url, old_dash, now), queries(url, new_dash, now)
    for i in range(args.rounds):
        now = time.time()
        old_q, new_q = queries(url, old_dash, now), queries(url, new_dash, now)
        for key, nq in new_q.items():
            oq = old_q.get(key)
            if oq is None or oq.target["expr"] == nq.target["expr"]:  # the same query: run once, count for both
                secs = run(url, nq)
                for name in ("old", "new") if oq is not None else ("new",):
                    times.setdefault(key, {}).setdefault(name, []).append(secs)
                continue
            pair = [("old", oq), ("new", nq)]
            for name, q in pair if i % 2 == 0 else pair[::-1]:
                times.setdefault(key, {}).setdefault(name, []).append(run(url, q))
        # query_result variables (Grafana runs each once per refresh, before the panels that read them)
        for key, secs in variable_times(url, new_dash, now).items():
            times.setdefault(key, {}).setdefault("new", []).append(secs)
    changed = {k for k in new_q if k in old_q and old_q[k].target["expr"] != new_q[k].target["expr"]}
    changed |= {k for k in times if k[2] == "variable"}
    print(f"\n{'dashboard / panel / target':78} {'old s':>7} {'new s':>7} {'old/new':>8}")
    rows = []
    for key, t in times.items():
        new_s = statistics.median(t["new"])
        old_s = statistics.median(t["old"]) if "old" in t else math.nan
        if key in changed or max(new_s, 0 if math.isnan(old_s) else old_s) > 0.5:
            rows.append((key, old_s, new_s))
    for key, old_s, new_s in sorted(rows, key=lambda r: -(r[1] if not math.isnan(r[1]) else r[2])):
        if math.isinf(old_s) or math.isinf(new_s):
            print(
                f"{key[0]} / {key[1][:52]} / {key[2]}: {'timed out' if math.isinf(old_s) else f'{old_s:.2f}'} old,"
                f" {'timed out' if math.isinf(new_s) else f'{new_s:.2f}'} new"
            )
            continue
        name = f"{key[0].removeprefix('tradeobs-')} / {key[1][:52]} / {key[2]}" + (" *" if key in changed else "")
        print(f"{name:78} {old_s:7.2f} {new_s:7.2f} {old_s / new_s:8.1f}")
    print("(* the query changed; medians of", args.rounds, "rounds)")
    for label in ("old", "new"):
        total = sum(statistics.median(t[label]) for t in times.values() if label in t)
        print(f"{label}: every Prometheus target of the three dashboards, summed: {total:.1f} s")

    print("\nexemplar queries (Grafana sends one per target with exemplars; the same selectors old and new):")
    for key in sorted(k for k, q in new_q.items() if q.exemplar):
        q = new_q[key]
        data, secs = prom_get(
            url, "/api/v1/query_exemplars", {"query": q.target["expr"], "start": q.start, "end": q.end + 60}
        )
        ex = sum(len(s["exemplars"]) for s in data)
        print(f"  {key[0].removeprefix('tradeobs-')} / {key[1][:52]} / {key[2]}: {secs:.2f} s, {ex} exemplars")

    print("\nold vs new at the instants the recording rules ran (largest relative difference, values compared):")
    instants: dict[str, list[float]] = {}
    # a target that reads a query_result variable (resolved at the range's end, now) is not comparable at a past
    # instant: tests/integration/test_dashboard_scale.py compares it over the same range, old and new
    by_variable = {(d["uid"], v["name"]) for d in new_dash for v in d.get("templating", {}).get("list", [])}
    by_variable = {k for k in by_variable if (k[0], k[1], "variable") in times}
    for key in sorted(k for k in changed if k[2] != "variable"):
        raw = next(
            t["expr"]
            for d in new_dash
            if d["uid"] == key[0]
            for p in d["panels"]
            if p["title"] == key[1]
            for t in p.get("targets", [])
            if t["refId"] == key[2]
        )
        if any(uid == key[0] and f"${name}" in raw for uid, name in by_variable):
            print(f"  {key[0].removeprefix('tradeobs-')} / {key[1][:52]} / {key[2]}: reads a query_result variable")
            continue
        # each rule group runs at its own offset in the interval: the instants of the rule the query reads
        # (a query that reads no recording, changed only by symbol!="": any recent instants will do)
        found = re.findall(r"\b\w+:\w+:\w+\b", new_q[key].target["expr"])
        recorded = found[0] if found else "job_venue:trading_order_submit_to_fill_latency_seconds_bucket:rate1m"
        if recorded not in instants:
            instants[recorded] = eval_instants(url, recorded, 4)
        worst, n = compare(url, old_q[key], new_q[key], instants[recorded])
        print(f"  {key[0].removeprefix('tradeobs-')} / {key[1][:52]} / {key[2]}: {worst:.2e} over {n} values")
    rule_groups(url, args.groups_for)
    return 0


if __name__ == "__main__":
    sys.exit(main())
