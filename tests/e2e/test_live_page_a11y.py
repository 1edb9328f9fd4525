"""The live page for a red-green colour-blind trader, a keyboard-only user and a screen-reader user, in real headless
Chromium against the scenario service (live_server.py).

Accessible names are Chromium's own (its accessibility tree through the DevTools protocol), colours are computed
styles (contrast as WCAG 2.1 defines it), focus moves by ``keyboard.press("Tab")``, and the live region's changes
are counted by a ``MutationObserver`` while frames stream at 10 Hz.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tests._util import wait_for
from tests.e2e.conftest import LiveProcess
from tests.e2e.test_live_page import GRAFANA, js, open_page
from tests.e2e.test_live_page_mobile import contrast

pytestmark = pytest.mark.e2e


def accessible_name(page: Any, cdp: Any, expr: str) -> str:
    """Chromium's accessible name of the element ``expr`` evaluates to (what a screen reader says)."""
    obj = cdp.send("Runtime.evaluate", {"expression": expr})["result"]
    nodes = cdp.send("Accessibility.getPartialAXTree", {"objectId": obj["objectId"], "fetchRelatives": False})["nodes"]
    return str(nodes[0].get("name", {}).get("value", ""))


# What has the focus: its kind, its key on the page, the outline drawn for it and the background behind it.
FOCUSED = """() => {
  const el = document.activeElement, cs = getComputedStyle(el);
  let bg = el, c;
  while (bg && ((c = getComputedStyle(bg).backgroundColor) === 'rgba(0, 0, 0, 0)')) bg = bg.parentElement;
  const row = el.closest('tr');
  const key = el.id || (el.dataset.remove !== undefined ? 'remove ' + el.dataset.remove : '') ||
    (el.dataset.chart ? 'chart ' + el.dataset.chart : '') || (el.classList.contains('sort') ? 'sort ' +
    el.parentElement.dataset.sort : '') || (row ? row.closest('table').id + ' ' + (row.dataset.id || row.dataset.oid ||
    row.rowIndex) + ' ' + el.tagName + '.' + el.className : el.tagName + '.' + el.className);
  return { tag: el.tagName, key, outline: cs.outlineStyle, width: parseFloat(cs.outlineWidth), ring: cs.outlineColor,
           bg: bg ? c : 'rgb(255, 255, 255)' };
}"""


def tab_through(page: Any, limit: int = 200) -> list[dict[str, Any]]:
    """Every stop Tab reaches from the top of the page, in order, each with its accessible name."""
    cdp = page.context.new_cdp_session(page)
    js(page, "() => document.activeElement && document.activeElement.blur()")
    stops: list[dict[str, Any]] = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        got = js(page, FOCUSED)
        if got["tag"] == "BODY":
            break
        got["name"] = accessible_name(page, cdp, "document.activeElement")
        stops.append(got)
    return stops


