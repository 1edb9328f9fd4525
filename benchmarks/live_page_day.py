"""Does the live page stay bounded over a trading day left open? This tree's page against ``--before``'s.

    python benchmarks/live_page_day.py [--minutes 30] [--hz 50] [--orders-per-step 10] [--roll 1000:20]
                                       [--sample 60] [--drop-every 300] [--before 79bf192]

A trader opens the page in the morning and leaves it open all day (a crypto desk: all week). This runs a day fast:
the scenario service of the browser tests (``tests/e2e/live_server.py``: the real trading layer, the real hub, the
real stream) at ``--hz`` frames a second (10 on a real desk), ``--orders-per-step`` orders more every 100 ms, each
filled (an order and a fill event: 200 events a second at 10), and ``--roll LISTED:PER_S`` symbols that come and go
(``LISTED`` listed at any time, ``PER_S`` delisted a second and as many new ones listed: a desk of options and
futures that list, expire and roll). Every ``--drop-every`` seconds the server ends the stream (a laptop's Wi-Fi, a
proxy's timeout): the page reconnects and resumes. Debian's Chromium (Playwright, 1400x1000, the tests' flags) opens
this tree's page for ``--minutes``, then the page of ``--before`` (its ``live.js``, ``index.html``, ``live.css``,
read with ``git show`` and served in their place) for as long against a fresh server.

Every ``--sample`` seconds, over CDP: a garbage collection (``HeapProfiler.collectGarbage``), then
``Performance.getMetrics``: ``JSHeapUsedSize`` (the heap after the collection), ``Nodes`` (DOM nodes alive),
``JSEventListeners``, and ``ScriptDuration`` / ``LayoutDuration`` over the frames the page received since the
sample before (``script ms/frame``, ``layout ms/frame``). From the page (``window.__tradeobs``, what each version
exposes): frames, events, the symbols it holds chart rings for, and ``sizes()`` where it has one (every structure it
keeps, by count).

Prints a table per page; not a test (no thresholds). Results: docs/performance.md, "The live page over a day".
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from _ports import free_port
from live_page import CHROMIUM, CHROMIUM_ARGS, ROOT, STATIC, _wait_up

SERVER = ROOT / "tests" / "e2e" / "live_server.py"
METRICS = ("JSHeapUsedSize", "Nodes", "JSEventListeners", "ScriptDuration", "LayoutDuration", "LayoutCount")
PAGE = """() => {
  const T = window.__tradeobs;
  return { frames: T.frames, events: T.events, draws: T.draws, rings: Object.keys(T.ring.px).length,
    state: Object.keys((T.state || {}).symbols || {}).length, ids: T.eventIds.length,
    options: document.querySelectorAll('option').length, sizes: T.sizes ? T.sizes() : null };
}"""


def _post(url: str) -> None:
    with urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=10):
        pass


def _old_files(rev: str) -> dict[str, bytes]:
    return {
        name: subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{rev}:{STATIC}/{name}"], check=True, capture_output=True
        ).stdout
        for name in ("index.html", "live.js", "live.css")
    }


def _serve(body: bytes, kind: str) -> Any:
    return lambda route, request: route.fulfill(body=body, content_type=kind)


def run(args: argparse.Namespace, p: Any, tmp: str, old: dict[str, bytes] | None) -> list[dict[str, Any]]:
    port = free_port()
    cmd = [sys.executable, str(SERVER), str(port), "--symbols", str(args.symbols), "--hz", str(args.hz)]
    cmd += ["--orders-per-step", str(args.orders_per_step), "--event-buffer", "4096"]
    if args.roll:
        cmd += ["--roll", args.roll]
    if args.contract_strategies:
        cmd += ["--contract-strategies"]
    path = os.pathsep.join([str(ROOT / "agent"), str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    log = open(Path(tmp) / f"server-{port}.log", "wb")  # noqa: SIM115 - closed below, after the process
    proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    rows: list[dict[str, Any]] = []
    try:
        _wait_up(base + "/telemetry/snapshot", proc)
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            if old is not None:
                for name, body in old.items():
                    kind = {"html": "text/html", "js": "text/javascript", "css": "text/css"}[name.rsplit(".", 1)[1]]
                    path = "/telemetry/" if name == "index.html" else f"/telemetry/static/{name}"
                    page.route(base + path, _serve(body, kind))
            cdp = page.context.new_cdp_session(page)
            cdp.send("Performance.enable")
            page.goto(base + "/telemetry/")
            page.wait_for_function("() => window.__tradeobs && window.__tradeobs.frames > 10", timeout=60_000)
            t0 = last_drop = time.monotonic()
            prev: dict[str, Any] | None = None
            end = t0 + args.minutes * 60
            while True:
                rows.append(sample(page, cdp, time.monotonic() - t0, prev))
                prev = rows[-1]
                _print_row(rows[-1])
                if time.monotonic() >= end:
                    break
                nxt = min(end, time.monotonic() + args.sample)
                while time.monotonic() < nxt:
                    time.sleep(min(1.0, nxt - time.monotonic()))
                    if args.drop_every and time.monotonic() - last_drop >= args.drop_every:
                        _post(base + "/test/drop")
                        last_drop = time.monotonic()
        finally:
            browser.close()
    except BaseException:
        print((Path(tmp) / f"server-{port}.log").read_text()[-3000:], file=sys.stderr)
        raise
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()
    return rows


def sample(page: Any, cdp: Any, at: float, prev: dict[str, Any] | None) -> dict[str, Any]:
    cdp.send("HeapProfiler.collectGarbage")
    m = {x["name"]: x["value"] for x in cdp.send("Performance.getMetrics")["metrics"]}
    got = page.evaluate(PAGE)
    row = {"t": at, **{k: m.get(k, 0.0) for k in METRICS}, **got}
    frames = row["frames"] - (prev["frames"] if prev else 0)
    for key, name in (("script", "ScriptDuration"), ("layout", "LayoutDuration")):
        spent = row[name] - (prev[name] if prev else 0.0)
        row[key] = spent * 1000 / frames if prev and frames > 0 else float("nan")
    row["fps"] = frames / (at - prev["t"]) if prev and at > prev["t"] else float("nan")
    return row


HEAD = (
    "| minute | frames | events | heap after GC MB | DOM nodes | listeners | symbols held (rings) "
    "| script ms/frame | layout ms/frame | frames/s | page's own counts |"
)


def _print_row(r: dict[str, Any]) -> None:
    sizes = r["sizes"]
    keys = ("events", "seen", "strategies", "venues", "options", "charts")
    own = ", ".join(f"{k} {sizes[k]:,}" for k in keys) if sizes else f"ids {r['ids']:,}, options {r['options']:,}"
    print(
        f"| {r['t'] / 60:.1f} | {r['frames']:,} | {r['events']:,} | {r['JSHeapUsedSize'] / 2**20:.1f} "
        f"| {int(r['Nodes']):,} | {int(r['JSEventListeners']):,} | {r['state']:,} ({r['rings']:,}) "
        f"| {r['script']:.2f} | {r['layout']:.2f} | {r['fps']:.1f} | {own} |",
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=30.0, help="per page (default: %(default)s)")
    ap.add_argument("--symbols", type=int, default=10, help="symbols the scenario trades (default: %(default)s)")
    ap.add_argument("--hz", type=float, default=50.0, help="frames a second (default: %(default)s; a desk's: 10)")
    ap.add_argument("--orders-per-step", type=int, default=10, help="orders more every 100 ms (default: %(default)s)")
    ap.add_argument("--roll", default="1000:20", help="LISTED:PER_S symbols that come and go; '' for none")
    ap.add_argument(
        "--contract-strategies",
        action="store_true",
        help="those orders' fills of a strategy per contract, a new one a second",
    )
    ap.add_argument("--sample", type=float, default=60.0, help="seconds between samples (default: %(default)s)")
    ap.add_argument("--drop-every", type=float, default=300.0, help="seconds between stream drops; 0: none")
    ap.add_argument("--before", default="", help="git revision of the page to compare with ('': this tree's only)")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    per_contract = " (a strategy per contract, a new one a second)" if args.contract_strategies else ""
    print(
        f"Live page over a day: {args.minutes:g} min per page, {args.hz:g} frames/s, {args.symbols} symbols traded, "
        f"{args.orders_per_step} orders more per 100 ms{per_contract}, roll {args.roll or 'none'}, a drop every "
        f"{args.drop_every:g} s, a sample every {args.sample:g} s, {os.cpu_count()} CPUs shared with the server"
    )
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        pages: list[tuple[str, dict[str, bytes] | None]] = [("this tree", None)]
        if args.before:
            pages.append((f"before ({args.before})", _old_files(args.before)))
        for name, old in pages:
            print(f"\n{name}\n{HEAD}\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|", flush=True)
            run(args, p, tmp, old)


if __name__ == "__main__":
    main()
