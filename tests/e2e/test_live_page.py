"""The live page as a trader sees it, in real headless Chromium against the scenario service (live_server.py).

What a person reads is checked against ``/snapshot``: the header strip, every position, the working orders,
the risk limits and reject reasons; negative numbers keep their sign (also on chart axes, whose labels must
fit); every symbol can be charted; the blotter filters, pauses and windows; orders and fills link to Grafana;
the export state reads right. Nothing here measures speed (benchmarks/live_page.py does).
"""

from __future__ import annotations

import itertools
import json
import re
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

import pytest

from tests._util import wait_for
from tests.e2e.conftest import LiveProcess, open_on_stream

pytestmark = pytest.mark.e2e
GRAFANA = "http://grafana.desk.example:3000"
POSITION_COLUMNS = ["chart", "symbol", "px", "pos", "avg", "ntl", "pnl", "rpnl", "upnl", "ord", "fill", "rej"]


def js(page: Any, expr: str) -> Any:
    return page.evaluate(expr)


def open_page(page: Any, srv: LiveProcess, frames: int = 15) -> None:
    page.goto(srv.base + "/telemetry/")
    wait_for(lambda: js(page, "window.__tradeobs && window.__tradeobs.status") == "connected", "connected")
    wait_for(lambda: js(page, "window.__tradeobs.frames") >= frames, f"{frames} frames")


def freeze(page: Any, srv: LiveProcess) -> dict[str, Any]:
    """Stop the feed, then wait until the page has drawn a frame built after the last change; the snapshot."""
    srv.post("/test/freeze")
    time.sleep(0.5)  # the journal applies what was recorded before the freeze (every 0.2 s at most)
    seq = srv.snapshot()["seq"]
    wait_for(lambda: js(page, "window.__tradeobs.state.seq") > seq + 2, "frames after the freeze")
    snap = srv.snapshot()
    draws = js(page, "window.__tradeobs.draws")
    wait_for(lambda: js(page, "window.__tradeobs.draws") > draws, "a draw after the snapshot")
    return snap


def number(text: str) -> float:
    """What a person reads, as a number: "-2,345.67" -> -2345.67, "+12.0 %" -> 12.0."""
    cleaned = text.replace(",", "").replace("%", "").replace("+", "").strip()
    return float(cleaned)


def shows(text: str, value: float | None, decimals: int) -> bool:
    """``text`` is ``value`` rounded to ``decimals``, with its sign (a negative one must start with "-")."""
    if value is None:
        return text == "—"
    if round(value, decimals) < 0 and not text.startswith("-"):
        return False
    try:
        return abs(number(text) - value) <= 0.5 * 10**-decimals + 1e-9
    except ValueError:  # blank, or not a number at all
        return False


def kpi(page: Any, name: str) -> str:
    return str(page.locator(f"#kpi-{name}").inner_text())


# --------------------------------------------------------------------------- values match /snapshot


def test_values_shown_match_the_snapshot(live_server: Callable[..., LiveProcess], browser_page: Any) -> None:
    srv = live_server()
    page = browser_page
    open_page(page, srv)
    # XOM's market data stops: after 5 s without a tick it is stale, in its row and in the header
    stale = page.locator("#positions tbody tr.row.stale")
    wait_for(lambda: stale.count() == 1, "XOM stale", limit=30)
    assert stale.get_attribute("data-sym") == "XOM" and stale.locator("td").last.inner_text().endswith(" s")
    assert "1 stale" in kpi(page, "freshness")
    snap = freeze(page, srv)
    a, d, syms = snap["account"], snap["desk"], snap["symbols"]
    assert a["pnl"] < -1000 and a["rpnl"] < 0  # the scenario loses money: signs matter below

    # the header strip
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
    assert kpi(page, "pnl").startswith("-")
    assert shows(kpi(page, "reject_rate"), d["reject_rate"] * 100, 1)
    assert page.locator("#kpi-kill").is_visible() and kpi(page, "kill_switch") == "off"

    # every position, cell by cell (12 symbols: all rows are in view)
    rows = page.locator("#positions tbody tr.row")
    assert rows.count() == len(syms) == 12
    seen = set()
    for i in range(rows.count()):
        cells = rows.nth(i).locator("td").all_inner_texts()
        sym = cells[1]
        r = syms[sym]
        seen.add(sym)
        got = dict(zip(POSITION_COLUMNS, cells, strict=False))
        assert shows(got["px"], r["px"], 2), (sym, got, r)
        assert shows(got["pos"], r["pos"], 0), (sym, got, r)
        assert got["avg"] == "—" if r["pos"] == 0 else shows(got["avg"], r["avg"], 2), (sym, got, r)
        assert shows(got["ntl"], r["ntl"], 0), (sym, got, r)
        assert shows(got["pnl"], r["rpnl"] + r["upnl"], 2), (sym, got, r)
        assert shows(got["rpnl"], r["rpnl"], 2) and shows(got["upnl"], r["upnl"], 2), (sym, got, r)
        for key in ("ord", "fill", "rej"):  # a count the service never incremented is 0, not blank
            assert shows(got[key], r.get(key, 0), 0), (sym, key, got, r)
    assert seen == set(syms)
    flat = rows.filter(has_text="NVDA").locator("td").all_inner_texts()
    assert flat[3] == "0" and flat[6].startswith("-")  # a flat position with a realized loss

    # working orders, risk limits, reject reasons
    working = page.locator("#working tbody tr")
    assert sorted(working.nth(i).get_attribute("data-oid") for i in range(working.count())) == sorted(snap["working"])
    part = working.filter(has_text="part-1").locator("td").all_inner_texts()
    assert part[3] == "40/100"
    for name, ratio in d["limits"].items():
        shown = page.locator(f'#limits .limit[data-limit="{name}"] .v').inner_text()
        assert shows(shown, ratio * 100, 1), (name, shown, ratio)
    assert page.locator("#limits .limit.over").count() == 1  # meanrev's drawdown limit at 104%
    reasons = {r[0]: number(r[1]) for r in (x.split("\t") for x in page.locator("#reasons tbody tr").all_inner_texts())}
    assert reasons == {k: float(v) for k, v in d["reasons"].items()}

    # the header's "last id 66201df7af7f0-199" says what it is when pointed at
    assert page.locator("#lastid").inner_text().startswith("last id ")
    assert "resumes from it" in (page.locator("#lastid").get_attribute("title") or "")

    # no Grafana URL configured: no links, and no empty "Grafana" or "trace" column (both were there, blank)
    assert page.locator("a.trace, a.order").count() == 0
    assert js(page, "window.__tradeobs.config.grafana_url") == ""
    for header in ("#blotter thead th", "#working thead th"):
        assert page.locator(header).last.inner_text() in ("Grafana", "trace")
        assert not page.locator(header).last.is_visible(), header


