"""The live page for a red-green colour-blind trader, a keyboard-only user and a screen-reader user, in real headless
Chromium against the scenario service (live_server.py).

Accessible names are Chromium's own (its accessibility tree through the DevTools protocol), colours are computed
styles (contrast as WCAG 2.1 defines it), focus moves by ``keyboard.press("Tab")``, and the live region's changes
are counted by a ``MutationObserver`` while frames stream at 10 Hz.
"""

from __future__ import annotations

import itertools
import json
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


def hold_still(page: Any, srv: LiveProcess) -> None:
    """Stop the feed and wait until the page has applied and drawn a frame built after it (the freeze answers that
    frame's seq). A page running behind (a loaded box) could apply frames built before the freeze for seconds after
    it, so neither a sleep nor a count of the frames that came after the freeze says the rows hold still."""
    seq = int(srv.post("/test/freeze"))
    wait_for(lambda: js(page, "window.__tradeobs.state.seq") >= seq, f"frame {seq}, built after the freeze")
    js(page, "() => new Promise(r => requestAnimationFrame(() => r(0)))")  # after the page's draw of it


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
    page.keyboard.press("Tab")  # the header's "time" (its title names the zone the times are in)
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


# What the badge ``sel`` says (its state and text) at each batch of mutations, from now, in window.__said.
BADGE_SAID = """(sel) => {
  const el = document.querySelector(sel), now = () => el.dataset.state + '|' + el.textContent;
  window.__said = [now()];
  new MutationObserver(() => { window.__said.push(now()); }).observe(el,
    { subtree: true, childList: true, characterData: true, attributes: true });
}"""


def test_the_connection_state_is_a_polite_live_region_that_speaks_only_when_it_changes(
    live_server: Callable[..., LiveProcess], browser_page: Any
) -> None:
    """A screen reader: the connection badge (connected, reconnecting, stale, offline) was a plain span, so nobody
    heard the stream go; and a second tab, which follows the first one's stream, wrote the same "connected" into it
    every second (15 mutations in 5 s). It is a polite status region now, written only when the state changes: no
    mutation in 5 s of streaming at 10 Hz in either tab, and the drop and reconnect are written, and read. (A stream
    silent for 2 s, which a loaded machine can make, is said, "stale: no data for over 2 s", and then "connected"
    again: each write a change, never the same words again.)"""
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
        js(p, f"() => ({BADGE_SAID})('#status')")
    frames = js(page, "window.__tradeobs.frames")
    time.sleep(5)
    assert js(page, "window.__tradeobs.frames") >= frames + 20  # it streamed meanwhile
    for p in (page, follower):
        said = js(p, "window.__said")
        assert set(said) <= {"connected|connected", "stale|stale: no data for over 2 s"}, said
        assert all(a != b for a, b in itertools.pairwise(said)), said  # written only when it changed
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

    def found_by_its_name(chart: str) -> str | None:
        """The chart's accessible name, when the page's image of that name is this one chart. The text is rewritten
        every 2 s ("over the last 4.2 s" grows while the feed is frozen): a rewrite between reading the name and
        looking it up is tried again (a CI run read it just before one)."""
        name = accessible_name(page, cdp, f"document.getElementById('chart-{chart}')")
        return name if page.get_by_role("img", name=name, exact=True).count() == 1 else None

    for chart, lines in (("price", selected), ("pnl", ["total", *selected]), ("latency", ["p50", "p99"])):
        name = wait_for(
            lambda chart=chart: found_by_its_name(chart), f"the {chart} chart found by its accessible name", limit=10
        )
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


# ------------------------------------------------------------------------------------ colour vision, as computed
# Machado, Oliveira and Fernandes (2009), "A physiologically-based model for simulation of color vision deficiency",
# full severity: the matrices act on linear RGB. Two colours are told apart by a dichromat when their simulations are
# far apart in CIELAB (CIE76 distance; 2.3 is a just noticeable difference, and lines 1.5 px wide need far more).
DEUTERANOPIA = ((0.367322, 0.860646, -0.227968), (0.280085, 0.672501, 0.047413), (-0.011820, 0.042940, 0.968881))
PROTANOPIA = ((0.152286, 1.052583, -0.204868), (0.114503, 0.786281, 0.099216), (-0.003882, -0.048116, 0.951998))
APART = 25.0  # the old latency pair, green #6fdc8c and pink #ff6f91, is 13.9 apart to a deuteranope


