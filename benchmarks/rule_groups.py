"""How long each rule group of compose's Prometheus takes to evaluate on a 1,000-symbol desk: rules before/after.

    python benchmarks/rule_groups.py --before REF [--phase 180] [--rounds 2] [--symbols 1000] [--instances 2]

Starts the desk of tests/integration/desk_scale.py (``--instances`` real ``tradeobs demo`` services of
``--symbols`` symbols each, scraped by Debian's Prometheus every 10 s, compose's global intervals), waits
until ``--min-symbols`` symbols have orders and 6 more minutes (so that every 5m rate has a full window), then
runs the rule files alternately (``--rounds`` times each) for ``--phase`` seconds: compose/prometheus/rules at
``--before`` (a git ref) and the working tree's. The same Prometheus, the same demos, the same data: the rule
files are swapped in a directory the config points to and Prometheus reloaded (``/-/reload``); alternating
spreads the machine's changing load over both sets.

Per phase, every ``evaluationTime`` Prometheus reports for each group and rule (``/api/v1/rules``, polled once
per evaluation interval, each evaluation counted once) and the increase of
``prometheus_rule_group_iterations_missed_total`` (evaluations skipped because the previous one still ran).
Printed side by side per group: median and highest duration over all phases of a set, the interval, and the
evaluations missed; then the slowest rules. Times are on this machine (2 shared cores, others' work included):
compare the columns of one run, not with your hardware. Results: docs/deployment.md ("At 1,000 symbols").
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.integration.desk_scale import start_desk  # noqa: E402
from tests.integration.procs import http_get  # noqa: E402

RULES = "compose/prometheus/rules"
WARMUP = 360.0  # the longest range of the trading rules (5m) plus a minute: every rate has a full window


def rules_at(ref: str | None, dest: Path) -> None:
    """compose/prometheus/rules at ``ref`` (None: the working tree) into ``dest`` (emptied first)."""
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    if ref is None:
        for f in sorted((REPO / RULES).glob("*.yml")):
            shutil.copy(f, dest / f.name)
        return
    names = subprocess.run(
        ["git", "ls-tree", "--name-only", ref, f"{RULES}/"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    for n in names:
        if n.endswith(".yml"):
            text = subprocess.run(["git", "show", f"{ref}:{n}"], cwd=REPO, capture_output=True, text=True, check=True)
            (dest / Path(n).name).write_text(text.stdout)


def reload(prom_url: str) -> None:
    req = urllib.request.Request(f"{prom_url}/-/reload", method="POST")
    with urllib.request.urlopen(req, timeout=30) as r:
        if r.status != 200:
            raise RuntimeError(f"reload: {r.status}")


def groups(prom_url: str) -> list[dict[str, object]]:
    status, body = http_get(f"{prom_url}/api/v1/rules", timeout=30)
    if status != 200:
        raise RuntimeError(f"/api/v1/rules: {status} {body[:200]!r}")
    return list(json.loads(body)["data"]["groups"])


def missed(prom_url: str) -> dict[str, float]:
    """prometheus_rule_group_iterations_missed_total per group name, from Prometheus' own /metrics."""
    status, body = http_get(f"{prom_url}/metrics", timeout=30)
    if status != 200:
        raise RuntimeError(f"/metrics: {status}")
    out: dict[str, float] = {}
    for line in body.decode().splitlines():
        if line.startswith("prometheus_rule_group_iterations_missed_total{"):
            labels, value = line.rsplit(" ", 1)
            name = labels.split('rule_group="', 1)[1].split('"', 1)[0].split(";", 1)[1]
            out[name] = out.get(name, 0.0) + float(value)
    return out


Phase = tuple[dict[str, list[float]], dict[str, list[float]], dict[str, float], dict[str, float]]