def test_every_control_is_reached_by_tab_named_ringed_and_kept(
    live_server: Callable[..., LiveProcess], browser_page: Any
) -> None:
    """A keyboard-only user and a screen reader: Tab reaches every control (the boxes, the selects, clear, pause, each
    chip's remove button, the sort headers, the chart checkboxes, the Grafana links, and now the detail cells, which
    a keyboard could not reach: a long reject reason cut to its column could not be read), each with a ring of at
    least 3:1 and a name of its own. The chips' remove buttons were all named by their sign (times), the chart
    header "✓", and the Grafana links "order" and "trace" in every row. The focus stays on a blotter cell while
    events arrive and on a working order's link while its age moves (the rows written again took it, and it fell
    to the page's start)."""
    srv = live_server("--agent", "default", "--grafana", GRAFANA + "/")
    page = browser_page
    open_page(page, srv)
    wait_for(lambda: page.locator("#blotter tbody tr.fill a.trace").count() > 0, "a fill with its links")
    srv.post("/test/freeze")  # the rows hold still while Tab walks through them
    time.sleep(1)
    stops = tab_through(page)
    keys = [s["key"] for s in stops]
    for want in [
        "sym-pick",
        "price-mode",
        "sym-clear",
        "pos-filter",
        "f-kind",
        "f-strategy",
        "f-venue",
        "f-window",
        "pause",
        "sort sym",
        "sort pnl",
        "sort age",
        "chart AAPL",
        "chart XOM",
    ]:
        assert want in keys, (want, keys)
    selected = js(page, "window.__tradeobs.selected")
    assert selected and all(f"remove {s}" in keys for s in selected), keys
    assert any(k.startswith("blotter ") and k.endswith("TD.detail") for k in keys), keys
    assert any(k.startswith("blotter ") and k.endswith("A.trace") for k in keys), keys
    assert any(k.startswith("working ") and k.endswith("A.order") for k in keys), keys
    assert any(k.startswith("reasons ") and k.endswith("TD.detail") for k in keys), keys

    unnamed = [(s["key"], s["name"]) for s in stops if not any(ch.isalpha() for ch in s["name"])]
    assert unnamed == [], unnamed
    names = [s["name"] for s in stops if not s["key"].endswith("TD.detail")]  # a cell's name is its text
    twice = sorted({n for n in names if names.count(n) > 1})
    assert twice == [], twice
    assert f"remove {selected[0]} from the charts" in names
    no_ring = [
        (s["key"], s["outline"], s["width"], s["ring"], s["bg"])
        for s in stops
        if s["outline"] == "none" or s["width"] < 2 or contrast(s["ring"], s["bg"]) < 3
    ]
    assert no_ring == [], no_ring

    # operated from the keyboard: Space charts a symbol, Enter shows a cut reason in full, Enter pauses
    box = page.locator('#positions tbody input[data-chart="XOM"]')
    box.focus()
    on = "XOM" in js(page, "window.__tradeobs.selected")
    page.keyboard.press("Space")
    wait_for(lambda: ("XOM" in js(page, "window.__tradeobs.selected")) != on, "Space toggles the chart checkbox")
    cell = page.locator("#reasons tbody td.detail").first
    cell.focus()
    page.keyboard.press("Enter")
    assert page.locator("#card-risk .detail-note").inner_text() == cell.get_attribute("title")
    page.locator("#f-kind").focus()
    page.keyboard.press("ArrowDown")
    wait_for(lambda: page.locator("#f-kind").input_value() == "order", "an arrow picks the next kind")
    page.keyboard.press("ArrowUp")
    wait_for(lambda: page.locator("#f-kind").input_value() == "", "and back")

    # the focus is kept while the page streams
    srv.post("/test/resume")
    page.locator("#blotter-wrap").evaluate("el => el.scrollTop = 0")
    page.locator("#f-window").focus()
    page.keyboard.press("Tab")  # pause
    page.keyboard.press("Tab")  # the header's "slip bp"
    page.keyboard.press("Tab")  # the newest row's detail cell
    where = js(page, FOCUSED)["key"]
    assert where.startswith("blotter ") and where.endswith("TD.detail"), where
    events = js(page, "window.__tradeobs.events")
    wait_for(lambda: js(page, "window.__tradeobs.events") >= events + 3, "events arriving", limit=30)
    draws = js(page, "window.__tradeobs.draws")
    wait_for(lambda: js(page, "window.__tradeobs.draws") > draws + 5, "the page drawing")
    assert js(page, FOCUSED)["key"] == where
    page.keyboard.press("Shift+Tab")  # off the table: the rows that came meanwhile are drawn
    page.keyboard.press("Shift+Tab")
    wait_for(
        lambda: page.locator("#blotter tbody tr").first.get_attribute("data-id") != where.split(" ")[1],
        "the blotter catching up",
    )
    link = page.locator("#working tbody a.order").first
    link.focus()
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Tab")  # from the keyboard (a script's focus() is not :focus-visible)
    where = js(page, FOCUSED)["key"]
    assert where.startswith("working ") and where.endswith("A.order"), where
    draws = js(page, "window.__tradeobs.draws")
    wait_for(lambda: js(page, "window.__tradeobs.draws") > draws + 20, "two seconds of drawing: the ages moved")
    assert js(page, FOCUSED)["key"] == where
    page.context.route(GRAFANA + "/**", lambda route: route.fulfill(status=200, body="grafana"))
    with page.expect_popup() as popup:  # and Enter opens it
        page.keyboard.press("Enter")
    assert popup.value.url.startswith(GRAFANA + "/d/"), popup.value.url


# Every mutation of the element ``sel``, counted from now in window.__mutations.
COUNT_MUTATIONS = """(sel) => {
  window.__mutations = 0;
  new MutationObserver((records) => { window.__mutations += records.length; }).observe(document.querySelector(sel),
    { subtree: true, childList: true, characterData: true, attributes: true });
}"""