def test_a_key_the_server_drops_leaves_the_page_with_the_next_delta(
    live_server: Callable[..., LiveProcess], browser_page: Any
) -> None:
    """AAPL's two desks close it (both report an average entry) while a third, which reports none, holds 25: the
    row keeps a position and has no average any more. The delta that follows says so (``"avg": null``), and the
    page shows "—" from that frame on, its state the snapshot's. Full frames come once an hour here: the page used
    to keep the old average until one came (in a service, up to 5 s)."""
    srv = live_server("--full-every", "3600")
    page = browser_page
    open_page(page, srv)
    freeze(page, srv)
    row = page.locator('#positions tbody tr.row[data-sym="AAPL"]')
    before = dict(zip(POSITION_COLUMNS, row.locator("td").all_inner_texts(), strict=False))
    assert shows(before["avg"], srv.snapshot()["symbols"]["AAPL"]["avg"], 2) and before["pos"] == "300"
    full = js(page, "window.__tradeobs.full")
    srv.post("/test/flatten")

    def flat() -> dict[str, Any] | None:
        snap = srv.snapshot()
        return snap if snap["symbols"]["AAPL"]["pos"] == 25 else None

    snap = wait_for(flat, "AAPL flat in both desks, 25 in the hedge")
    assert "avg" not in snap["symbols"]["AAPL"]
    wait_for(lambda: js(page, "window.__tradeobs.state.seq") >= snap["seq"], "the page has that frame")
    draws = js(page, "window.__tradeobs.draws")
    wait_for(lambda: js(page, "window.__tradeobs.draws") > draws, "a draw after it")
    assert js(page, "window.__tradeobs.full") == full  # deltas only since: no full frame put it right

    def rows(state: dict[str, Any]) -> dict[str, Any]:  # age counts seconds since the (frozen) feed's last tick
        return {s: {k: v for k, v in r.items() if k != "age" and v is not None} for s, r in state["symbols"].items()}

    assert rows(js(page, "window.__tradeobs.state")) == rows(snap)
    after = dict(zip(POSITION_COLUMNS, row.locator("td").all_inner_texts(), strict=False))
    assert after["pos"] == "25" and after["avg"] == "—", after


def test_the_page_deletes_what_a_delta_marks_gone(live_server: Callable[..., LiveProcess], browser_page: Any) -> None:
    """The page's own merge against the format: a worker group's frames (two workers, then one has exited) made by
    the package's ``FrameBuilder`` and ``delta``, sent to the page as its stream. The delta marks a symbol, a field
    and a section key gone (``null``); the page drops them at once: its state is the second frame's (as a client
    of docs/live.md has it), and the gone symbol's row is not in the table. (The page before kept the row, and
    would have until a full frame.)"""
    import orjson

    from tests._util import apply_frame, without_nulls
    from tradeobs_agent.live.frames import FrameBuilder, delta
    from tradeobs_agent.metrics import Part, Registry, merge

    one, two = Registry(), Registry()
    for reg, sym, strategy in ((one, "AAA", "s"), (two, "AAA", "t"), (two, "ZZZ", "t")):
        reg.gauge("trading.marketdata.price").bind(symbol=sym).set(100.0)
        reg.gauge("trading.position.quantity").bind(symbol=sym, strategy=strategy).set(10)
        if reg is two:  # the first worker's strategy reports no average entry
            reg.gauge("trading.position.avg_price").bind(symbol=sym, strategy=strategy).set(99.0)
    two.gauge("trading.risk.kill_switch.engaged").bind(strategy="t").set(0)
    b = FrameBuilder(Registry())
    s1 = b.build(snapshot=merge([Part(one.snapshot(), 1, True), Part(two.snapshot(), 2, True)]))
    s2 = b.build(snapshot=merge([Part(one.snapshot(), 1, True)]))  # the second worker has exited
    d = delta(s1, s2)
    assert d["symbols"] == {"AAA": {"pos": 10, "avg": None}, "ZZZ": None} and d["account"] == {"kill_switch": None}
    now = time.time()
    frames = [{"type": "full", "seq": 1, "ts": now, **s1}, {"type": "delta", "seq": 2, "ts": now, **d}]
    body = "retry: 600000\n\n" + "".join(
        f"id: b0-{f['seq']}\nevent: frame\ndata: {orjson.dumps(f).decode()}\n\n" for f in frames
    )

    page = browser_page
    open_on_stream(page, live_server(), body)  # these two frames (/config and /history are the server's)
    wait_for(lambda: js(page, "window.__tradeobs.state && window.__tradeobs.state.seq") == 2, "both frames")
    assert js(page, "[window.__tradeobs.full, window.__tradeobs.deltas]") == [1, 1]
    state = js(page, "window.__tradeobs.state")
    assert without_nulls(state) == without_nulls(apply_frame(apply_frame(None, frames[0]), frames[1]))
    assert without_nulls(state) == without_nulls(s2)
    assert sorted(state["symbols"]) == ["AAA"] and "kill_switch" not in state["account"]
    rows = page.locator("#positions tbody tr.row")
    wait_for(lambda: rows.count() == 1, "one row left")
    cells = dict(zip(POSITION_COLUMNS, rows.first.locator("td").all_inner_texts(), strict=False))
    assert cells["symbol"] == "AAA" and cells["pos"] == "10" and cells["avg"] == "—"


def picker(page: Any) -> list[str]:
    """The symbols the picker offers (its datalist: what the box completes from and accepts)."""
    return list(page.locator("#sym-list option").evaluate_all("os => os.map(o => o.value)"))


def rings(page: Any) -> list[list[str]]:
    """The symbols the page keeps chart rings for: prices and P&L."""
    return list(js(page, "['px', 'pnl'].map(k => Object.keys(window.__tradeobs.ring[k]).sort())"))


def drawn_after(page: Any, seq: int) -> None:
    """Wait until the page holds frame ``seq`` (or a later one) and has drawn since."""
    wait_for(lambda: js(page, "window.__tradeobs.state.seq") >= seq, f"frame {seq} on the page")
    draws = js(page, "window.__tradeobs.draws")
    wait_for(lambda: js(page, "window.__tradeobs.draws") > draws, "a draw after it")


def pick(page: Any, sym: str) -> None:
    page.locator("#sym-pick").fill(sym)
    page.locator("#sym-pick").press("Enter")


