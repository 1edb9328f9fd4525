"""What a new worker pays at its start, with tradeobs and without, in one run: gunicorn ``--max-requests`` recycles
workers every few requests, and each new worker imports the app and runs ``init()`` again.

    python benchmarks/worker_start.py [--rounds 5] [--before HEAD~1]

Each row is a fresh process started the way gunicorn's master starts a worker's work (the master has imported
gunicorn and uvicorn, not the app: ``uvicorn`` is imported before the clock starts, the app's Starlette after),
timing what the worker then does before it can serve:

- ``bare``: the app (a Starlette app with one route), nothing else: the peer,
- ``prometheus_client mp``: the app plus prometheus_client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``; a
  counter and a histogram created and touched),
- ``tradeobs``: the app plus ``import tradeobs_agent`` and ``init()`` in a worker group (``TRADEOBS_MULTIPROCESS=on``,
  OTLP off, the live view on), with this tree, and with ``--before`` (``git archive`` of its ``agent/``);
  ``preimported``: this tree with ``import tradeobs_agent`` done in the master (a gunicorn config file that
  imports it), so the worker inherits the modules at the fork.

Every tradeobs row runs after one process of the same tree has already started in the same directory (as every
worker but the first does). Medians of ``--rounds``, rows taking turns so each sees the same machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import json, os, sys, time
import uvicorn  # the master's, before the fork
if sys.argv[1] == "tradeobs-pre":
    import tradeobs_agent  # gunicorn -c conf.py whose first line is this import: the master's too
t0 = time.perf_counter()
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
app = Starlette(routes=[Route("/", lambda r: PlainTextResponse("ok"))])
t1 = time.perf_counter()
kind = sys.argv[1]
if kind == "prom":
    from prometheus_client import Counter, Histogram
    c = Counter("orders", "orders", ["side"]); c.labels("buy").inc()
    h = Histogram("lat", "lat"); h.observe(0.1)
elif kind.startswith("tradeobs"):
    import tradeobs_agent
    t2 = time.perf_counter()
    tradeobs_agent.init(service_name="bench-worker", otlp=False, logs=tradeobs_agent.LogOptions(dir=""),
                        prometheus=tradeobs_agent.PrometheusOptions(port=0))
    t3 = time.perf_counter()
    print(json.dumps({"total": t3 - t0, "import": t2 - t1, "init": t3 - t2}))
    tradeobs_agent.shutdown()
    raise SystemExit
t3 = time.perf_counter()
print(json.dumps({"total": t3 - t0, "import": 0.0, "init": 0.0}))
"""


def run(kind: str, pythonpath: str, workdir: Path) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRADEOBS_", "OTEL_", "PROMETHEUS_"))}
    env.update(PYTHONPATH=pythonpath, TRADEOBS_MULTIPROCESS="on", TRADEOBS_MULTIPROCESS_DIR=str(workdir))
    if kind == "prom":
        (workdir / "prom").mkdir(exist_ok=True)
        env["PROMETHEUS_MULTIPROC_DIR"] = str(workdir / "prom")
    out = subprocess.run([sys.executable, "-c", CHILD, kind], env=env, check=True, capture_output=True, text=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--before", default="HEAD~1", help="the revision measured as the old code")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "old"
        old.mkdir()
        git = ["git", "-C", str(ROOT), "archive", args.before, "agent"]
        archive = subprocess.run(git, check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", str(old)], input=archive.stdout, check=True)
        rows = {
            "bare": ("bare", ""),
            "prometheus_client mp": ("prom", ""),
            f"tradeobs {args.before}": ("tradeobs", str(old / "agent")),
            "tradeobs now": ("tradeobs", str(ROOT / "agent")),
            "tradeobs now, preimported": ("tradeobs-pre", str(ROOT / "agent")),
        }
        dirs = {name: Path(tempfile.mkdtemp(dir=tmp)) for name in rows}
        for name, (kind, path) in rows.items():
            if kind.startswith("tradeobs"):
                run(kind, path, dirs[name])  # the group's first worker
        got: dict[str, list[dict[str, float]]] = {name: [] for name in rows}
        for _ in range(args.rounds):
            for name, (kind, path) in rows.items():
                got[name].append(run(kind, path, dirs[name]))
    base = statistics.median(r["total"] for r in got["bare"])
    print(f"worker start, median of {args.rounds} (s); load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'worker':<28}{'total':>8}{'import':>8}{'init()':>8}{'x bare':>8}{'+ bare':>8}")
    for name, rs in got.items():
        med = {k: statistics.median(r[k] for r in rs) for k in ("total", "import", "init")}
        row = f"{med['total']:>8.3f}{med['import']:>8.3f}{med['init']:>8.3f}"
        print(f"{name:<28}{row}{med['total'] / base:>8.1f}{med['total'] - base:>8.3f}")
    now, before = (statistics.median(r["init"] for r in got[k]) for k in ("tradeobs now", f"tradeobs {args.before}"))
    print(f"init() now / before: {now / before:.2f}")


if __name__ == "__main__":
    main()
