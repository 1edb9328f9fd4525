"""Does the live page keep up with 10 Hz frames at 1,000 symbols? The page now against the page before issue 15.

    python benchmarks/live_page.py [--symbols 1000] [--seconds 20] [--rounds 2] [--before f6a41fa]

One server process runs the demo's trading engine (``tradeobs_agent.demo``: ``--symbols`` symbols, every one
ticking at 10 Hz, 20 orders/s) and one live stream (10 Hz frames). It serves the page of this checkout at
``/telemetry/`` and the page of ``--before`` (its ``index.html``, ``live.js``, ``live.css``, read with
``git show``; the same vendored uPlot) at ``/before/``, both on the same live app, so both pages read the
same stream from the same hub in the same run. Debian's Chromium (Playwright, 1400x1000, the flags of
``tests/e2e/conftest.py``) opens one page at a time for ``--seconds``, alternating ``--rounds`` times.

Measured inside the page, with the same script injected into both pages before they load:

* ``frame handler``: ``performance.now()`` around each ``event: frame`` listener call (parse, merge, record);
* ``render``: around each ``requestAnimationFrame`` callback plus the microtasks it queued (uPlot draws in
  one), i.e. the DOM and chart updates one frame causes;
* ``main thread / frame``: Chrome's ``TaskDuration`` (``Performance.getMetrics`` over CDP: the wall time of
  all main-thread tasks, layout and paint included) and ``ThreadTime`` (the main thread's CPU time, which a
  busy machine inflates less) divided by the frames received; ``renderer CPU`` is ``ProcessTime`` (all the
  renderer's threads: raster and compositing too);
* ``frame age``: the page's clock when the handler ran minus the server's timestamp in the frame (how far
  behind the page reads);
* ``frames/s``: frames handled per second (10 = keeping up; the server skips frames for a client whose
  socket is full, so a page that falls behind receives fewer).

Prints a table; not a test (no thresholds). Results: docs/live.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from _ports import free_port

ROOT = Path(__file__).resolve().parents[1]
STATIC = "agent/tradeobs_agent/live/static"
CHROMIUM = os.environ.get("TRADEOBS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

PROBE = """
(() => {
  const b = window.__bench = { handler: [], render: [], lagMs: [], frames: 0 };
  const add = EventTarget.prototype.addEventListener;
  EventSource.prototype.addEventListener = function (type, fn, opts) {
    if (type !== "frame") return add.call(this, type, fn, opts);
    return add.call(this, type, function (e) {
      const t0 = performance.now();
      try { return fn.call(this, e); } finally {
        b.handler.push(performance.now() - t0); b.frames++;
        const m = /"ts":([0-9.]+)/.exec(e.data.slice(0, 80));
        if (m) b.lagMs.push(Date.now() - parseFloat(m[1]) * 1000);
      }
    }, opts);
  };
  const raf = window.requestAnimationFrame.bind(window);
  window.requestAnimationFrame = function (cb) {
    return raf(function (ts) {
      const t0 = performance.now();
      try { cb(ts); } finally { queueMicrotask(() => b.render.push(performance.now() - t0)); }
    });
  };
})();
"""


# ---------------------------------------------------------------------------------------------- the server


def serve(port: int, symbols: int, before_dir: str) -> None:
    """The benchmark's server process: demo engine + one live app under /telemetry and /before."""
    import asyncio
    from collections.abc import AsyncIterator
    from contextlib import asynccontextmanager

    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import FileResponse, Response
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    import tradeobs_agent
    from tradeobs_agent import live
    from tradeobs_agent.demo import DemoConfig
    from tradeobs_agent.demo.engine import TradingEngine
    from tradeobs_agent.demo.risk import RiskLimits

    tradeobs_agent.init(service_name="live-page-bench", otlp=False, prometheus=False, logs=False)
    limits = RiskLimits(max_gross_notional=1e12)  # 1,000 symbols: the demo's 5M limit would reject most orders
    engine = TradingEngine(DemoConfig(symbols=symbols, tick_hz=10.0, orders_hz=20.0, seed=1, limits=limits))
    telemetry = live.create_app(hz=10)

    async def before_index(request: Any) -> Response:
        return FileResponse(Path(before_dir) / "index.html", headers={"cache-control": "no-store"})

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        engine.start()
        try:
            yield
        finally:
            await engine.stop()

    app = Starlette(
        routes=[
            Route("/before/", before_index),
            Mount("/before/static", StaticFiles(directory=before_dir)),
            Mount("/before", telemetry),
            Mount("/telemetry", telemetry),
        ],
        lifespan=lifespan,
    )
    asyncio.run(uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning", access_log=False)).serve())


# ---------------------------------------------------------------------------------------------- the browser


def _wait_up(url: str, proc: subprocess.Popen[bytes], limit: float = 60.0) -> None:
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"{url} did not answer in {limit}s")