def run_phase(prom_url: str, seconds: float) -> Phase:
    """Durations per group and per rule ("group / rule") of every evaluation finished in the phase, evaluations
    missed per group in it, and each group's interval."""
    before = missed(prom_url)
    seen: set[tuple[str, str]] = set()
    per_group: dict[str, list[float]] = {}
    per_rule: dict[str, list[float]] = {}
    interval: dict[str, float] = {}
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for g in groups(prom_url):
            name, last = str(g["name"]), str(g["lastEvaluation"])
            interval[name] = float(g["interval"])  # type: ignore[arg-type]
            if last.startswith("0001-") or (name, last) in seen:
                continue
            seen.add((name, last))
            per_group.setdefault(name, []).append(float(g["evaluationTime"]))  # type: ignore[arg-type]
            for r in g["rules"]:  # type: ignore[attr-defined]
                per_rule.setdefault(f"{name} / {r['name']}", []).append(float(r["evaluationTime"]))
        time.sleep(5)
    after = missed(prom_url)
    missed_in_phase = {g: after.get(g, 0.0) - before.get(g, 0.0) for g in after}
    return per_group, per_rule, missed_in_phase, interval


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="git ref of the rules to compare with, e.g. c39f122~1")
    parser.add_argument("--symbols", type=int, default=1000)
    parser.add_argument("--instances", type=int, default=2)
    parser.add_argument("--min-symbols", type=int, default=500)
    parser.add_argument("--orders-hz", type=float, default=100.0)
    parser.add_argument("--phase", type=float, default=180.0, help="seconds each rule set runs, per round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--top", type=int, default=8, help="slowest rules to print")
    args = parser.parse_args()
    sets: dict[str, str | None] = {f"before ({args.before})": args.before, "after (working tree)": None}
    durations: dict[str, dict[str, list[float]]] = {s: {} for s in sets}
    rule_durations: dict[str, dict[str, list[float]]] = {s: {} for s in sets}
    missed_total: dict[str, dict[str, float]] = {s: {} for s in sets}
    intervals: dict[str, float] = {}
    names = list(sets)
    with (
        tempfile.TemporaryDirectory(prefix="rulegroups-") as tmp,
        start_desk(Path(tmp), instances=args.instances, symbols=args.symbols, orders_hz=args.orders_hz) as desk,
    ):
        # both sets copied now: the working tree may change while this runs
        snapshots = {name: Path(tmp) / f"set{i}" for i, name in enumerate(sets)}
        for name, ref in sets.items():
            rules_at(ref, snapshots[name])
        rules_dir = Path(tmp) / "rules"
        shutil.copytree(snapshots[names[0]], rules_dir)
        cfg = yaml.safe_load(desk.prometheus.config_file.read_text())
        cfg["rule_files"] = [str(rules_dir / "*.yml")]
        desk.prometheus.config_file.write_text(yaml.safe_dump(cfg, sort_keys=False))
        reload(desk.prometheus.url)
        n = desk.wait_for_symbols(args.min_symbols)
        print(
            f"desk: {args.instances} x {args.symbols} symbols, {n} with orders; warming up {WARMUP:.0f} s", flush=True
        )
        time.sleep(WARMUP)
        for rnd in range(args.rounds):
            for name in names:
                shutil.rmtree(rules_dir)
                shutil.copytree(snapshots[name], rules_dir)
                reload(desk.prometheus.url)
                time.sleep(20)  # the reload's first evaluations of the new groups: not this set's steady state
                per_group, per_rule, miss, interval = run_phase(desk.prometheus.url, args.phase)
                intervals.update(interval)
                for g, d in per_group.items():
                    durations[name].setdefault(g, []).extend(d)
                for r, d in per_rule.items():
                    rule_durations[name].setdefault(r, []).extend(d)
                for g, v in miss.items():
                    if g in per_group:  # a group of this set (the other set's removed groups keep their metric)
                        missed_total[name][g] = missed_total[name].get(g, 0.0) + v
                print(f"round {rnd + 1}, {name}: {sum(len(d) for d in per_group.values())} evaluations", flush=True)
        n = desk.symbols_with_orders()
    print(f"\n{n} symbols with orders at the end; {args.rounds} x {args.phase:.0f} s per rule set, alternating\n")
    head = f"{'rule group':38} {'interval':>8}"
    for name in names:
        head += f" | {name[:30]:>30}"
    print(head)
    print(f"{'':38} {'':>8}" + "".join(f" | {'evals  median    max  missed':>30}" for _ in names))
    for g in sorted({g for d in durations.values() for g in d}):
        line = f"{g:38} {intervals.get(g, 0):>7.0f}s"
        for name in names:
            evals = durations[name].get(g)
            if evals:
                skipped = missed_total[name].get(g, 0)
                line += f" | {len(evals):>5} {statistics.median(evals):>7.2f}s {max(evals):>5.2f}s {skipped:>7.0f}"
            else:
                line += f" | {'-':>30}"
        print(line)
    for name in names:
        print(f"\nslowest rules, {name} (median, max):")
        ranked = sorted(rule_durations[name].items(), key=lambda kv: -statistics.median(kv[1]))[: args.top]
        for rule, d in ranked:
            print(f"  {statistics.median(d):7.2f}s {max(d):6.2f}s  {rule}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