@pytest.mark.parametrize("frames", ["delta", "full"])
def test_a_symbol_gone_from_the_state_leaves_the_picker_and_its_rings(
    live_server: Callable[..., LiveProcess], browser_page: Any, frames: str
) -> None:
    """A worker that alone trades ZGONE exits (the frames are a worker group's leader's, ``--workers``): ZGONE leaves
    the state, then the picker, the chart and the page's rings. Charted alone, the chart goes to the first symbol
    left, and the chips say so. It can no longer be typed in. When it comes back it is a new symbol: no point from
    before it left, not charted by itself. ``delta``: the only frames are deltas (ZGONE is ``null`` in one);
    ``full``: every frame is a full frame (ZGONE is just not in it). (The page before kept ZGONE in the picker and
    its rings for good, and charted the frozen line.)"""
    srv = live_server("--workers", "--full-every", "3600" if frames == "delta" else "0")
    page = browser_page
    open_page(page, srv)
    wid = srv.post("/test/worker?symbols=ZGONE")
    wait_for(lambda: "ZGONE" in picker(page), "ZGONE in the picker")
    page.locator("#sym-clear").click()
    pick(page, "ZGONE")
    assert js(page, "window.__tradeobs.selected") == ["ZGONE"]
    charted = "(p => p.length === 2 && p[1].some(v => v !== null))(window.__tradeobs.chart.price)"
    wait_for(lambda: js(page, charted), "ZGONE charted")
    assert "ZGONE" in rings(page)[0] and "ZGONE" in rings(page)[1]
    counts = js(page, "[window.__tradeobs.full, window.__tradeobs.deltas]")

    srv.post(f"/test/worker/exit?id={wid}")

    def gone() -> dict[str, Any] | None:
        snap = srv.snapshot()
        return snap if "ZGONE" not in snap["symbols"] else None

    snap = wait_for(gone, "ZGONE out of the snapshot")
    drawn_after(page, snap["seq"])
    full, deltas = js(page, "[window.__tradeobs.full, window.__tradeobs.deltas]")
    if frames == "delta":
        assert full == counts[0]  # no full frame since: the delta's null did it
    else:
        assert deltas == counts[1] == 0
    left = sorted(snap["symbols"])
    assert sorted(js(page, "Object.keys(window.__tradeobs.state.symbols)")) == left
    assert picker(page) == left
    assert rings(page) == [left, left]
    assert js(page, "window.__tradeobs.selected") == [left[0]]  # the first symbol left, said next to the chips
    assert page.locator("#chips .note").inner_text() == f"ZGONE left the feed; charting {left[0]}"
    legend = page.locator("#legend-price button.line")
    wait_for(lambda: legend.all_inner_texts() == [left[0]], "the chart shows the first symbol left")
    pick(page, "ZGONE")  # a person typing it is told, not given the frozen line
    assert page.locator("#chips .note").inner_text() == "unknown symbol ZGONE"
    assert js(page, "window.__tradeobs.selected") == [left[0]]

    # it comes back: a new symbol, its rings start from its return
    left_at = snap["ts"]
    srv.post("/test/worker?symbols=ZGONE")
    wait_for(lambda: "ZGONE" in picker(page), "ZGONE back in the picker")
    wait_for(lambda: "ZGONE" in rings(page)[0], "a ring for ZGONE")
    since = js(
        page,
        """() => { const r = window.__tradeobs.ring, out = [];
                   r.px.ZGONE.forEach((v, i) => { if (v === v) out.push(r.t[i]); });
                   r.pnl.ZGONE.forEach((v, i) => { if (v === v) out.push(r.t[i]); });
                   return out; }""",
    )
    assert since and min(since) > left_at, (since, left_at)
    assert "ZGONE" not in js(page, "window.__tradeobs.selected")


def test_symbols_a_restarted_service_no_longer_trades_leave_the_page(
    live_server: Callable[..., LiveProcess], browser_page: Any
) -> None:
    """The service restarts trading 9 of its 12 symbols: the page reconnects, gets ``reset`` and a full frame
    without the other 3, and from then on offers, charts and keeps rings for those 9 only. A charted symbol that
    went is said; one still there stays charted."""
    srv = live_server()
    page = browser_page
    open_page(page, srv)
    before = srv.get("/test/info")["symbols"]
    page.locator("#sym-clear").click()
    for sym in ("AAPL", before[-1]):
        pick(page, sym)
    assert js(page, "window.__tradeobs.selected") == ["AAPL", before[-1]]
    srv.kill()
    srv.args = ("--symbols", "9")
    srv.start()
    wait_for(lambda: js(page, "window.__tradeobs.resets") >= 1, "reset from the new process")
    after = sorted(srv.get("/test/info")["symbols"])
    assert len(after) == 9 and "AAPL" in after and before[-1] not in after
    # the first full frame that lists symbols (the first after the reset may list none yet: it forgets nothing)
    wait_for(lambda: picker(page) == after, "the 3 gone symbols out of the picker")
    drawn_after(page, srv.snapshot()["seq"])
    assert sorted(js(page, "Object.keys(window.__tradeobs.state.symbols)")) == after
    assert picker(page) == after
    assert rings(page) == [after, after]
    assert js(page, "window.__tradeobs.selected") == ["AAPL"]
    assert page.locator("#chips .note").inner_text() == f"{before[-1]} left the feed"


def test_a_restarted_service_that_has_not_traded_yet_keeps_the_chart_choice(
    live_server: Callable[..., LiveProcess], browser_page: Any
) -> None:
    """A restarted service's first full frame may list no symbol (it has not traded yet). The page took that as every
    symbol gone: the user's chart choice was forgotten and refilled with the first symbol that came back (seen as a
    flaky "charting AAPL" in the test above). An empty full frame forgets nothing; the first full frame that lists
    symbols does."""
    srv = live_server()
    page = browser_page
    open_page(page, srv)
    before = srv.get("/test/info")["symbols"]
    page.locator("#sym-clear").click()
    for sym in (before[-1], "AAPL"):
        pick(page, sym)
    srv.kill()
    srv.args = ("--symbols", "9", "--idle-start")
    srv.start()
    wait_for(lambda: js(page, "window.__tradeobs.resets") >= 1, "reset from the new process")
    drawn_after(page, srv.snapshot()["seq"])
    assert js(page, "Object.keys(window.__tradeobs.state.symbols)") == []
    assert js(page, "window.__tradeobs.selected") == [before[-1], "AAPL"]
    srv.post("/test/start")
    after = sorted(srv.get("/test/info")["symbols"])
    assert "AAPL" in after and before[-1] not in after
    full = js(page, "window.__tradeobs.full")
    wait_for(lambda: js(page, "window.__tradeobs.full") > full + 1, "two more full frames")
    assert picker(page) == after
    assert js(page, "window.__tradeobs.selected") == ["AAPL"]
    assert page.locator("#chips .note").inner_text() == f"{before[-1]} left the feed"


def test_symbols_that_come_and_go_leave_nothing_behind(
    live_server: Callable[..., LiveProcess], browser_page: Any
) -> None:
    """Ten workers in turn each trade 25 symbols of their own, then exit (250 symbols seen in all, at most 37 at
    once; a full frame every 5 s, the rest deltas): the page's picker and chart rings hold the symbols there are,
    never more, and once the last worker has gone exactly the 12 of the service. (The page before kept a price
    and a P&L ring, 600 floats each, for every symbol it ever saw: here 262 of each at the end.)"""
    srv = live_server("--workers")
    page = browser_page
    open_page(page, srv)
    base = sorted(srv.snapshot()["symbols"])
    count = "Object.keys(window.__tradeobs.state.symbols).length"
    for r in range(10):
        syms = [f"ZC{r:02d}{i:02d}" for i in range(25)]
        wid = srv.post("/test/worker?symbols=" + ",".join(syms))
        wait_for(lambda: js(page, count) == len(base) + 25, f"round {r}: the worker's symbols on the page")
        drawn_after(page, js(page, "window.__tradeobs.state.seq"))
        assert len(picker(page)) == len(base) + 25, r
        assert [len(x) for x in rings(page)] == [len(base) + 25] * 2, r
        srv.post(f"/test/worker/exit?id={wid}")
        wait_for(lambda: js(page, count) == len(base), f"round {r}: the worker's symbols gone")
        drawn_after(page, js(page, "window.__tradeobs.state.seq"))
        assert picker(page) == base, r
        assert rings(page) == [base, base], r


