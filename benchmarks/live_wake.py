"""How soon does the live page stream again when a phone wakes on another network? The page now against before.

    python benchmarks/live_wake.py [--sleep 30] [--rounds 2] [--before 89781da]

One server process (``live_page.py``'s: the demo's trading engine, here 10 symbols, and one live stream at 10 Hz)
serves the page of this checkout at ``/telemetry/`` and the page of ``--before`` at ``/before/``, both on the same
live app. Each page is opened in a fresh context of Debian's Chromium (Playwright, a 390x844 phone) through the
tests' proxy (``tests/e2e/netproxy.py``), one page at a time, alternating ``--rounds`` times. Then the phone
"sleeps" ``--sleep`` seconds and wakes on another network: the proxy silences every connection open (the stream's and
those the browser keeps from loading the page) and the browser is offline (Playwright's ``set_offline``); then new
connections work again and the browser is back online. Measured from the moment it is back online:

* ``stream request``: until the first stream request that reaches the server (the proxy's log);
* ``first frame``: until the page's first frame after it (the page's own clock, ``performance.now()``);
* ``on dead connections``: stream requests the page sent, after waking, on a connection that was dead;
* ``HEAD``: the requests the page now sends to find a connection that answers.

Prints a table and the ratio; not a test (no thresholds). Results: docs/live.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _ports import free_port
from live_page import CHROMIUM, CHROMIUM_ARGS, _before_page, _chromium_version, _wait_up

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.e2e.netproxy import CuttableProxy  # noqa: E402 - the tests' proxy, from this checkout

PROBE = """
(() => {
  const b = window.__wake = { onlineAt: 0, frameAt: 0 };
  window.addEventListener("online", () => { b.onlineAt = performance.now(); b.frameAt = 0; });
  const add = EventTarget.prototype.addEventListener;
  EventSource.prototype.addEventListener = function (type, fn, opts) {
    if (type !== "frame") return add.call(this, type, fn, opts);
    return add.call(this, type, function (e) {
      if (b.onlineAt && !b.frameAt) b.frameAt = performance.now();
      return fn.call(this, e);
    }, opts);
  };
})();
"""


def _until(cond: Any, what: str, limit: float = 120.0) -> None:
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.02)
    raise SystemExit(f"timed out waiting for {what}")


def measure(browser: Any, port: int, path: str, sleep: float) -> dict[str, Any]:
    proxy = CuttableProxy(port, free_port())
    ctx = browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=3, is_mobile=True, has_touch=True
    )
    try:
        ctx.add_init_script(PROBE)
        page = ctx.new_page()
        page.goto(proxy.base + path)
        _until(lambda: page.evaluate("window.__tradeobs && window.__tradeobs.frames") >= 15, "15 frames", 60)
        opens = page.evaluate("window.__tradeobs.opens")
        proxy.cut()
        ctx.set_offline(True)
        time.sleep(sleep)
        seen = len(proxy.requests)
        proxy.restore()
        woken = time.monotonic()
        ctx.set_offline(False)
        _until(
            lambda: page.evaluate("window.__tradeobs.opens") > opens and page.evaluate("window.__wake.frameAt"),
            "a frame after waking",
        )
        w = page.evaluate("window.__wake")
        after = proxy.requests[seen:]
        streams = [r for r in after if r.method == "GET" and r.target.startswith(path + "stream")]
        return {
            "request": min(r.at for r in streams if not r.dead) - woken,
            "frame": (w["frameAt"] - w["onlineAt"]) / 1000,
            "dead": sum(r.dead for r in streams),
            "head": sum(r.method == "HEAD" for r in after),
        }
    finally:
        ctx.close()
        proxy.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sleep", type=float, default=30.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--before", default="89781da", help="git revision of the page before (default: %(default)s)")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    port = free_port()
    results: dict[str, list[dict[str, Any]]] = {"before": [], "now": []}
    with tempfile.TemporaryDirectory() as tmp:
        before = Path(tmp) / "before"
        before.mkdir()
        _before_page(args.before, before)
        serve = [sys.executable, str(ROOT / "benchmarks" / "live_page.py"), "--serve", str(port)]
        cmd = [*serve, "--symbols", "10", "--before-dir", str(before)]
        log = open(Path(tmp) / "server.log", "wb")  # noqa: SIM115 - closed below, after the process
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "agent"), os.environ.get("PYTHONPATH", "")])}
        proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_up(f"http://127.0.0.1:{port}/telemetry/snapshot", proc)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
                try:
                    for _ in range(args.rounds):
                        for name, path in (("before", "/before/"), ("now", "/telemetry/")):
                            results[name].append(measure(browser, port, path, args.sleep))
                finally:
                    browser.close()
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
        f"Live page woken on another network after {args.sleep:.0f} s asleep (offline, every connection silent), "
        f"{args.rounds} rounds per page, Chromium {_chromium_version()} headless 390x844, {os.cpu_count()} CPUs"
    )
    print(
        "| page | online -> stream request at the server, s | online -> first frame, s "
        "| stream requests on dead connections | HEAD requests |"
    )
    print("|---|---:|---:|---:|---:|")
    med = {}
    for name in ("before", "now"):
        rs = results[name]
        med[name] = statistics.median(r["frame"] for r in rs)
        label = f"before ({args.before})" if name == "before" else "now"
        req = " / ".join(f"{r['request']:.2f}" for r in rs)
        frame = " / ".join(f"{r['frame']:.2f}" for r in rs)
        dead = " / ".join(str(r["dead"]) for r in rs)
        head = " / ".join(str(r["head"]) for r in rs)
        print(f"| {label} | {req} | {frame} | {dead} | {head} |")
    print(f"Median time to the first frame, before / now: {med['before'] / med['now']:.0f}x")


if __name__ == "__main__":
    main()