def _before_page(rev: str, into: Path) -> None:
    for name in ("index.html", "live.js", "live.css"):
        blob = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{rev}:{STATIC}/{name}"], check=True, capture_output=True
        ).stdout
        (into / name).write_bytes(blob)
    shutil.copytree(ROOT / STATIC / "vendor", into / "vendor")


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def measure(page: Any, cdp: Any, url: str, seconds: float) -> dict[str, Any]:
    page.goto(url)
    page.wait_for_function("() => window.__bench && window.__bench.frames > 20", timeout=60_000)
    time.sleep(2.0)  # past the history prefill and the first full frame
    page.evaluate("() => { const b = window.__bench; b.handler = []; b.render = []; b.lagMs = []; b.frames = 0; }")
    m0 = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    t0 = time.monotonic()
    time.sleep(seconds)
    b = page.evaluate("() => window.__bench")
    m1 = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    wall = time.monotonic() - t0
    frames = max(1, b["frames"])
    return {
        "frames": b["frames"],
        "fps": b["frames"] / wall,
        "handler": b["handler"],
        "render": b["render"],
        "lag": b["lagMs"],
        "task_ms_per_frame": (m1["TaskDuration"] - m0["TaskDuration"]) * 1000 / frames,
        "cpu_ms_per_frame": (m1["ThreadTime"] - m0["ThreadTime"]) * 1000 / frames,
        "proc_ms_per_frame": (m1["ProcessTime"] - m0["ProcessTime"]) * 1000 / frames,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--symbols", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--before", default="f6a41fa", help="git revision of the page before (default: %(default)s)")
    ap.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--before-dir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.serve, args.symbols, args.before_dir)
        return
    from playwright.sync_api import sync_playwright

    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        before = Path(tmp) / "before"
        before.mkdir()
        _before_page(args.before, before)
        cmd = [
            sys.executable,
            __file__,
            "--serve",
            str(port),
            "--symbols",
            str(args.symbols),
            "--before-dir",
            str(before),
        ]
        log = open(Path(tmp) / "server.log", "wb")  # noqa: SIM115 - closed below, after the process
        # this checkout's package, whatever is installed (the page at /telemetry/ is the one of this tree)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "agent"), os.environ.get("PYTHONPATH", "")])}
        proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT)
        results: dict[str, list[dict[str, Any]]] = {"before": [], "now": []}
        try:
            base = f"http://127.0.0.1:{port}"
            _wait_up(base + "/telemetry/snapshot", proc)
            with sync_playwright() as p:
                ctx = p.chromium.launch_persistent_context(
                    str(Path(tmp) / "profile"),
                    executable_path=CHROMIUM,
                    args=CHROMIUM_ARGS,
                    headless=True,
                    viewport={"width": 1400, "height": 1000},
                    # its own temporary files (a profile's singleton socket) in ours, so that a Ctrl-C, after which
                    # Playwright kills it, leaves none behind in /tmp
                    env={**os.environ, "TMPDIR": tmp},
                )
                try:
                    ctx.add_init_script(PROBE)
                    page = ctx.pages[0] if ctx.pages else ctx.new_page()
                    cdp = ctx.new_cdp_session(page)
                    cdp.send("Performance.enable")
                    for _ in range(args.rounds):
                        for name, path in (("before", "/before/"), ("now", "/telemetry/")):
                            results[name].append(measure(page, cdp, base + path, args.seconds))
                            page.goto("about:blank")
                finally:
                    ctx.close()
        except BaseException:
            print((Path(tmp) / "server.log").read_text()[-3000:], file=sys.stderr)
            raise
        finally:
            proc.terminate()
            proc.wait(20)
            log.close()
    _table(args, results)


def _table(args: argparse.Namespace, results: dict[str, list[dict[str, Any]]]) -> None:
    print(
        f"Live page, {args.symbols:,} symbols ticking at 10 Hz, 10 Hz frames, "
        f"{args.rounds} x {args.seconds:.0f} s per page, Chromium {_chromium_version()} headless 1400x1000, "
        f"{os.cpu_count()} CPUs shared with the server"
    )
    print(
        "| page | frames/s | handler p50 ms | handler p99 ms | render p50 ms | render p99 ms "
        "| main thread ms/frame | main thread CPU ms/frame | renderer CPU ms/frame "
        "| frame age p50 ms | frame age p99 ms |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    rows = {}
    for name in ("before", "now"):
        rs = results[name]
        handler = [x for r in rs for x in r["handler"]]
        render = [x for r in rs for x in r["render"]]
        lag = [x for r in rs for x in r["lag"]]
        fps = statistics.fmean(r["fps"] for r in rs)
        task = statistics.fmean(r["task_ms_per_frame"] for r in rs)
        cpu = statistics.fmean(r["cpu_ms_per_frame"] for r in rs)
        proc = statistics.fmean(r["proc_ms_per_frame"] for r in rs)
        rows[name] = (_pct(handler, 0.5), _pct(render, 0.5), cpu)
        label = f"before ({args.before})" if name == "before" else "now"
        print(
            f"| {label} | {fps:.1f} | {_pct(handler, 0.5):.2f} | {_pct(handler, 0.99):.2f} | {_pct(render, 0.5):.2f} "
            f"| {_pct(render, 0.99):.2f} | {task:.1f} | {cpu:.1f} | {proc:.1f} "
            f"| {_pct(lag, 0.5):.0f} | {_pct(lag, 0.99):.0f} |"
        )
    b, n = rows["before"], rows["now"]
    print(f"Main-thread CPU per frame, now / before: {n[2] / b[2]:.2f}x")


def _chromium_version() -> str:
    try:
        out = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True, timeout=20).stdout
    except OSError:
        return "?"
    return out.split()[1] if len(out.split()) > 1 else "?"


if __name__ == "__main__":
    main()