def test_sorting_a_column_either_way_keeps_the_symbols_without_it_last(
    live_server: Callable[..., LiveProcess], browser_page: Any
) -> None:
    """At 1,000 symbols (5 strategies, 3 venues) a trader sorted P&L up to find the biggest losers and got a screen of
    "—": symbols holding no position (no P&L) sorted below every number. They go last in both directions."""
    import orjson

    now = time.time()
    pnl = {"L1": -900.0, "L2": -50.0, "W1": 20.0, "W2": 700.0}
    symbols: dict[str, dict[str, float]] = {s: {"px": 10.0, "pos": 1.0, "rpnl": 0.0, "upnl": v} for s, v in pnl.items()}
    symbols.update({s: {"px": 10.0} for s in ("A0", "B0", "Z0")})  # flat and never traded: no P&L
    frame = {"type": "full", "seq": 1, "ts": now, "symbols": symbols, "account": {}, "desk": {}, "working": {}}
    page = browser_page
    body = f"retry: 600000\n\nid: b0-1\nevent: frame\ndata: {orjson.dumps(frame).decode()}\n\n"
    open_on_stream(page, live_server(), body)
    wait_for(lambda: js(page, "window.__tradeobs.state && window.__tradeobs.state.seq") == 1, "the frame")

    def order() -> list[str]:
        rows = "Array.from(document.querySelectorAll('#positions tbody tr.row'))"
        return list(js(page, rows + ".map(r => r.dataset.sym)"))

    wait_for(lambda: len(order()) >= 4, "the rows in view")  # only those are in the page (virtual rows)
    header = page.locator('#positions th[data-sort="pnl"]')
    header.click()  # first click: down
    wait_for(lambda: order()[:4] == ["W2", "W1", "L2", "L1"], "P&L down, the symbols without P&L after")
    header.click()  # then up
    wait_for(lambda: order()[:4] == ["L1", "L2", "W1", "W2"], "P&L up, the symbols without P&L after")


@pytest.mark.parametrize("frames", ["delta", "full"])
def test_the_positions_filter_finds_a_scrolled_away_symbol_and_holds(
    live_server: Callable[..., LiveProcess], browser_page: Any, frames: str
) -> None:
    """At 1,000 symbols a trader could not find one in the positions table: it had no filter, and only the rows in
    view are in the page, so the browser's find does not see a symbol scrolled away. The filter box keeps the symbols
    containing its text (any case), says how many of all it shows, holds while frames (deltas or full frames) add and
    remove symbols, sorts within itself, and Escape shows every symbol again. (The page before had no box.)"""
    srv = live_server("--symbols", "300", "--workers", "--full-every", "3600" if frames == "delta" else "0")
    page = browser_page
    open_page(page, srv, frames=10)
    syms = srv.get("/test/info")["symbols"]
    assert len(syms) == 300
    box = page.locator("#pos-filter")
    rows = "Array.from(document.querySelectorAll('#positions tbody tr.row')).map(r => r.dataset.sym)"
    count = page.locator("#pos-count")

    def shown() -> list[str]:
        return list(js(page, rows))

    def matching(text: str, among: list[str]) -> list[str]:
        return sorted(s for s in among if text.lower() in s.lower())

    wait_for(lambda: count.inner_text() == "300 symbols", "every symbol counted")
    assert "SYM0255" not in shown()  # scrolled away: not in the page, so the browser's find cannot see it
    box.fill("sym025")  # lower case: the symbols are upper case
    want = matching("sym025", syms)
    assert "SYM0255" in want and 1 < len(want) <= 12  # fewer than the rows in view: all of them are in the page
    wait_for(lambda: shown() == want, "exactly the matching symbols, in symbol order")
    assert count.inner_text() == f"{len(want)} of 300 symbols"
    # frames keep coming and keep the filter; a symbol that comes and matches shows, one that does not stays out
    wid = srv.post("/test/worker?symbols=XSYM0255,QQQ")
    with_new = sorted([*want, "XSYM0255"])
    wait_for(lambda: shown() == with_new, "the new matching symbol among the rows")
    wait_for(lambda: count.inner_text() == f"{len(with_new)} of 302 symbols", "the new symbols counted")
    srv.post(f"/test/worker/exit?id={wid}")
    wait_for(lambda: shown() == want, "the gone symbol out of the rows")
    wait_for(lambda: count.inner_text() == f"{len(want)} of 300 symbols", "the gone symbols no longer counted")
    kind = "window.__tradeobs." + ("deltas" if frames == "delta" else "full")
    k0 = js(page, kind)
    wait_for(lambda: js(page, kind) > k0 + 10, f"ten more {frames} frames")
    assert shown() == want and count.inner_text() == f"{len(want)} of 300 symbols"
    # sorting works within the filter
    symbol = page.locator('#positions th[data-sort="sym"]')
    symbol.click()  # symbol is sorted up already: down
    wait_for(lambda: shown() == want[::-1], "the matching symbols, symbol down")
    snap = freeze(page, srv)
    page.locator('#positions th[data-sort="px"]').click()  # first click: down
    by_price = sorted(want, key=lambda s: (-snap["symbols"][s]["px"], s))
    wait_for(lambda: shown() == by_price, "the matching symbols, price down")
    assert count.inner_text() == f"{len(want)} of 300 symbols"
    # Escape clears it: every symbol again (the rows in view of all 300), counted as before
    box.press("Escape")
    assert box.input_value() == ""
    wait_for(lambda: count.inner_text() == "300 symbols", "every symbol counted again")
    everything = sorted(syms, key=lambda s: (-snap["symbols"][s]["px"], s))
    wait_for(lambda: shown() == everything[: len(shown())] and len(shown()) >= 12, "the first rows of all, price down")


