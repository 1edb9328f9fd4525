"""Screenshot the live page of the demo in Debian's Chromium (docs/images/live-*.png).

    PYTHONPATH=agent python scripts/live_screenshot.py OUT.png [--agent-path DIR] [--symbols 12] [--seed 7] [--wait 40]
    PYTHONPATH=agent python scripts/live_screenshot.py OUT.png --scenario [--wait 20]

Runs ``tradeobs demo`` (the package found on ``--agent-path``, default: this checkout's ``agent/``) with a
fixed seed in a temporary directory, opens ``/telemetry/`` at 1400x1000, waits ``--wait`` seconds so the
demo has traded, and saves a PNG. ``--agent-path`` lets the same run show an older tree (``git archive``
of a previous commit) for a before/after pair. ``--scenario`` runs the browser tests' service instead
(``tests/e2e/live_server.py``: two desks, working orders, a stale symbol, a limit over 100%), with
``live_grafana_url`` set so the links show. A tool for the docs, not part of the package.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_up(url: str, proc: subprocess.Popen[bytes], limit: float = 30.0) -> None:
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise SystemExit(f"demo exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer in {limit}s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--agent-path", type=Path, default=ROOT / "agent")
    ap.add_argument("--symbols", type=int, default=12)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--orders-hz", type=float, default=4.0)
    ap.add_argument("--wait", type=float, default=40.0)
    ap.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="extra environment for the demo")
    ap.add_argument("--scenario", action="store_true", help="the browser tests' scenario service, not the demo")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(args.agent_path.resolve())}
    env.update(kv.split("=", 1) for kv in args.env)
    with tempfile.TemporaryDirectory() as cwd:
        scenario = [
            sys.executable,
            str(ROOT / "tests" / "e2e" / "live_server.py"),
            str(port),
            "--agent",
            "default",
            "--grafana",
            "http://localhost:3000",
        ]
        cmd = (
            scenario
            if args.scenario
            else [
                sys.executable,
                "-c",
                "from tradeobs_agent.cli import main; raise SystemExit(main())",
                "demo",
                "--port",
                str(port),
                "--symbols",
                str(args.symbols),
                "--seed",
                str(args.seed),
                "--orders-hz",
                str(args.orders_hz),
            ]
        )
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL)
        try:
            base = f"http://127.0.0.1:{port}"
            _wait_up(base + "/telemetry/snapshot", proc)
            with sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
                ctx = p.chromium.launch_persistent_context(
                    profile,
                    executable_path=CHROMIUM,
                    args=CHROMIUM_ARGS,
                    headless=True,
                    viewport={"width": 1400, "height": 1000},
                )
                try:
                    page = ctx.pages[0] if ctx.pages else ctx.new_page()
                    page.goto(base + "/telemetry/")
                    time.sleep(args.wait)
                    args.out.parent.mkdir(parents=True, exist_ok=True)
                    page.screenshot(path=str(args.out))
                finally:
                    ctx.close()
        finally:
            proc.terminate()
            proc.wait(20)
    print(args.out)


if __name__ == "__main__":
    main()