def _linear(css: str) -> tuple[float, ...]:
    """'#rrggbb' or 'rgb(r, g, b)' as linear RGB."""
    if css.startswith("#"):
        parts = [int(css[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    else:
        parts = [float(x) / 255 for x in css[css.index("(") + 1 : css.index(")")].split(",")[:3]]
    return tuple(c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in parts)


def _lab(lin: tuple[float, ...]) -> tuple[float, float, float]:
    r, g, b = lin
    x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883

    def f(t: float) -> float:
        return t ** (1 / 3) if t > 216 / 24389 else (24389 / 27 * t + 16) / 116

    return 116 * f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z))


def seen_apart(a: str, b: str) -> float:
    """How far apart two colours look to a deuteranope and to a protanope: the smaller of the two distances."""
    out = []
    for m in (DEUTERANOPIA, PROTANOPIA):
        sims = [
            _lab(tuple(min(1.0, max(0.0, sum(row[j] * lin[j] for j in range(3)))) for row in m))
            for lin in (_linear(a), _linear(b))
        ]
        out.append(sum((p - q) ** 2 for p, q in zip(*sims, strict=True)) ** 0.5)
    return min(out)


def test_the_colour_model_reads_the_old_latency_pair_alike() -> None:
    """The simulation itself: red and green read alike, blue and orange do not, a colour is itself."""
    assert seen_apart("#6fdc8c", "#ff6f91") < APART < seen_apart("#4e9cff", "#ffb84e")
    assert seen_apart("#ff0000", "#00a000") < 15 and seen_apart("#4e9cff", "#4e9cff") == 0


# Each chart's lines as drawn: label, colour, dash, width; and each legend button's swatch.
LINES = """() => Object.fromEntries(['price', 'pnl', 'latency'].map(k => {
  const u = window.__tradeobs.charts[k];
  return [k, u.series.slice(1).map((s, i) => [s.label, typeof s.stroke === 'function' ? s.stroke(u, i + 1) : s.stroke,
    (s.dash || []).join(' '), s.width])];
}))"""
SWATCHES = """(sel) => Array.from(document.querySelectorAll(sel)).map(el => { const l = el.querySelector('svg.sw line');
  return [el.textContent.trim(), l.getAttribute('stroke'), l.getAttribute('stroke-dasharray') || ''] })"""


def test_chart_lines_differ_by_dash_and_by_colours_a_colour_blind_eye_tells_apart(
    live_server: Callable[..., LiveProcess], browser_page: Any
) -> None:
    """A red-green colour-blind trader: the price and P&L lines were told apart by colour alone, and neighbours in
    the palette (the third and fourth, green #6fdc8c and pink #ff6f91, also the latency chart's p50 and p99) look
    alike to a deuteranope (13.9 apart). With 20 symbols charted, in each chart: lines next to each other differ in
    dash (or weight) and in colour as a deuteranope and a protanope see it; any two lines with the same dash differ
    in that colour; each line is at least 3:1 against the card; and the legend's and the chips' swatches draw each
    line's colour and dash."""
    srv = live_server("--symbols", "20")
    wait_for(lambda: len(srv.snapshot()["symbols"]) == 20, "20 symbols traded")
    symbols = sorted(srv.snapshot()["symbols"])
    page = browser_page
    page.add_init_script(f"localStorage.setItem('tradeobs.live.chart', {json.dumps(json.dumps(symbols))})")
    open_page(page, srv)
    wait_for(lambda: js(page, "window.__tradeobs.charts.price.series.length") == 21, "20 lines")
    card = js(page, "getComputedStyle(document.getElementById('card-price')).backgroundColor")
    problems = []
    for chart, lines in js(page, LINES).items():
        assert len(lines) == {"price": 20, "pnl": 21, "latency": 2}[chart]
        for i, (label, stroke, dash, width) in enumerate(lines):
            if contrast(_rgb(stroke), card) < 3:
                problems.append((chart, label, stroke, "contrast", round(contrast(_rgb(stroke), card), 2)))
            for j in range(i + 1, len(lines)):
                other = lines[j]
                shape = (dash, width) != (other[2], other[3])
                apart = seen_apart(stroke, other[1])
                if (j == i + 1 and not (shape and apart >= APART)) or (not shape and apart < APART):
                    problems.append((chart, label, other[0], stroke, other[1], dash, other[2], round(apart, 1)))
    assert problems == [], problems
    for chart, lines in js(page, LINES).items():
        swatches = js(page, f"() => ({SWATCHES})('#legend-{chart} button.line')")
        assert swatches == [[label, stroke, dash] for label, stroke, dash, _ in lines], (chart, swatches)
    chips = js(page, f"() => ({SWATCHES})('#chips .chip')")
    assert [c[1:] for c in chips] == [line[1:3] for line in js(page, LINES)["price"]], chips


def _rgb(css: str) -> str:
    return "rgb({}, {}, {})".format(*(int(css[i : i + 2], 16) for i in (1, 3, 5))) if css.startswith("#") else css


def test_the_chart_legends_are_buttons_the_keyboard_reaches_and_operates(
    live_server: Callable[..., LiveProcess], browser_page: Any
) -> None:
    """A keyboard-only trader: uPlot's legend hid or showed a line on a mouse click only (a table row, no Tab stop,
    no key, inside the chart's role=img where a screen reader does not look). Each line is a button now, after its
    chart: Tab reaches it, with a ring and a name of its own ("p99 line in the latency chart"), Enter or Space hides
    or shows the line, aria-pressed (Chromium's "pressed") says which, and a line hidden stays hidden when the charts
    are built again (a symbol added)."""
    srv = live_server()
    page = browser_page
    open_page(page, srv)
    srv.post("/test/freeze")
    time.sleep(1)
    stops = tab_through(page)
    names = [s["name"] for s in stops]
    selected = js(page, "window.__tradeobs.selected")
    for want in (
        *(f"{s} line in the price chart" for s in selected),
        "total line in the P&L chart",
        *(f"{s} line in the P&L chart" for s in selected),
        "p50 line in the latency chart",
        "p99 line in the latency chart",
    ):
        assert want in names, (want, names)
    legend = [s for s in stops if " line in the " in s["name"]]
    assert all(s["outline"] == "solid" and s["width"] >= 2 and contrast(s["ring"], s["bg"]) >= 3 for s in legend)

    cdp = page.context.new_cdp_session(page)

    def pressed(label: str) -> Any:
        obj = cdp.send("Runtime.evaluate", {"expression": f"document.querySelector('[aria-label=\"{label}\"]')"})
        node = cdp.send("Accessibility.getPartialAXTree", {"objectId": obj["result"]["objectId"]})["nodes"][0]
        assert node["role"]["value"] == "button"
        return {p["name"]: p["value"]["value"] for p in node.get("properties", [])}.get("pressed")

    def shown(chart: str, i: int) -> bool:
        return bool(js(page, f"window.__tradeobs.charts.{chart}.series[{i}].show"))

    p99 = page.locator('[aria-label="p99 line in the latency chart"]')
    p99.focus()
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Tab")  # from the keyboard: the ring is :focus-visible's
    assert js(page, "document.activeElement.getAttribute('aria-label')") == "p99 line in the latency chart"
    assert pressed("p99 line in the latency chart") == "true" and shown("latency", 2)
    page.keyboard.press("Enter")
    assert pressed("p99 line in the latency chart") == "false" and not shown("latency", 2)
    page.keyboard.press("Space")
    assert pressed("p99 line in the latency chart") == "true" and shown("latency", 2)

    first = selected[0]
    page.locator(f'[aria-label="{first} line in the P&L chart"]').focus()
    page.keyboard.press("Space")
    assert not shown("pnl", 2) and p99.get_attribute("aria-pressed") == "true"
    other = next(s for s in sorted(srv.snapshot()["symbols"]) if s not in selected)
    page.locator("#sym-pick").fill(other)
    page.keyboard.press("Enter")  # the charts are built again with the new line
    wait_for(lambda: js(page, "window.__tradeobs.charts.pnl.series.length") == len(selected) + 3, "the new line")
    assert not shown("pnl", 2) and pressed(f"{first} line in the P&L chart") == "false"
    assert shown("price", 1)  # hidden in the P&L chart only


def test_skip_links_jump_past_the_header_to_the_tables(
    live_server: Callable[..., LiveProcess], browser_page: Any
) -> None:
    """A keyboard-only trader had some 15 Tab stops (the charts' controls and chips) before the first table, and now
    as many legend buttons more. The first Tab stop is a link, shown when focused, "Skip to positions", the next
    "Skip to orders & fills": Enter on either, and the next Tab is that table's first control."""
    srv = live_server()
    page = browser_page
    for presses, name, then in ((1, "Skip to positions", "pos-filter"), (2, "Skip to orders & fills", "f-kind")):
        open_page(page, srv, frames=3)  # Tab from the top again
        for _ in range(presses):
            page.keyboard.press("Tab")
        got = js(
            page,
            "() => { const el = document.activeElement, r = el.getBoundingClientRect(); return [el.tagName, "
            "el.textContent, r.top >= 0 && r.left >= 0 && r.bottom <= innerHeight && r.width > 20, "
            "getComputedStyle(el).outlineStyle]; }",
        )
        assert got == ["A", name, True, "solid"], got
        page.keyboard.press("Enter")
        page.keyboard.press("Tab")
        assert js(page, "document.activeElement.id") == then, name


def test_escape_closes_a_detail_note_and_a_header_tip_and_keeps_the_focus(
    live_server: Callable[..., LiveProcess], browser_page: Any
) -> None:
    """A keyboard user opens a cut reject reason in full under its table (Enter on the cell) or tabs onto a header
    whose tip shows under the card's head: Escape did nothing, so the note stayed until the focus left (WCAG 1.4.13:
    what appears on focus must be dismissable without moving it). Escape closes either; the focus stays put."""
    srv = live_server()
    page = browser_page
    open_page(page, srv)
    # The rejects by reason are written again whenever a count changes (the feed rejects an order every 5 s): that
    # takes the focus off their cell and can make ``.last`` another row between the Enter and the reads. The feed
    # held still, on once the page has drawn a frame built after that.
    hold_still(page, srv)
    cell = page.locator("#reasons tbody td.detail").last
    cell.focus()
    page.keyboard.press("Enter")
    note = page.locator("#card-risk .detail-note")
    assert note.inner_text() == cell.get_attribute("title") != ""
    page.keyboard.press("Escape")
    assert note.inner_text() == "" and js(page, "document.activeElement.matches('#reasons td.detail')")
    page.locator("th[data-sort=ord] button").focus()
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Tab")  # from the keyboard: the tip shows on :focus-visible
    tip = page.locator("#card-positions .tip-note")
    assert tip.inner_text() == "sent: orders sent"
    page.keyboard.press("Escape")
    assert tip.inner_text() == ""
    assert js(page, "document.activeElement.parentElement.dataset.sort") == "ord"


# Every box past the screen's edges that no scrolling box of its own holds, and the page's scroll width.
OVERFLOW = """() => {
  const W = document.documentElement.clientWidth, out = [];
  for (const el of document.querySelectorAll('body *')) {
    const r = el.getBoundingClientRect();
    if (!r.width || !r.height) continue;
    let box = el.parentElement, held = false;
    for (; box && box !== document.body; box = box.parentElement) {
      if (['auto', 'scroll', 'hidden'].includes(getComputedStyle(box).overflowX)) { held = true; break; }
    }
    if (!held && (r.right > W + 0.5 || r.left < -0.5)) out.push((el.id || el.tagName + '.' + el.className) + ' ' +
      Math.round(r.left) + '..' + Math.round(r.right));
  }
  return [W, document.documentElement.scrollWidth, out];
}"""


@pytest.mark.parametrize(("width", "height", "zoom"), [(700, 500, 2), (320, 256, 4)])
def test_zoomed_to_200_and_400_percent_nothing_scrolls_sideways_and_nothing_moves(
    live_server: Callable[..., LiveProcess], device_page: Callable[..., Any], width: int, height: int, zoom: int
) -> None:
    """A 1400x1000 laptop at 200% (700x500 CSS px) and a 1280x1024 one at 400% (320x256, WCAG 1.4.10's reflow
    width), with reduced motion asked for: the page never scrolls sideways and no box is past the screen's edge but
    inside a box that scrolls. At 320 px the data freshness ("⚠ stream 0.0 s · ticks 0.1 s · 1 stale", 328 px
    unbroken) made the page 346 px wide; it wraps now. Nothing on the page moves by itself: no animation and no
    transition (the skip link appears at once)."""
    srv = live_server()
    page = device_page(viewport={"width": width, "height": height}, device_scale_factor=zoom, reduced_motion="reduce")
    open_page(page, srv)
    wait_for(lambda: page.locator("#positions tbody tr.row.stale").count() == 1, "XOM stale", limit=30)
    srv.post("/test/freeze")  # the freshness at its longest: "⚠ stream 1.2 s · ticks 1.3 s · 1 stale"
    wait_for(lambda: page.locator("#kpi-freshness").get_attribute("class") == "kv bad", "the freshness red", limit=20)
    page.keyboard.press("Tab")
    viewport, scroll, past = js(page, OVERFLOW)
    assert (viewport, scroll, past) == (width, width, []), (scroll, past)
    moving = js(
        page,
        "() => [document.getAnimations().length, Array.from(document.querySelectorAll('*')).filter(el => "
        "getComputedStyle(el).transitionDuration.split(',').some(d => parseFloat(d) > 0)).length]",
    )
    assert moving == [0, 0], moving


def test_forced_colours_keep_the_charts_lines_and_the_limit_bars(
    live_server: Callable[..., LiveProcess], device_page: Callable[..., Any]
) -> None:
    """Windows high contrast (forced colours, as Chromium emulates it: the system's white canvas and black text).
    The page's backgrounds became the system's white, but a canvas keeps its colours: the P&L chart's total, a white
    line, was drawn on white (1:1) and the axes' grey labels at 2.4:1; the limit bars, a background each, vanished
    (white on white). The charts keep their dark ground now (every line at least 3:1 on it) and the bars are drawn
    in the text's colour in a bordered track; the legend's swatches keep their ground too."""
    srv = live_server()
    page = device_page(viewport={"width": 1400, "height": 1000}, forced_colors="active")
    open_page(page, srv)
    assert js(page, "matchMedia('(forced-colors: active)').matches")
    ground = js(
        page,
        """() => Object.fromEntries(['price', 'pnl', 'latency'].map(k => {
        let el = document.getElementById('chart-' + k), c;
        while (el && (c = getComputedStyle(el).backgroundColor).endsWith(', 0)')) el = el.parentElement;  // see-through
        return [k, c]; }))""",
    )
    low = [
        (chart, label, stroke, ground[chart])
        for chart, lines in js(page, LINES).items()
        for label, stroke, _, _ in lines
        if contrast(_rgb(stroke), ground[chart]) < 3
    ]
    assert low == [], low
    bars = js(
        page,
        "() => Array.from(document.querySelectorAll('.limit .bar')).map(b => [getComputedStyle(b.firstElementChild)"
        ".backgroundColor, getComputedStyle(b).backgroundColor, getComputedStyle(b).borderTopStyle])",
    )
    assert len(bars) == 4, bars
    assert all(contrast(fill, track) >= 3 and border == "solid" for fill, track, border in bars), bars
    swatches = js(
        page,
        "() => Array.from(document.querySelectorAll('svg.sw')).map(s => [s.firstElementChild.getAttribute('stroke'), "
        "getComputedStyle(s).backgroundColor])",
    )
    assert swatches and all(contrast(_rgb(stroke), bg) >= 3 for stroke, bg in swatches), swatches