def test_the_connection_state_is_a_polite_live_region_that_speaks_only_when_it_changes(
    live_server: Callable[..., LiveProcess], browser_page: Any
) -> None:
    """A screen reader: the connection badge (connected, reconnecting, stale, offline) was a plain span, so nobody
    heard the stream go; and a second tab, which follows the first one's stream, wrote the same "connected" into it
    every second (15 mutations in 5 s). It is a polite status region now, written only when the state changes: no
    mutation in 5 s of streaming at 10 Hz in either tab, and the drop and reconnect are written, and read."""
    srv = live_server()
    page = browser_page
    open_page(page, srv)
    follower = page.context.new_page()
    open_page(follower, srv)
    assert (js(page, "window.__tradeobs.role"), js(follower, "window.__tradeobs.role")) == ("holder", "follower")
    for p in (page, follower):
        status = p.locator("#status")
        assert status.get_attribute("role") == "status" and status.get_attribute("aria-live") == "polite"
        assert p.get_by_role("status", name="connection").inner_text() == "connected"
        js(p, f"() => ({COUNT_MUTATIONS})('#status')")
    frames = js(page, "window.__tradeobs.frames")
    time.sleep(5)
    assert js(page, "window.__tradeobs.frames") >= frames + 20  # it streamed meanwhile
    assert (js(page, "window.__mutations"), js(follower, "window.__mutations")) == (0, 0)
    # the one live region on the page besides the notes a user's own action writes: nothing else is aria-live
    live = js(
        page,
        "() => Array.from(document.querySelectorAll('[aria-live], [role=status], [role=alert], [role=log]'))"
        ".map(e => e.id || e.className)",
    )
    assert sorted(live) == sorted(["status", "tabs-note", "chips-note", *["detail-note"] * 3]), live
    # each note changes only on what a user does (a click, a symbol typed) or a symbol leaving: not with frames
    for p in (page, follower):
        js(p, f"() => ({COUNT_MUTATIONS})('main')")
        js(
            p,
            "() => { window.__liveMutations = 0; for (const el of document.querySelectorAll('#chips-note, "
            ".detail-note, #tabs-note')) new MutationObserver((r) => { window.__liveMutations += r.length; })"
            ".observe(el, { subtree: true, childList: true, characterData: true }); }",
        )
    time.sleep(3)
    assert js(page, "window.__mutations") > 0  # the tables moved...
    assert (js(page, "window.__liveMutations"), js(follower, "window.__liveMutations")) == (0, 0)  # ...the notes not

    opens = js(page, "window.__tradeobs.opens")
    js(page, f"() => ({COUNT_MUTATIONS})('#status')")
    srv.post("/test/drop")
    wait_for(lambda: js(page, "window.__tradeobs.opens") > opens, "a new stream")
    wait_for(lambda: js(page, "window.__tradeobs.status") == "connected", "connected again")
    assert js(page, "window.__mutations") > 0
    assert page.locator("#status").inner_text() == "connected"


