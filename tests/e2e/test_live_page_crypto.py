"""The live page of a crypto market maker, in real headless Chromium against the scenario service's crypto desk
(``POST /test/crypto``: strategy ``mm & hedge`` on ``binance-futures``, symbols ``BTC/USDT``, ``ETH-PERP``,
``BTC-27DEC26-100000-C``, ``1000PEPEUSDT``, ``BABYDOGE/USDT``, ``SOL:USDC``, ``btc_jpy``), fed through the real trading
layer: prices of a few billionths, quantities of 0.00012345 and 1.5e9, names with ``/ : _ &`` and a space."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest

from tests._util import wait_for
from tests.e2e.conftest import LiveProcess
from tests.e2e.test_live_page import POSITION_COLUMNS, drawn_after, freeze, js, open_page, pick

pytestmark = pytest.mark.e2e


def crypto_page(live_server: Callable[..., LiveProcess], page: Any) -> LiveProcess:
    srv = live_server()
    srv.post("/test/crypto")
    open_page(page, srv)
    wait_for(lambda: "BABYDOGE/USDT" in js(page, "Object.keys(window.__tradeobs.state.symbols)"), "the crypto desk")
    return srv


ROWS = "[...document.querySelectorAll('#positions tbody tr.row')].map(r => [...r.cells].map(c => c.innerText))"


def rows(page: Any) -> dict[str, dict[str, str]]:
    """The positions table as read, in one look (its rows are written again as frames come): symbol -> column ->
    text."""
    texts = js(page, ROWS)
    return {t[1]: dict(zip(POSITION_COLUMNS, t, strict=False)) for t in texts}


def digits(text: str) -> float:
    return float(text.replace(",", ""))


def test_prices_of_a_few_billionths_show_their_digits(
    live_server: Callable[..., LiveProcess], browser_page: Any
) -> None:
    """BABYDOGE/USDT at 0.0000000015 showed price "0.00" and average entry "0.00" (8 decimals at most): now its
    digits, as PEPE's 0.00000123 and BTC's 98,000 show theirs; quantities of 0.00012345 and 1.5e9 as they are."""
    page = browser_page
    srv = crypto_page(live_server, page)
    page.locator("#pos-filter").fill("usdt")  # every row in view, whatever the table's height
    snap = freeze(page, srv)
    syms = snap["symbols"]
    got = rows(page)
    assert set(got) == {"BTC/USDT", "1000PEPEUSDT", "BABYDOGE/USDT"}, sorted(got)
    for s in got:
        shown, px = digits(got[s]["px"]), syms[s]["px"]
        assert shown == pytest.approx(px, rel=1e-6), (s, got[s]["px"], px)  # about 7 significant digits
    baby = got["BABYDOGE/USDT"]
    assert baby["avg"] == "0.0000000014" and baby["pos"] == "2,500,000,000,000", baby
    assert baby["px"].startswith("0.00000000") and baby["px"] != "0.00000000", baby
    assert got["1000PEPEUSDT"]["avg"] == "0.00000125" and got["1000PEPEUSDT"]["pos"] == "-1,500,000,000"
    assert got["BTC/USDT"]["pos"] == "0.00012345" and got["BTC/USDT"]["avg"] == "97,950.25"
    # the resting BTC order and PEPE's fill, in the working orders and the blotter
    working = page.locator('#working tbody tr[data-oid="mm-1"]').locator("td").all_inner_texts()
    assert working[3:5] == ["0/0.00012345", "97,000.50"], working
    page.locator("#f-strategy").select_option("mm & hedge")
    fill = page.locator("#blotter tbody tr", has_text="mm-2").filter(has_text="fill")
    wait_for(lambda: fill.count() == 1, "PEPE's fill in the blotter")
    cells = fill.first.locator("td").all_inner_texts()
    assert "1,500,000,000" in cells and "0.00000122" in cells, cells


def test_a_dust_position_never_reads_zero(live_server: Callable[..., LiveProcess], browser_page: Any) -> None:
    """3e-9 SOL and -4e-9 ETH-PERP (what a venue's rounding or a fee paid in the coin leaves) read "0" and "-0"
    (8 decimals at most), as a flat position would: now their first significant digits, with their sign."""
    page = browser_page
    srv = crypto_page(live_server, page)
    snap = freeze(page, srv)
    for text, sym, shown in (("usdc", "SOL:USDC", "0.000000003"), ("perp", "ETH-PERP", "-0.000000004")):
        assert snap["symbols"][sym]["pos"] == float(shown), snap["symbols"][sym]  # what the service sent
        page.locator("#pos-filter").fill(text)
        got = wait_for(lambda sym=sym: rows(page).get(sym), f"{sym} in view")
        assert got["pos"] == shown, got


@pytest.mark.parametrize("symbol", ["1000PEPEUSDT", "BABYDOGE/USDT"])
def test_the_price_axis_of_a_sub_cent_token_labels_each_tick_apart(
    live_server: Callable[..., LiveProcess], browser_page: Any, symbol: str
) -> None:
    """A price chart of 1000PEPEUSDT alone, in prices: its ticks, 0.000000005 apart, were each labelled "0.000"
    (3 decimals at most). Each label now names its own tick, and the labels follow the line's values."""
    page = browser_page
    srv = crypto_page(live_server, page)
    page.locator("#sym-clear").click()
    pick(page, symbol)
    page.locator("#price-mode").select_option("raw")
    wait_for(lambda: js(page, "window.__tradeobs.selected") == [symbol], "charted alone")
    drawn_after(page, srv.snapshot()["seq"] + 5)  # a few points of the line
    labels = js(page, "window.__tradeobs.axes['chart-price']")
    values = [v for v in js(page, "window.__tradeobs.chart.price[1]") if v is not None]
    assert len(labels) >= 2 and len(set(labels)) == len(labels), labels
    lo, hi = min(values), max(values)
    ticks = sorted(digits(x) for x in labels)
    step = ticks[1] - ticks[0]
    assert step > 0 and ticks[0] - step <= hi and ticks[-1] + step >= lo, (labels, lo, hi)
    # each label is its tick's value: the labels are evenly spaced (a step of 0.000000025 at 8 decimals was not)
    assert all(b - a == pytest.approx(step, rel=1e-6) for a, b in itertools.pairwise(ticks)), labels


def test_names_with_slashes_ampersands_and_spaces_filter_and_pick_verbatim(
    live_server: Callable[..., LiveProcess], browser_page: Any
) -> None:
    """The strategy ``mm & hedge`` is an option of its own and filters the blotter to its events; the positions
    filter finds ``BTC/USDT``, ``BTC-27DEC26-100000-C`` and ``btc_jpy`` by "btc"; the picker takes ``sol:usdc`` for
    ``SOL:USDC``: every name as the service wrote it, as text."""
    page = browser_page
    crypto_page(live_server, page)
    options = page.locator("#f-strategy option").all_inner_texts()
    assert "mm & hedge" in options, options
    page.locator("#f-strategy").select_option("mm & hedge")
    blotter = page.locator("#blotter tbody tr")
    wait_for(lambda: blotter.count() > 0, "the desk's events")
    strategies = {blotter.nth(i).locator("td").nth(2).inner_text() for i in range(blotter.count())}
    assert strategies == {"mm & hedge"}, strategies
    page.locator("#pos-filter").fill("btc")
    wait_for(lambda: sorted(rows(page)) == ["BTC-27DEC26-100000-C", "BTC/USDT", "btc_jpy"], "the BTC rows")
    page.locator("#pos-filter").fill("")
    page.locator("#sym-clear").click()
    pick(page, "sol:usdc")
    wait_for(lambda: js(page, "window.__tradeobs.selected") == ["SOL:USDC"], "SOL:USDC charted")
    assert page.locator("#chips .chip").first.get_attribute("data-sym") == "SOL:USDC"


CLIPPED = """() => [...document.querySelectorAll('#positions tbody tr.row td, #working tbody td, #blotter tbody td')]
    .filter(c => !c.classList.contains('detail') && c.scrollWidth > c.clientWidth).map(c => c.textContent)"""


def test_a_crypto_desks_names_and_numbers_are_never_cut_at_a_laptop_width(
    live_server: Callable[..., LiveProcess], browser_page: Any
) -> None:
    """At 1400 px the positions, working orders and blotter cut the crypto desk's values into an ellipsis, in the very
    characters that tell them apart: "BTC-27..." (every Deribit option alike), "BTC/US...", price "0.00000...",
    position "-1,500,000..." and "2,500,000...", a working order's "0/0.0001...", a fill of "1,5...". A column now
    grows to its widest text (a table wider than its panel scrolls sideways); a stock desk's columns stay as they
    were (test_live_page.py: nothing cut, nothing wider)."""
    page = browser_page
    srv = crypto_page(live_server, page)
    page.locator("#pos-filter").fill("-")  # the crypto rows with a dash, every one in view
    page.locator("#f-strategy").select_option("mm & hedge")
    freeze(page, srv)
    shown = sorted(rows(page))
    assert shown == ["BTC-27DEC26-100000-C", "ETH-PERP"], shown
    page.locator("#pos-filter").fill("usdt")
    wait_for(lambda: sorted(rows(page)) == ["1000PEPEUSDT", "BABYDOGE/USDT", "BTC/USDT"], "the USDT rows")
    clipped = js(page, CLIPPED)
    assert clipped == [], clipped
    page.locator("#pos-filter").fill("-")
    wait_for(lambda: sorted(rows(page)) == shown, "the dashed rows again")
    clipped = js(page, CLIPPED)
    assert clipped == [], clipped
    # the symbol is the cell's title too, whole, where a name longer than its column's cap is cut
    assert page.locator('#positions tr[data-sym="BTC-27DEC26-100000-C"] td').nth(1).get_attribute("title") == (
        "BTC-27DEC26-100000-C"
    )


def test_symbols_sort_whatever_their_case(live_server: Callable[..., LiveProcess], browser_page: Any) -> None:
    """``btc_jpy`` (bitFlyer's lower-case names) sorted after every upper-case symbol, by code unit: after ``JPM``,
    ``SOL:USDC`` and ``XOM``, at the end of the table and the picker. Symbols sort as a person looks them up now."""
    page = browser_page
    crypto_page(live_server, page)
    page.locator("#pos-filter").fill("jp")
    wait_for(lambda: len(rows(page)) == 2, "the two rows")
    assert [t[1] for t in js(page, ROWS)] == ["btc_jpy", "JPM"]
    picker = js(page, "[...document.querySelectorAll('#sym-list option')].map(o => o.value)")
    assert picker.index("btc_jpy") < picker.index("ETH-PERP") < picker.index("JPM"), picker


@pytest.mark.parametrize("decimals", [None, 8])
def test_money_shows_the_decimals_the_account_is_kept_in(
    live_server: Callable[..., LiveProcess], browser_page: Any, monkeypatch: pytest.MonkeyPatch, decimals: int | None
) -> None:
    """A desk whose books are in BTC: BTC/USDT's unrealized P&L of about +0.006 read "+0.01" (money had 2 decimals,
    notionals none). With live_money_decimals=8 its P&L has 8 decimals and its notional 6; by default 2 and 0, as
    before."""
    if decimals is not None:
        monkeypatch.setenv("TRADEOBS_LIVE_MONEY_DECIMALS", str(decimals))
    money = 2 if decimals is None else decimals
    page = browser_page
    srv = crypto_page(live_server, page)
    assert srv.get("/telemetry/config")["money_decimals"] == money
    page.locator("#pos-filter").fill("btc/usdt")
    snap = freeze(page, srv)
    row, sym = rows(page)["BTC/USDT"], snap["symbols"]["BTC/USDT"]
    want = {"upnl": sym["upnl"], "pnl": sym.get("rpnl", 0.0) + sym["upnl"], "ntl": sym["ntl"]}
    for column, d in (("upnl", money), ("pnl", money), ("ntl", money - 2)):
        text = row[column]
        assert (len(text.rpartition(".")[2]) == d) if d else ("." not in text), (column, text, d)
        assert digits(text.lstrip("+")) == pytest.approx(want[column], abs=0.51 * 10**-d), (column, text, want)
    kpi = page.locator("#kpi-upnl").inner_text()
    assert len(kpi.rpartition(".")[2]) == money, kpi
