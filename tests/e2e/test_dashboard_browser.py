"""The dashboard in real headless Chromium: live updates at ~10 Hz, reconnect and resume without a reload."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

from tests._util import wait_for
from tests.e2e.conftest import LiveProcess

pytestmark = pytest.mark.e2e


@pytest.fixture()
def server(live_server: Callable[..., LiveProcess]) -> LiveProcess:
    return live_server()


def js(page: Any, expr: str) -> Any:
    return page.evaluate(expr)


def test_dashboard_updates_reconnects_and_resumes(server: LiveProcess, browser_page: Any) -> None:
    page = browser_page
    page.goto(server.base + "/telemetry")  # redirected to /telemetry/; relative URLs must work under a prefix
    wait_for(lambda: js(page, "window.__tradeobs && window.__tradeobs.status") == "connected", "connected")
    marker = js(page, "window.__tradeobs.marker")

    # frames keep reaching the page (liveness; the rate is measured by benchmarks/live_page.py, not asserted here)
    f0 = js(page, "window.__tradeobs.frames")
    wait_for(lambda: js(page, "window.__tradeobs.frames") >= f0 + 10, "10 more frames")
    assert page.locator("#positions tbody tr.row").count() == 12
    assert page.locator("#chart-price .uplot").count() == 1
    assert page.locator("#blotter tbody tr").count() > 0
    assert page.locator("#status").get_attribute("data-state") == "connected"

    # (a) a network drop while the server stays up: every event published meanwhile reaches the page
    before = js(page, "window.__tradeobs.opens")
    req = urllib.request.Request(server.base + "/test/drop", method="POST")
    with urllib.request.urlopen(req, timeout=5) as r:
        assert int(r.read()) == 1
    wait_for(lambda: js(page, "window.__tradeobs.opens") > before, "reconnect after drop")
    wait_for(lambda: js(page, "window.__tradeobs.status") == "connected", "connected again")
    time.sleep(1.0)
    # every event the server's buffer holds from the page's first one on must reach the page (eventually: the
    # newest may still be in flight, so poll; nothing here measures speed)
    first_seen = min(int(i.rsplit("-", 1)[1]) for i in js(page, "window.__tradeobs.eventIds"))
    held = [i for i in server.history_event_ids() if int(i.rsplit("-", 1)[1]) >= first_seen]
    assert len(held) >= 5  # events were published before, during and after the drop

    def missing() -> list[str]:
        seen = set(js(page, "window.__tradeobs.eventIds"))
        return [i for i in held if i not in seen]

    try:
        wait_for(lambda: not missing(), "every held event on the page", limit=10)
    except AssertionError:
        raise AssertionError(f"events lost across the drop: {missing()}") from None
    assert js(page, "window.__tradeobs.resets") == 0
    assert js(page, "window.__tradeobs.marker") == marker

    # (b) the server process dies and comes back on the same port: the page reconnects by itself (no reload),
    # the new process does not know the old id, so the page gets a reset and a full frame, then live frames again
    old_last = max(js(page, "window.__tradeobs.chart.price[0]"))  # the old process's newest chart point
    server.kill()
    wait_for(lambda: js(page, "window.__tradeobs.status") in ("reconnecting", "offline"), "noticed the outage")
    assert page.locator("#status").get_attribute("data-state") in ("reconnecting", "offline")
    server.start()
    wait_for(lambda: js(page, "window.__tradeobs.resets") >= 1, "reset from the new process")
    wait_for(lambda: js(page, "window.__tradeobs.status") == "connected", "connected to the new process")
    f1 = js(page, "window.__tradeobs.frames")
    wait_for(lambda: js(page, "window.__tradeobs.frames") >= f1 + 10, "frames from the new process")
    assert js(page, "window.__tradeobs.marker") == marker  # same page object: no reload
    # the charts started again at the reset: no point of the old process is joined to the new one's
    wait_for(lambda: len(js(page, "window.__tradeobs.chart.price[0]")) >= 5, "chart points from the new process")
    assert min(js(page, "window.__tradeobs.chart.price[0]")) > old_last
    boot_now = server.history_event_ids()[-1].rsplit("-", 1)[0]
    wait_for(lambda: js(page, "window.__tradeobs.lastId").startswith(boot_now), "ids from the new process")
