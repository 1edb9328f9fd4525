"""Browser fixtures: Debian's Chromium driven by Playwright (its own browser download is not available here).

``live_server(*args)`` starts ``tests/e2e/live_server.py`` (the scenario service) in a subprocess on a free
port and stops it after the test; ``browser_page`` is a page at 1400x1000 in a fresh context (its own storage)
of the file's one Chromium (``chromium``); ``device_page(**options)`` one emulating a phone, a tablet, a zoomed
laptop.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests._util import free_port, wait_for

SERVER = Path(__file__).with_name("live_server.py")


def frames_stream(*frames: dict[str, Any]) -> str:
    """Server-sent events of these frames, as the live stream writes them (ids ``b0-<seq>``), with a retry long
    enough that the page never reconnects during a test."""
    return "retry: 600000\n\n" + "".join(
        f"id: b0-{f['seq']}\nevent: frame\ndata: {orjson.dumps(f).decode()}\n\n" for f in frames
    )


def open_on_stream(page: Any, srv: LiveProcess, body: str) -> None:
    """Open ``srv``'s live page with its stream answered by ``body`` (server-sent events written by the test)."""
    page.route(
        "**/telemetry/stream*",
        lambda route: route.fulfill(status=200, headers={"content-type": "text/event-stream"}, body=body),
    )
    page.goto(srv.base + "/telemetry/")


CHROMIUM = os.environ.get("TRADEOBS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",  # without these it hammers the (closed) network
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """One headless Chromium for a test file (starting one took 5-8 s on a loaded 2-core machine, a context
    1-2 s); every test opens its own context in it (``browser_page``, ``device_page``): its own cookies,
    storage, cache, Web Locks and emulation, as the fresh profile of a browser of its own had. Fails (never
    skips) if Chromium is missing."""
    from playwright.sync_api import sync_playwright

    assert shutil.which(CHROMIUM) or os.path.exists(CHROMIUM), (
        f"{CHROMIUM} not found: run scripts/install.d/50-browser.sh (apt-get install chromium)"
    )
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture()
def browser_page(chromium: Any) -> Iterator[Any]:
    """A page at 1400x1000 in a new context of the file's Chromium: nothing kept from another test."""
    ctx = chromium.new_context(viewport={"width": 1400, "height": 1000})
    try:
        yield ctx.new_page()
    finally:
        ctx.close()


@pytest.fixture()
def device_page(chromium: Any) -> Iterator[Callable[..., Any]]:
    """``device_page(viewport={"width": 390, "height": 844}, device_scale_factor=3, is_mobile=True, has_touch=True)``:
    a page in a new context of the file's Chromium emulating that device (any ``new_context`` option:
    ``color_scheme``, ``reduced_motion``, ``timezone_id``...). Each call is a new context; all are closed after
    the test."""
    contexts: list[Any] = []

    def open_device(**options: Any) -> Any:
        ctx = chromium.new_context(**options)
        contexts.append(ctx)
        return ctx.new_page()

    try:
        yield open_device
    finally:
        for ctx in contexts:
            ctx.close()


class LiveProcess:
    """tests/e2e/live_server.py in a subprocess on a fixed port, restartable on the same port."""

    def __init__(self, args: tuple[str, ...], cwd: Path) -> None:
        self.port = free_port()
        self.args = args
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, str(SERVER), str(self.port), *self.args], cwd=self.cwd)
        wait_for(lambda: self._up(), "server up", limit=60)

    def _up(self) -> bool:
        try:
            with urllib.request.urlopen(self.base + "/telemetry/snapshot", timeout=1) as r:
                return bool(r.status == 200)
        except OSError:
            assert self.proc is not None and self.proc.poll() is None, "server exited"
            return False

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.base + path, timeout=5) as r:
            return orjson.loads(r.read())

    def post(self, path: str) -> str:
        req = urllib.request.Request(self.base + path, method="POST")
        with urllib.request.urlopen(req, timeout=5) as r:
            return str(r.read().decode())

    def snapshot(self) -> dict[str, Any]:
        data: dict[str, Any] = self.get("/telemetry/snapshot")
        return data

    def history_event_ids(self) -> list[str]:
        return [e["id"] for e in self.get("/telemetry/history")["events"]]


@pytest.fixture()
def live_server(tmp_path: Path) -> Iterator[Callable[..., LiveProcess]]:
    """``live_server("--symbols", "1000", ...)`` starts the scenario service; every one started is stopped."""
    started: list[LiveProcess] = []

    def start(*args: str) -> LiveProcess:
        srv = LiveProcess(args, tmp_path)
        started.append(srv)
        srv.start()
        return srv

    try:
        yield start
    finally:
        for srv in started:
            srv.kill()
