"""The fleet gateway's dashboard in real headless Chromium, across a gateway swap behind one address.

Two agent processes (two services) publish to a real nats-server; ``tradeobs live gateway`` serves the page.
The page shows both services and their strategies. Then the gateway process is killed and *another* one
(no state shared with the first) starts on the same port, as a load balancer would send the browser to another
replica: the page's EventSource reconnects by itself with its ``Last-Event-ID`` and gets every event it missed,
with no ``reset``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests._util import free_port, wait_for
from tests.e2e.test_live_page import kpi, number, shows
from tests.integration.fleet import FleetAgent, start_gateway, start_nats, stream_events

pytestmark = pytest.mark.e2e


def _key(event_id: str) -> int:
    return int(event_id.rpartition("-")[2])


def test_the_page_shows_the_fleet_and_resumes_on_another_gateway_without_reset(
    browser_page: Any, tmp_path: Path
) -> None:
    page = browser_page
    with start_nats(tmp_path / "nats") as nats:
        agents = [FleetAgent(nats.url, "alpha", "momentum", tmp_path), FleetAgent(nats.url, "beta", "hedge", tmp_path)]
        port = free_port()
        gw = start_gateway(nats.url, tmp_path / "a", port=port)
        try:
            page.goto(gw.url + "/")
            wait_for(lambda: page.evaluate("window.__tradeobs.frames") >= 20, "frames in the page", limit=30)
            wait_for(lambda: page.locator("#services tbody tr").count() == 2, "2 service rows", limit=30)
            assert page.locator("#fleet").is_visible()
            rows = page.locator("#services tbody tr td:first-child").all_inner_texts()
            assert rows == ["alpha", "beta"]
            strategies = page.locator("#strategies tbody tr td:first-child").all_inner_texts()
            assert strategies == ["alpha/momentum", "beta/hedge"]
            wait_for(lambda: len(page.evaluate("window.__tradeobs.eventIds")) >= 20, "events in the blotter", limit=30)
            first = _key(page.evaluate("window.__tradeobs.eventIds")[0])
            opens = page.evaluate("window.__tradeobs.opens")

            gw.kill()
            wait_for(lambda: page.evaluate("window.__tradeobs.status") != "connected", "the page notices", limit=10)
            gw = start_gateway(nats.url, tmp_path / "b", port=port)  # another replica behind the same address
            wait_for(lambda: page.evaluate("window.__tradeobs.opens") > opens, "the page reconnects", limit=30)
            n = len(page.evaluate("window.__tradeobs.eventIds"))
            wait_for(lambda: len(page.evaluate("window.__tradeobs.eventIds")) >= n + 40, "events after", limit=30)
            state = page.evaluate("window.__tradeobs")
        finally:
            for a in agents:
                a.stop()
            gw.stop()
        assert state["resets"] == 0 and state["status"] == "connected"
        keys = [_key(i) for i in state["eventIds"]]
        stored = stream_events(nats.url, first, keys[-1])
        # From the history at load to the end: every event JetStream holds, once, in order, across the swap.
        assert [k for k in keys if k >= first] == sorted(stored)


def test_the_gateway_page_shows_the_fleet_desk_account_and_working_orders(browser_page: Any, tmp_path: Path) -> None:
    """The header strip, working orders, risk limits and reject reasons on the gateway, as on an agent's page: what
    the page shows is the gateway's /snapshot (merged across services), not "—"."""
    page = browser_page
    with start_nats(tmp_path / "nats") as nats:
        agents = [FleetAgent(nats.url, "alpha", "momentum", tmp_path), FleetAgent(nats.url, "beta", "hedge", tmp_path)]
        gw = start_gateway(nats.url, tmp_path / "gw")
        try:
            page.goto(gw.url + "/")
            wait_for(lambda: gw.snapshot()["desk"].get("working") == 10, "5 working orders per agent", limit=30)
            wait_for(lambda: len(gw.snapshot()["desk"].get("reasons", {})) == 2, "rejects of both", limit=30)
            for a in agents:
                a.pause()
            time.sleep(1.0)  # the journal applies what was recorded before the pause; the agents publish it
            seq = gw.snapshot()["seq"]
            wait_for(lambda: page.evaluate("window.__tradeobs.state.seq") > seq + 2, "frames after the pause")
            snap = gw.snapshot()
            draws = page.evaluate("window.__tradeobs.draws")
            wait_for(lambda: page.evaluate("window.__tradeobs.draws") > draws, "a draw after the snapshot")
            a, d = snap["account"], snap["desk"]
            for name, value, decimals in [
                ("pnl", a["pnl"], 2),
                ("pnl_day", a["pnl_day"], 2),
                ("rpnl", a["rpnl"], 2),
                ("upnl", a["upnl"], 2),
                ("gross", a["gross"], 0),
                ("net", a["net"], 0),
                ("open", d["open"], 0),
                ("fills", d["fills"], 0),
            ]:
                assert shows(kpi(page, name), value, decimals), (name, kpi(page, name), value)
            assert shows(kpi(page, "reject_rate"), d["reject_rate"] * 100, 1)
            # each agent's 5 resting orders were sent and never acknowledged nor filled: the fleet's 10 wait for a venue
            assert d["unacked"] == 10 and d["unacked_age"] > 0, d
            assert kpi(page, "unacked").startswith("10 · oldest "), kpi(page, "unacked")
            working = page.locator("#working tbody tr")
            keys = [working.nth(i).get_attribute("data-oid") for i in range(working.count())]
            assert sorted(keys) == sorted(snap["working"]) and len(keys) == 10
            for i, key in enumerate(keys):  # the order's own id is shown (and linked), not the fleet's row key
                assert working.nth(i).locator("td.detail").inner_text() == snap["working"][key]["id"]
            assert page.locator("#working-count").inner_text() == "10"
            assert sorted(d["limits"]) == ["alpha/momentum/gross", "beta/hedge/gross"]
            for name, ratio in d["limits"].items():
                shown = page.locator(f'#limits .limit[data-limit="{name}"] .v').inner_text()
                assert shows(shown, ratio * 100, 1), (name, shown, ratio)
            rows = (x.split("\t") for x in page.locator("#reasons tbody tr").all_inner_texts())
            assert {r[0]: number(r[1]) for r in rows} == {k: float(v) for k, v in d["reasons"].items()}
            wait_for(lambda: "3 stale" in kpi(page, "freshness"), "every symbol stale (no tick since the pause)")
        finally:
            for agent in agents:
                agent.stop()
            gw.stop()