def test_fractional_quantities_and_fx_prices_are_shown_as_they_are(
    live_server: Callable[..., LiveProcess], browser_page: Any
) -> None:
    """A crypto and an FX desk (a user's review): 0.5 BTC showed as position "1" and -1.5 as "-2", a 0.25 BTC fill
    as qty "0" ("partial, 0 left") and its working order as "0/1"; EUR/USD at 1.10053 showed "1.10" and its average
    entry 1.101996 "1.10". Quantities are shown to 8 decimals, prices to about 7 significant digits."""
    import orjson

    now = time.time()
    frame = {
        "type": "full",
        "seq": 1,
        "ts": now,
        "symbols": {
            "BTC/USD": {"px": 59920.148, "pos": 0.5, "avg": 60061.41797, "ntl": 29960.07, "rpnl": 0.0, "upnl": -70.6},
            "ETH/USD": {"px": 3012.5, "pos": -1.5, "avg": 3000.0, "ntl": -4518.75, "rpnl": 0.0, "upnl": -18.75},
            "EURUSD": {"px": 1.10053, "pos": 150000.0, "avg": 1.101996, "ntl": 165079.5, "rpnl": 0.0, "upnl": -219.9},
            "SHIB/USD": {"px": 0.00001234, "pos": 1e8, "avg": 0.00001201, "ntl": 1234.0, "rpnl": 0.0, "upnl": 33.0},
        },
        "account": {},
        "desk": {"working": 1},
        "working": {"w-1": {"s": "BTC/USD", "sd": "buy", "q": 1.0, "f": 0.25, "p": 59900.5, "t": now, "tr": None}},
    }
    fill = {"kind": "fill", "order_id": "w-1", "symbol": "BTC/USD", "side": "buy", "qty": 0.25, "price": 59900.5,
            "filled_qty": 0.25, "leaves": 0.75, "slippage_bps": 1.5, "ts": now, "id": "b0-2"}  # fmt: skip
    body = (
        "retry: 600000\n\n"
        f"id: b0-1\nevent: frame\ndata: {orjson.dumps(frame).decode()}\n\n"
        f"id: b0-2\nevent: event\ndata: {orjson.dumps(fill).decode()}\n\n"
    )
    page = browser_page
    open_on_stream(page, live_server(), body)  # this frame and fill (/config and /history are the server's)
    wait_for(lambda: js(page, "window.__tradeobs.state && window.__tradeobs.state.seq") == 1, "the frame")
    rows = page.locator("#positions tbody tr.row")
    wait_for(lambda: rows.count() == 4, "four rows")
    got = {}
    for i in range(rows.count()):
        cells = dict(zip(POSITION_COLUMNS, rows.nth(i).locator("td").all_inner_texts(), strict=False))
        got[cells["symbol"]] = (cells["px"], cells["pos"], cells["avg"])
    assert got == {
        "BTC/USD": ("59,920.15", "0.5", "60,061.42"),
        "ETH/USD": ("3,012.50", "-1.5", "3,000.00"),
        "EURUSD": ("1.10053", "150,000", "1.101996"),
        "SHIB/USD": ("0.00001234", "100,000,000", "0.00001201"),
    }, got
    working = page.locator('#working tbody tr[data-oid="w-1"]').locator("td").all_inner_texts()
    assert working[3] == "0.25/1", working
    blotter = page.locator("#blotter tbody tr", has_text="w-1")
    wait_for(lambda: blotter.count() == 1, "the fill in the blotter")
    cells = blotter.first.locator("td").all_inner_texts()
    assert "0.25" in cells and "partial, 0.75 left" in " ".join(cells), cells


def test_positions_cells_show_their_whole_value_at_a_laptop_width(
    live_server: Callable[..., LiveProcess], browser_page: Any
) -> None:
    """At 1400 px (the page's common width, and this suite's) the demo's own prices were cut to "52.447..." in every
    row: the price column was narrower than a 7-significant-digit price. Every positions cell must show its whole
    text (nothing clipped into an ellipsis) for a desk's ordinary values: equity, crypto, FX and futures prices, an
    FX position of 1.5 million, eight-digit notionals and six-digit P&L."""
    import orjson

    now = time.time()
    rows = {
        "AAPL": {
            "px": 52.21326,
            "pos": -220.0,
            "avg": 245.1227,
            "ntl": -53927.0,
            "rpnl": -68.01,
            "upnl": -130.13,
            "ord": 12345,
            "fill": 12000,
            "rej": 345,
            "p50": 0.0125,
            "p99": 0.25104,
            "age": 75,
        },
        "BTC/USD": {"px": 59920.148, "pos": 12.5, "avg": 60061.41797, "ntl": 749001.85, "rpnl": 0.0, "upnl": -70.6},
        "EURUSD": {
            "px": 1.10053,
            "pos": -1500000.0,
            "avg": 1.101996,
            "ntl": -1650795.0,
            "rpnl": -12345.67,
            "upnl": 2199.0,
        },
        "NVDA": {
            "px": 135.4636,
            "pos": 25000.0,
            "avg": 131.0101,
            "ntl": 3386590.0,
            "rpnl": 345678.91,
            "upnl": -111335.0,
            "ord": 9876,
            "fill": 9001,
            "rej": 345,
            "p50": 0.08,
            "p99": 0.99999,
            "age": 3600,
        },
        "ES": {"px": 6012.25, "pos": -40.0, "avg": 6001.5, "ntl": -12024500.0, "rpnl": -87654.32, "upnl": -21500.0},
    }
    frame = {"type": "full", "seq": 1, "ts": now, "symbols": rows, "account": {}, "desk": {}}
    body = f"retry: 600000\n\nid: b0-1\nevent: frame\ndata: {orjson.dumps(frame).decode()}\n\n"
    page = browser_page
    open_on_stream(page, live_server(), body)
    wait_for(lambda: page.locator("#positions tbody tr.row").count() == len(rows), "the rows")
    clipped = js(
        page,
        """() => [...document.querySelectorAll('#positions tbody tr.row td, #positions thead th')]
            .filter(c => c.scrollWidth > c.clientWidth).map(c => c.textContent)""",
    )
    assert clipped == [], clipped
    ages = js(
        page,
        "() => [...document.querySelectorAll('#positions tbody tr.row')]"
        ".map(r => r.dataset.sym + ' ' + r.cells[14].textContent)",
    )
    assert sorted(ages) == ["AAPL 1 m", "BTC/USD —", "ES —", "EURUSD —", "NVDA 1 h"], ages  # in its narrow column


def test_negative_axis_labels_keep_their_sign_and_fit(
    live_server: Callable[..., LiveProcess], browser_page: Any
) -> None:
    srv = live_server()
    page = browser_page
    open_page(page, srv, frames=30)
    labels = js(page, "window.__tradeobs.axes['chart-pnl']")
    negative = [x for x in labels if number(x) < 0]
    assert negative and all(x.startswith("-") for x in negative), labels
    assert any(len(x) >= 6 for x in negative), labels  # "-10,000": the width that was cut to "10,000"
    # Each label fits the axis uPlot laid out: its width, plus tick and gap, is inside the plot's left edge.
    fits = js(
        page,
        """() => {
          const u = window.__tradeobs.charts.pnl, ax = u.axes[1];
          const ctx = document.createElement('canvas').getContext('2d');
          ctx.font = '12px system-ui, sans-serif';
          const left = u.bbox.left / devicePixelRatio;
          return window.__tradeobs.axes['chart-pnl'].map(
            l => [l, ctx.measureText(l).width + ax.ticks.size + ax.gap, left]);
        }""",
    )
    for label, needed, left in fits:
        assert needed <= left, (label, needed, left)


def test_time_axes_show_clock_times_inside_the_chart(
    live_server: Callable[..., LiveProcess], browser_page: Any
) -> None:
    """The charts' time axes showed ":05" per tick and a date line under the first tick that the chart's left edge
    cut ("/5/26 10:44am"). Each tick is now its clock time, and every label lies inside its canvas."""
    srv = live_server()
    page = browser_page
    open_page(page, srv, frames=30)
    got = js(
        page,
        """() => ['price', 'pnl', 'latency'].map(k => {
          const u = window.__tradeobs.charts[k], a = window.__tradeobs.axes['chart-' + k + ':x'];
          const ctx = document.createElement('canvas').getContext('2d');
          ctx.font = '12px system-ui, sans-serif';
          const canvas = u.root.querySelector('canvas').getBoundingClientRect().width;
          const left = u.bbox.left / devicePixelRatio;  // the plot's left edge in the canvas
          return a.labels.map((l, i) => {
            const x = left + u.valToPos(a.splits[i], 'x'), half = ctx.measureText(l).width / 2;
            return [k, l, x - half >= 0 && x + half <= canvas];
          });
        }).flat()""",
    )
    assert len(got) >= 6, got
    assert all(re.fullmatch(r"\d\d:\d\d:\d\d", label) for _, label, _ in got), got
    assert all(inside for _, _, inside in got), got