def test_nothing_is_said_by_colour_alone_and_the_charts_have_text(
    live_server: Callable[..., LiveProcess], browser_page: Any
) -> None:
    """A red-green colour-blind trader (deuteranopia: the page's red #ff8a8a and green #8ad6a0 read alike) and a screen
    reader. P&L keeps its sign in text (+1,023.41, -2,345.67); but a stale symbol's market-data age, the data
    freshness, a reject rate over 5%, a limit over 100% were red and nothing else, and the latency chart's p50 and p99
    were a green and a pink line. Each red value now has a sign before it (read as "alert:"), p99 is dashed, and each
    chart, a canvas a screen reader cannot read, has a name with each line's last value and range."""
    srv = live_server()
    page = browser_page
    open_page(page, srv)
    stale = page.locator("#positions tbody tr.row.stale")
    wait_for(lambda: stale.count() == 1, "XOM stale", limit=30)

    signs = js(
        page,
        """() => Array.from(document.querySelectorAll('.pos, .neg')).map(e =>
        [e.id || e.closest('tr').dataset.sym + ':' + e.cellIndex, e.classList.contains('pos') ? '+' : '-',
         e.textContent])""",
    )
    assert len(signs) > 20, signs
    money = {"kpi-pnl", "kpi-pnl_day", "kpi-rpnl", "kpi-upnl", "kpi-net"}
    wrong = [
        s
        for s in signs
        if not s[2].startswith(s[1]) and (s[1] == "-" or s[0] in money or s[0].endswith((":6", ":7", ":8")))
    ]
    assert wrong == [], wrong  # the P&L columns and the header's money: "+" or "-" in the text

    def marker(sel: str) -> str:
        return str(page.locator(sel).first.evaluate("el => getComputedStyle(el, '::before').content"))

    red = ["#positions tbody tr.row.stale td:last-child", "#kpi-reject_rate", ".limit.over .v"]
    assert js(page, "() => document.getElementById('kpi-reject_rate').className") == "kv bad"
    unmarked = [(sel, marker(sel)) for sel in red if "⚠" not in marker(sel)]
    assert unmarked == [], unmarked
    cdp = page.context.new_cdp_session(page)
    said = accessible_name(page, cdp, "document.querySelector('#positions tbody tr.row.stale td:last-child')")
    assert said.startswith("alert:") and said.endswith(" s"), said
    srv.post("/test/freeze")  # no frame for more than 2 s: the freshness turns red, and says so without it
    wait_for(lambda: page.locator("#kpi-freshness").get_attribute("class") == "kv bad", "the freshness red", limit=20)
    assert "⚠" in marker("#kpi-freshness")
    assert js(page, "window.__tradeobs.charts.latency.series[2].dash") == [6, 4]

    wait_for(lambda: "over the last" in (page.locator("#chart-pnl").get_attribute("aria-label") or ""), "described")
    selected = js(page, "window.__tradeobs.selected")
    for chart, lines in (("price", selected), ("pnl", ["total", *selected]), ("latency", ["p50", "p99"])):
        name = accessible_name(page, cdp, f"document.getElementById('chart-{chart}')")
        assert page.get_by_role("img", name=name).count() == 1
        assert all(f"{line} " in name for line in lines), (chart, name)
        assert "(low " in name and "high " in name, name
    # the P&L chart's total is the header's P&L (the feed is frozen, the chart's last point is the last frame's). Both
    # are read on each try: what was recorded just before the freeze still reaches a frame or two after it (a full
    # run read the header once, before that last frame, and the chart's text, rewritten every 2 s, never matched).
    wait_for(
        lambda: (
            f"total {page.locator('#kpi-pnl').inner_text()} (low"
            in accessible_name(page, cdp, "document.getElementById('chart-pnl')")
        ),
        "the chart's text with the last total",
        limit=20,
    )


def test_an_old_working_order_is_marked_besides_its_amber_and_its_age_fits(
    live_server: Callable[..., LiveProcess], browser_page: Any
) -> None:
    """A working order resting past 30 s had its age amber and nothing else (amber and the page's other colours read
    alike to a red-green colour-blind eye), and "3 h 20 m" was cut in its 58 px column. An old order's age has a "▲"
    before it (read "old:"), and from a minute it is whole minutes or hours, as md age ("▲ 1 m 59 s" would not fit)."""
    import orjson

    now = time.time()
    working = {
        oid: {"s": "AAPL", "sd": "buy", "q": 10, "f": 0, "p": 100.0, "t": now - ago, "tr": None}
        for oid, ago in (("w-new", 5), ("w-40s", 40), ("w-2m", 125), ("w-3h", 3 * 3600 + 1200))
    }
    frame = {"type": "full", "seq": 1, "ts": now, "symbols": {}, "account": {}, "desk": {"working": 4},
             "working": working}  # fmt: skip
    page = browser_page
    page.route(
        "**/telemetry/stream*",
        lambda route: route.fulfill(
            status=200,
            headers={"content-type": "text/event-stream"},
            body=f"retry: 600000\n\nid: b0-1\nevent: frame\ndata: {orjson.dumps(frame).decode()}\n\n",
        ),
    )
    page.goto(live_server().base + "/telemetry/")
    rows = page.locator("#working tbody tr")
    wait_for(lambda: rows.count() == 4, "four working orders")
    cdp = page.context.new_cdp_session(page)
    got = {}
    for oid in working:
        cell = f"document.querySelector('#working tbody tr[data-oid=\"{oid}\"] td')"
        text, marker, fits = js(
            page,
            f"() => {{ const td = {cell}; return [td.textContent, "
            "getComputedStyle(td, '::before').content, td.scrollWidth <= td.clientWidth]; }",
        )
        got[oid] = (text, "▲" in marker, fits, accessible_name(page, cdp, cell).startswith("old:"))
    assert got["w-new"][1:] == (False, True, False), got
    assert got["w-40s"][1:] == (True, True, True) and got["w-40s"][0].endswith(" s"), got
    assert got["w-2m"] == ("2 m", True, True, True), got
    assert got["w-3h"] == ("3 h", True, True, True), got