def test_no_two_time_ticks_read_the_same_clock_time(live_server: Callable[..., LiveProcess], browser_page: Any) -> None:
    """The time labels are whole seconds, but uPlot chose its ticks by the room it had: a wide chart with a few seconds
    of data got a tick every 0.5 s or 0.2 s, and the axis read "11:19:19 11:19:19 11:19:20 11:19:20" (the demo's first
    seconds on a 1400 px desk). The ticks are now whole seconds or more apart, so each label is a different time."""
    srv = live_server()
    page = browser_page
    for frames in (12, 30, 60):  # about 1, 3 and 6 s of points: the spans where sub-second ticks were picked
        open_page(page, srv, frames=frames)
        got = js(
            page,
            """() => ['price', 'pnl', 'latency'].map(k => {
              const a = window.__tradeobs.axes['chart-' + k + ':x'];
              return [k, a.splits, a.labels];
            })""",
        )
        for chart, splits, labels in got:
            shown = [(s, label) for s, label in zip(splits, labels, strict=True) if label]
            assert shown, (frames, chart, splits)
            steps = {round(b[0] - a[0], 6) for a, b in itertools.pairwise(shown)}
            assert all(step >= 1 for step in steps), (frames, chart, steps, labels)
            assert len({label for _, label in shown}) == len(shown), (frames, chart, labels)


def test_a_wall_clock_stepped_back_keeps_the_charts_time_axis_in_order(
    live_server: Callable[..., LiveProcess], browser_page: Any
) -> None:
    """The charts took each frame's server time as it came: after the server's clock stepped back 60 s (NTP, an
    operator), the new points were drawn a minute before the ones already there, the lines doubling back across the
    chart. The points already drawn now move back by the step, so the x axis stays in order and the newest points
    carry the server's clock as it is now."""
    srv = live_server()
    page = browser_page
    open_page(page, srv, frames=20)
    srv.post("/test/clock?step=-60")
    frames = js(page, "window.__tradeobs.frames")
    wait_for(lambda: js(page, "window.__tradeobs.frames") >= frames + 15, "frames after the step")
    xs = js(page, "window.__tradeobs.chart.price[0]")
    newest = js(page, "window.__tradeobs.state.ts")
    assert len(xs) >= 30, xs
    back = [(a, b) for a, b in itertools.pairwise(xs) if b <= a]
    assert not back, f"{len(back)} points drawn before the one left of them: {back[:3]}"
    assert xs[-1] >= newest - 1 and xs[-1] < time.time() - 50, (xs[-1], newest)  # the server's clock, 60 s back
    assert js(page, "window.__tradeobs.clockSteps") == 1  # one step seen, once


def test_the_time_axis_has_room_for_a_label_on_either_edge_of_the_plot(
    live_server: Callable[..., LiveProcess], browser_page: Any
) -> None:
    """A time tick on the plot's edge has its label centred there: the y axis on the left and the padding on the right
    must each hold half of it. uPlot's right padding is half the y axis, so a chart with narrow y labels ("0.5") cut
    the label of a tick near its right edge; in a loaded run the test above saw it now and then (it depends on where
    the ticks fall). Here the room itself is measured, whatever the ticks."""
    srv = live_server()
    page = browser_page
    open_page(page, srv, frames=30)
    got = js(
        page,
        """() => ['price', 'pnl', 'latency'].map(k => {
          const u = window.__tradeobs.charts[k];
          const ctx = document.createElement('canvas').getContext('2d');
          ctx.font = '12px system-ui, sans-serif';
          const half = Math.max(...['00:00:00', '88:88:88', '12:34:56'].map(t => ctx.measureText(t).width)) / 2;
          const canvas = u.root.querySelector('canvas').getBoundingClientRect().width;
          const left = u.bbox.left / devicePixelRatio, right = canvas - (u.bbox.left + u.bbox.width) / devicePixelRatio;
          return [k, Math.round(left), Math.round(right), half];
        })""",
    )
    assert len(got) == 3, got
    for chart, left, right, half in got:
        assert left >= half and right >= half, (chart, left, right, half)


def test_every_symbol_can_be_charted(live_server: Callable[..., LiveProcess], browser_page: Any) -> None:
    srv = live_server()
    page = browser_page
    open_page(page, srv)
    symbols = sorted(srv.snapshot()["symbols"])
    page.locator("#sym-clear").click()
    for sym in symbols:  # typed into the picker, as a person would
        page.locator("#sym-pick").fill(sym)
        page.locator("#sym-pick").press("Enter")
    assert js(page, "window.__tradeobs.selected") == symbols
    chips = page.locator("#chips .chip")  # drawn with the next frame of the page, not at once
    wait_for(lambda: sorted(chips.evaluate_all("els => els.map(e => e.dataset.sym)")) == symbols, "a chip each")
    legend = page.locator("#legend-price button.line")
    wait_for(lambda: sorted(legend.all_inner_texts()) == symbols, "a line per symbol in the legend")
    frames = js(page, "window.__tradeobs.frames")
    wait_for(lambda: js(page, "window.__tradeobs.frames") > frames + 10, "more frames")
    price = js(page, "window.__tradeobs.chart.price")
    for i, sym in enumerate(symbols, start=1):  # every line has points, normalised to % change
        points = [v for v in price[i][-10:] if v is not None]
        assert points and all(abs(v) < 50 for v in points), (sym, price[i][-10:])
    # raw prices: the last point of each line is the price the snapshot gives
    page.locator("#price-mode").select_option("raw")
    snap = freeze(page, srv)
    price = js(page, "window.__tradeobs.chart.price")
    for i, sym in enumerate(symbols, start=1):
        assert price[i][-1] == pytest.approx(snap["symbols"][sym]["px"]), sym
    # the positions table's checkbox toggles a line too
    page.locator('#positions input[data-chart="AAPL"]').uncheck()
    wait_for(lambda: "AAPL" not in js(page, "window.__tradeobs.selected"), "AAPL unselected")
    page.locator('#positions input[data-chart="AAPL"]').check()
    wait_for(lambda: "AAPL" in js(page, "window.__tradeobs.selected"), "AAPL selected")
    # and the choice survives a reload
    page.reload()
    wait_for(lambda: js(page, "window.__tradeobs && window.__tradeobs.frames") > 2, "frames after reload")
    assert sorted(js(page, "window.__tradeobs.selected")) == symbols


def test_a_cancel_of_a_partly_filled_orders_rest_says_what_filled_and_what_was_cancelled(
    live_server: Callable[..., LiveProcess], browser_page: Any
) -> None:
    """A 10-lot filled 4, the rest cancelled: the cancel's row showed the order's qty, 10, and the reason only, so
    the blotter read "cancel 10" as if nothing had filled. The event (orders.py ``_on_cancel``: the order's qty and
    ``filled_qty``) now reads "4 filled, 6 cancelled"; a cancel with nothing filled reads its reason, as before."""
    import orjson

    now = time.time()
    frame = {"type": "full", "seq": 1, "ts": now, "symbols": {}, "account": {}, "desk": {}, "working": {}}
    common = {"symbol": "AAPL", "side": "buy", "price": 190.0, "trace_id": None}
    events = [
        {"kind": "fill", "order_id": "p-1", "qty": 4.0, "filled_qty": 4.0, "leaves": 6.0, "slippage_bps": 0.0},
        {"kind": "cancel", "order_id": "p-1", "qty": 10.0, "filled_qty": 4.0, "reason": "end of day"},
        {"kind": "cancel", "order_id": "n-1", "qty": 10.0, "filled_qty": 0.0, "reason": "end of day"},
    ]
    body = f"retry: 600000\n\nid: b0-1\nevent: frame\ndata: {orjson.dumps(frame).decode()}\n\n"
    for i, ev in enumerate(events, start=2):
        data = {**common, **ev, "ts": now, "id": f"b0-{i}"}
        body += f"id: b0-{i}\nevent: event\ndata: {orjson.dumps(data).decode()}\n\n"
    page = browser_page
    open_on_stream(page, live_server(), body)

    def mine() -> list[list[str]]:  # the scenario service's own history is in the blotter too
        return [r for r in _blotter(page) if r[9].endswith(("p-1", "n-1"))]

    wait_for(lambda: len(mine()) == 3, "the three events in the blotter")
    cancels = {r[9][-3:]: r for r in mine() if r[1] == "cancel"}
    assert cancels["p-1"][6] == "10" and cancels["p-1"][9] == "4 filled, 6 cancelled, end of day · p-1", cancels
    assert cancels["n-1"][9] == "end of day · n-1", cancels


def _blotter(page: Any) -> list[list[str]]:
    """The blotter's rows as cell texts, padded to the header's width (innerText drops trailing empty cells)."""
    n = page.locator("#blotter thead th").count()
    return [(r.split("\t") + [""] * n)[:n] for r in page.locator("#blotter tbody tr:not(.spacer)").all_inner_texts()]


def test_blotter_filters_pause_window_and_detail_fits(
    live_server: Callable[..., LiveProcess], browser_page: Any
) -> None:
    srv = live_server()
    page = browser_page
    loaded = time.monotonic()
    open_page(page, srv)
    info = srv.get("/test/info")

    page.locator("#f-strategy").select_option("meanrev")
    wait_for(lambda: _blotter(page) and all(r[2] == "meanrev" for r in _blotter(page)), "meanrev only")
    page.locator("#f-venue").select_option("alpaca-paper")  # meanrev trades on ib-paper only
    wait_for(lambda: _blotter(page) == [], "nothing")
    page.locator("#f-strategy").select_option("")
    wait_for(lambda: _blotter(page) and all(r[3] == "alpaca-paper" for r in _blotter(page)), "alpaca-paper only")
    page.locator("#f-venue").select_option("")

    # the long venue reject: its detail cell is cut to its column (ellipsis), the full text in its title
    page.locator("#f-kind").select_option("reject")
    row = page.locator("#blotter tbody tr.reject", has_text="venue rejected")
    wait_for(lambda: row.count() == 1, "the long reject")
    detail = row.locator("td.detail")
    assert detail.get_attribute("title") == f"{info['long_reason']} · venue-1"
    # The blotter re-renders as events arrive: a cell found just before a render is detached by the time it is
    # measured (closest() finds no card); measure one that is in the page.
    geo = wait_for(
        lambda: detail.evaluate(
            """td => { if (!td.isConnected) return null;
                       const card = td.closest('.card').getBoundingClientRect(), r = td.getBoundingClientRect();
                       const wrap = td.closest('.scroll');
                       return { cut: td.scrollWidth > td.clientWidth, right: r.right, cardRight: card.right,
                                overflow: wrap.scrollWidth - wrap.clientWidth }; }"""
        ),
        "the long reject's cell in the page",
    )
    assert geo["cut"] and geo["right"] <= geo["cardRight"] and geo["overflow"] <= 0, geo
    page.locator("#f-kind").select_option("")

    # pause: the rows stay put while events keep arriving; resume shows the new ones
    page.locator("#pause").click()
    first = page.locator("#blotter tbody tr:not(.spacer)").first.get_attribute("data-id")
    events = js(page, "window.__tradeobs.events")
    wait_for(lambda: js(page, "window.__tradeobs.events") >= events + 4, "events while paused")
    # The events are counted as they arrive; the blotter (and its note) renders on the next scheduled frame.
    wait_for(lambda: page.locator("#paused-note").inner_text().endswith(" new"), "the paused note counts new rows")
    assert page.locator("#blotter tbody tr:not(.spacer)").first.get_attribute("data-id") == first
    page.locator("#pause").click()
    wait_for(lambda: page.locator("#blotter tbody tr:not(.spacer)").first.get_attribute("data-id") != first, "resumed")

    # a time window: the setup's rejects (at start) leave "last 15 s", the order flow stays
    page.locator("#f-kind").select_option("reject")
    wait_for(lambda: any("venue-1" in r[9] for r in _blotter(page)), "setup reject shown")
    time.sleep(max(0.0, 16.5 - (time.monotonic() - loaded)))
    page.locator("#f-window").select_option("15")
    wait_for(lambda: not any("venue-1" in r[9] for r in _blotter(page)), "setup reject out of the window")
    page.locator("#f-kind").select_option("")
    wait_for(lambda: len(_blotter(page)) > 0, "recent events in the window")
    now = js(page, "Date.now() / 1000")
    times = [e["ts"] for e in srv.get("/telemetry/history")["events"]]
    assert min(times) < now - 15  # there was something to leave out