# Every element with text of its own on screen: its colour and the first opaque background behind it.
TEXTS = """() => {
  const out = [];
  for (const el of document.querySelectorAll('body *')) {
    if (!Array.from(el.childNodes).some(n => n.nodeType === 3 && n.textContent.trim())) continue;
    const r = el.getBoundingClientRect(), cs = getComputedStyle(el);
    if (!r.width || !r.height || cs.visibility === 'hidden') continue;
    let bg = el, c;
    while (bg && ((c = getComputedStyle(bg).backgroundColor) === 'rgba(0, 0, 0, 0)')) bg = bg.parentElement;
    out.push([(el.id || el.tagName + '.' + el.className) + ' "' + el.textContent.trim().slice(0, 16) + '"',
              cs.color, bg ? c : 'rgb(255, 255, 255)']);
  }
  for (const id of ['sym-pick', 'pos-filter']) {
    const el = document.getElementById(id);
    out.push([id + '::placeholder', getComputedStyle(el, '::placeholder').color, getComputedStyle(el).backgroundColor]);
  }
  return out;
}"""

# Each control's border against the card around it (WCAG 1.4.11: 3:1 for what identifies a control).
BORDERS = """() => Array.from(document.querySelectorAll('#card-price input, select, button#pause, button#sym-clear'))
  .map(el => [el.id, getComputedStyle(el).borderTopColor, getComputedStyle(el.closest('.card')).backgroundColor])"""


def test_every_text_has_4_5_to_1_contrast_in_every_state(
    live_server: Callable[..., LiveProcess], browser_page: Any
) -> None:
    """Every element with text on screen, measured from its computed colours (the page has one theme, dark), in each
    state the page draws: the badge connected, reconnecting, stale and offline, the export ok and failing, pause
    pressed, a stale symbol, an old working order, rows of every kind. At least 4.5:1 (WCAG 2.1 AA; every text here
    is under 18.66 px bold). The input boxes' placeholders, their only visible label, were Chromium's #757575 at
    4.0:1, and the controls' borders 1.5:1 against the card (3:1 for a control's edge)."""
    srv = live_server()
    page = browser_page
    open_page(page, srv)
    wait_for(lambda: page.locator("#positions tbody tr.row.stale").count() == 1, "XOM stale", limit=30)
    page.locator("#pause").click()
    js(page, "() => document.querySelector('#working tbody tr').className = 'old'")
    js(
        page,
        "() => { const s = document.querySelector('#services'); s.closest('section').hidden = false; "
        "s.tBodies[0].innerHTML = '<tr class=bad><td>svc</td><td>1</td></tr>'; }",
    )
    low = []
    for state in ("connected", "reconnecting", "stale", "offline"):
        for export in ("ok", "failing", "not_configured"):
            js(
                page,
                f"() => {{ document.getElementById('status').className = 'status {state}'; "
                f"document.getElementById('export').dataset.state = '{export}'; }}",
            )
            texts = js(page, TEXTS)
            assert len(texts) > 100, len(texts)
            low += [
                (state, export, what, round(contrast(fg, bg), 2)) for what, fg, bg in texts if contrast(fg, bg) < 4.5
            ]
    assert low == [], sorted(set(low))
    borders = [(what, round(contrast(fg, bg), 2)) for what, fg, bg in js(page, BORDERS) if contrast(fg, bg) < 3]
    assert borders == [], borders


def test_landmarks_headings_and_named_tables(live_server: Callable[..., LiveProcess], browser_page: Any) -> None:
    """A screen reader moves by landmark, heading and table. The cards were unnamed sections and the tables had no
    name (a list of tables read "table" seven times); each card is a region named by its heading and each table is
    named by its own, with its column headers."""
    srv = live_server()
    page = browser_page
    open_page(page, srv)
    assert page.get_by_role("banner").count() == 1 and page.get_by_role("main").count() == 1
    assert page.get_by_role("heading", level=1, name="tradeobs live").count() == 1
    for name in (
        "Prices",
        "Positions",
        "Working orders",
        "Orders & fills",
        "Risk limits in use",
        "Account & health",
        "Submit-to-fill latency (ms)",
        "P&L (realized + unrealized)",
    ):
        assert page.get_by_role("region", name=name).count() == 1, name
    for name, headers in (("Positions", 15), ("Working orders", 7), ("Orders & fills", 11), ("Rejects by reason", 2)):
        table = page.get_by_role("table", name=name)
        assert table.count() == 1, name
        assert table.get_by_role("columnheader").count() == headers, name
    assert page.get_by_role("columnheader", name="chart").count() == 1
    for label in ("event kind", "strategy", "venue", "time window", "price scale"):
        assert page.get_by_role("combobox", name=label).count() == 1, label