def test_orders_and_fills_link_to_grafana_and_no_collector_is_neutral(
    live_server: Callable[..., LiveProcess], browser_page: Any
) -> None:
    srv = live_server("--agent", "default", "--grafana", GRAFANA + "/")
    page = browser_page
    open_page(page, srv)
    assert srv.snapshot()["health"]["export"] == "not_configured"  # nothing listens on the default endpoint
    # one fill row, pinned by its id (new fills keep arriving above it), then the history that holds it
    fid = page.locator("#blotter tbody tr.fill").first.get_attribute("data-id")
    fill = page.locator(f'#blotter tbody tr.fill[data-id="{fid}"]')
    events = {e["id"]: e for e in srv.get("/telemetry/history")["events"]}
    ev = events[fid]
    assert ev["trace_id"] and len(ev["trace_id"]) == 32
    trace = urllib.parse.urlsplit(fill.locator("a.trace").get_attribute("href"))
    assert f"{trace.scheme}://{trace.netloc}{trace.path}" == GRAFANA + "/explore"
    q = urllib.parse.parse_qs(trace.query)
    assert q["schemaVersion"] == ["1"]
    (pane,) = json.loads(q["panes"][0]).values()
    assert pane["datasource"] == "jaeger"
    jaeger = {"type": "jaeger", "uid": "jaeger"}
    assert pane["queries"] == [{"refId": "A", "datasource": jaeger, "query": ev["trace_id"]}]
    assert int(pane["range"]["from"]) < ev["ts"] * 1000 < int(pane["range"]["to"])
    order = urllib.parse.urlsplit(fill.locator("a.order").get_attribute("href"))
    assert order.path == "/d/tradeobs-order"
    q = urllib.parse.parse_qs(order.query)
    assert q["var-job"] == ["e2e-desk"] and q["var-order_id"] == [ev["order_id"]]
    assert q["var-trace_id"] == [ev["trace_id"]]
    # working orders link too: the order id opens the drill-down, "trace" the trace
    rest = page.locator('#working tbody tr[data-oid="rest-1"]')
    row = srv.snapshot()["working"]["rest-1"]
    href = rest.locator("a.order").get_attribute("href")
    assert "var-order_id=rest-1" in href and f"var-trace_id={row['tr']}" in href
    assert row["tr"] in urllib.parse.unquote(rest.locator("a.trace").get_attribute("href"))
    assert page.locator("#blotter thead th").last.is_visible() and page.locator("#working thead th").last.is_visible()

    # no collector configured: said plainly, neutral, and no export-failure counter shown as an error
    export = page.locator('#health dd[data-k="export"]')
    assert export.inner_text() == "collector not configured"
    assert export.get_attribute("class") == "neutral"
    assert page.locator('#health dd[data-k="exports_failed"]').count() == 0
    assert page.locator("#health dd.bad").count() == 0
    assert page.locator("#export").inner_text() == "collector not configured"
    assert page.locator("#export").get_attribute("data-state") == "not_configured"


def test_a_failing_export_is_red_and_an_engaged_kill_switch_alarms(
    live_server: Callable[..., LiveProcess], browser_page: Any
) -> None:
    srv = live_server("--agent", "failing", "--kill-switch", "on")
    page = browser_page
    open_page(page, srv)
    wait_for(lambda: srv.snapshot()["health"]["export"] == "failing", "export failing", limit=30)
    export = page.locator('#health dd[data-k="export"]')
    wait_for(lambda: export.inner_text() == "export failing", "page says failing")
    assert export.get_attribute("class") == "bad"
    failures = page.locator('#health dd[data-k="exports_failed"]')
    wait_for(lambda: failures.count() == 1 and number(failures.inner_text()) > 0, "failures counted")
    assert failures.get_attribute("class") == "bad"
    assert page.locator("#export").get_attribute("data-state") == "failing"
    assert kpi(page, "kill_switch") == "ENGAGED"
    assert "alarm" in (page.locator("#kpi-kill").get_attribute("class") or "")


def test_a_thousand_symbols(live_server: Callable[..., LiveProcess], browser_page: Any) -> None:
    srv = live_server("--symbols", "1000", "--kill-switch", "none")
    page = browser_page
    open_page(page, srv, frames=20)
    assert page.locator("#pos-count").inner_text() == "1000 symbols"
    assert not page.locator("#kpi-kill").is_visible()  # never reported: not shown
    # only the rows in view are in the DOM; the scroller is as tall as all of them
    rendered = page.locator("#positions tbody tr.row").count()
    assert 10 <= rendered <= 60, rendered
    assert js(page, "document.getElementById('pos-wrap').scrollHeight") >= 1000 * 20
    page.locator("#pos-wrap").evaluate("el => el.scrollTop = el.scrollHeight")
    last = page.locator('#positions tbody tr.row[data-sym="SYM0999"]')
    wait_for(lambda: last.count() == 1, "the last symbol scrolled into view")
    snap = srv.snapshot()
    assert shows(last.locator("td").nth(3).inner_text(), snap["symbols"]["SYM0999"]["pos"], 0)
    # any symbol can be charted: the last one and one from the middle, not only the first ones
    page.locator("#sym-clear").click()
    for sym in ("SYM0999", "SYM0500"):
        page.locator("#sym-pick").fill(sym)
        page.locator("#sym-pick").press("Enter")
    frames = js(page, "window.__tradeobs.frames")
    wait_for(lambda: js(page, "window.__tradeobs.frames") > frames + 5, "frames")
    price = js(page, "window.__tradeobs.chart.price")
    assert all(any(v is not None for v in series[-5:]) for series in price[1:]) and len(price) == 3
    # at most 20 lines at once: the 21st is refused with a note, not silently
    for i in range(18):
        page.locator("#sym-pick").fill(f"SYM{100 + i:04d}")
        page.locator("#sym-pick").press("Enter")
    page.locator("#sym-pick").fill("SYM0300")
    page.locator("#sym-pick").press("Enter")
    assert len(js(page, "window.__tradeobs.selected")) == 20
    assert "at most 20" in page.locator("#chips .note").inner_text()
    f0 = js(page, "window.__tradeobs.frames")
    wait_for(lambda: js(page, "window.__tradeobs.frames") >= f0 + 20, "frames keep coming")


def test_the_page_holds_the_newest_5000_events_and_its_hook_names_the_same_ones(
    browser_page: Any, live_server: Callable[..., LiveProcess]
) -> None:
    """Past 5,500 events the page trimmed 500 of its rows (5,001 left) and its test hook's ids to 5,000: the hook
    did not name every event the page held. Now both are the newest MAX_EVENTS (5,000), one constant."""
    import orjson

    from tradeobs_agent.live.frames import FrameBuilder
    from tradeobs_agent.metrics import Registry

    now = time.time()
    frame = {"type": "full", "seq": 1, "ts": now, **FrameBuilder(Registry()).build()}
    n = 5_501  # one past the trim: the page goes back to 5,000
    ids = [f"b0-{i}" for i in range(2, n + 2)]
    body = "retry: 600000\n\n" + f"id: b0-1\nevent: frame\ndata: {orjson.dumps(frame).decode()}\n\n"
    fill = {"kind": "fill", "symbol": "AAPL", "side": "buy", "qty": 1.0, "price": 190.0, "ts": now}
    body += "".join(
        f"id: {i}\nevent: event\ndata: {orjson.dumps({**fill, 'order_id': f'o-{k}', 'id': i}).decode()}\n\n"
        for k, i in enumerate(ids)
    )
    page = browser_page
    empty = orjson.dumps({"frames": [], "events": [], "last_id": ""})  # no event but the stream's
    page.route(
        "**/telemetry/history*",
        lambda route: route.fulfill(status=200, headers={"content-type": "application/json"}, body=empty),
    )
    open_on_stream(page, live_server(), body)
    wait_for(lambda: js(page, "window.__tradeobs.events") >= n, "every event", limit=60)
    assert js(page, "window.__tradeobs.events") == n
    wait_for(lambda: page.locator("#blotter-note").inner_text() == "5000 events", "the blotter's count", limit=30)
    assert js(page, "window.__tradeobs.eventIds") == ids[-5000:]
