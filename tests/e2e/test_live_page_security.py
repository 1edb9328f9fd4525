"""The live page against what a careless or hostile service sends it, in real headless Chromium.

Names on the page (symbols, strategies, venues, order ids, limits, reject reasons, event data) come from the
trading code, so they are untrusted: markup and scripts in them must show as text and run nothing, and names that
are JavaScript's own property names (``__proto__``, ``constructor``) must not break the page or pollute its objects.
The scenario service's ``POST /test/hostile`` (``live_server.py``) adds such a desk while the page watches.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

from tests._util import wait_for
from tests.e2e.conftest import LiveProcess
from tests.e2e.live_server import HOSTILE
from tests.e2e.test_live_page import js, open_page
from tradeobs_agent.live.app import PAGE_POLICY

pytestmark = pytest.mark.e2e

# Whether anything ran, whether anything was injected as markup, whether Object.prototype was written to.
HARM = """() => ({
  pwned: window.__pwned === undefined ? null : window.__pwned,
  injected: document.querySelectorAll("main img, main script, main [onerror]").length,
  polluted: Object.getOwnPropertyNames(Object.prototype).filter(function (k) { return /^[0-9]/.test(k); })
    .concat(Object.keys(Object.prototype)),
})"""


def _open_on_the_hostile_desk(page: Any, srv: LiveProcess) -> list[str]:
    """Open the page, then have the server trade the hostile names; returns the page's script errors as they come."""
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    open_page(page, srv)
    srv.post("/test/hostile")
    return errors


def _no_harm(page: Any, errors: list[str]) -> None:
    assert js(page, HARM) == {"pwned": None, "injected": 0, "polluted": []}
    assert errors == []


def _texts(page: Any, selector: str) -> list[str]:
    return list(page.eval_on_selector_all(selector, "els => els.map(e => e.textContent)"))


def _has_limit(page: Any, name: str) -> bool:
    return any(t == name or t.endswith("/" + name) for t in _texts(page, "#limits [data-limit] > span[title]"))


def _shows_the_hostile_desk(page: Any) -> None:
    """Every hostile name is in the state and the picker, and shows as the text it is."""
    names = [HOSTILE[k] for k in ("img", "script", "url", "rtl", "proto", "ctor")]
    wait_for(lambda: all(n in js(page, "Object.keys(window.__tradeobs.state.symbols)") for n in names), "symbols")
    # limits are keyed strategy/limit when several strategies report
    wait_for(lambda: all(_has_limit(page, n) for n in (names[0], names[4])), "the hostile limits")
    working = js(page, "Object.keys(window.__tradeobs.state.working)")
    assert {HOSTILE["proto"], HOSTILE["ctor"], "w-" + HOSTILE["script"]} <= set(working)
    wait_for(
        lambda: set(names) <= set(page.eval_on_selector_all("#sym-list option", "els => els.map(e => e.value)")),
        "the hostile symbols in the picker",
    )
    # the alert (kind "other"): its message and its strategy as text, the keys the page keeps its own state in ignored
    page.locator("#f-kind").select_option("other")
    wait_for(lambda: HOSTILE["img"] in _texts(page, "#blotter td.detail"), "the alert's message as text")
    assert HOSTILE["proto"] in _texts(page, "#blotter td")
    page.locator("#f-kind").select_option("")
    # the desk's strategy filter: its reject by risk, with the venue and the reason as text
    page.locator("#f-strategy").select_option(HOSTILE["img"])
    wait_for(lambda: HOSTILE["script"] in _texts(page, "#blotter td"), "the hostile venue as text")
    assert any(t.startswith(HOSTILE["img"]) for t in _texts(page, "#blotter td.detail"))
    page.locator("#f-strategy").select_option("")


def test_hostile_names_show_as_text_run_nothing_and_break_nothing(
    live_server: Callable[..., LiveProcess], browser_page: Any
) -> None:
    page = browser_page
    errors = _open_on_the_hostile_desk(page, live_server())
    # The names arrive in deltas first, then in the full frames (every 5 s): both paths.
    full = js(page, "window.__tradeobs.full")
    wait_for(lambda: js(page, "window.__tradeobs.full") >= full + 2, "two full frames after the hostile desk", limit=20)
    _no_harm(page, errors)
    _shows_the_hostile_desk(page)
    frames = js(page, "window.__tradeobs.frames")
    wait_for(lambda: js(page, "window.__tradeobs.frames") >= frames + 10, "frames keep coming")
    _no_harm(page, errors)
    # A reload: the names come from /history (events and chart points) and a full frame first.
    page.reload()
    wait_for(lambda: js(page, "window.__tradeobs && window.__tradeobs.frames") >= 15, "frames after the reload")
    _shows_the_hostile_desk(page)
    _no_harm(page, errors)


def test_the_page_runs_only_its_own_scripts_and_works_under_its_policy(
    live_server: Callable[..., LiveProcess], browser_page: Any
) -> None:
    """Should markup ever reach the page again, its Content-Security-Policy runs no inline handler; the page itself
    (its scripts, uPlot's charts, the stream, the JSON it fetches, its inline sizes) works under that policy."""
    srv = live_server()
    page = browser_page
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    open_page(page, srv)
    wait_for(lambda: js(page, "document.querySelectorAll('#chart-price canvas').length") > 0, "the price chart drawn")
    wait_for(lambda: js(page, "document.querySelectorAll('#positions tbody tr.row').length") > 0, "positions drawn")
    assert refused == []
    assert js(page, "window.__tradeobs.config !== null && window.__tradeobs.events > 0")  # config and history read
    # Markup written into the page as a name would be: the image loads and fails, its inline handler does not run.
    js(
        page,
        """() => {
          var box = document.querySelector("main").appendChild(document.createElement("div"));
          box.innerHTML = '<img src="x" onerror="window.__pwned = 1">';
          box.querySelector("img").addEventListener("error", function () { window.__failed = 1; });
        }""",
    )
    wait_for(lambda: js(page, "window.__failed") == 1, "the injected image failed to load")
    assert js(page, "window.__pwned === undefined")
    wait_for(lambda: any("inline event handler" in t for t in refused), "the policy refused the inline handler")
    # The headers themselves: on the page, its files and the JSON.
    for path in ("/telemetry/", "/telemetry/static/live.js", "/telemetry/snapshot"):
        with urllib.request.urlopen(srv.base + path, timeout=5) as r:
            assert r.headers["content-security-policy"] == PAGE_POLICY
            assert "frame-ancestors 'self'" in r.headers["content-security-policy"]
            assert r.headers["x-content-type-options"] == "nosniff"
            assert r.headers["referrer-policy"] == "no-referrer"


# Unicode's Bidi_Control characters; none may reach the screen as such.
BIDI_ON_SCREEN = r"""() => {
  var bidi = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/, found = [];
  var walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walk.nextNode()) if (bidi.test(walk.currentNode.data)) found.push(walk.currentNode.data);
  document.querySelectorAll("[title], [aria-label], option").forEach(function (el) {
    ["title", "aria-label", "label"].forEach(function (a) {
      var v = el.getAttribute(a);
      if (v && bidi.test(v)) found.push(a + ": " + v);
    });
  });
  return found;
}"""


def test_a_right_to_left_override_in_a_name_reorders_nothing_on_screen(
    live_server: Callable[..., LiveProcess], browser_page: Any
) -> None:
    """``AAPL\\u202egnp.exe`` showed as ``AAPLexe.png``, and an override in a reject reason turned the order id written
    after it around. Every name written on the page now shows its bidi controls as visible ``[U+202E]``; the name
    itself (state keys, the picker's values, the chart it selects) is unchanged."""
    from tests.e2e.live_server import RTL_ORDER

    page = browser_page
    errors = _open_on_the_hostile_desk(page, live_server())
    rtl, shown = HOSTILE["rtl"], HOSTILE["rtl"].replace("\u202e", "[U+202E]")
    wait_for(lambda: rtl in js(page, "Object.keys(window.__tradeobs.state.symbols)"), "the symbol in the state")
    page.locator("#pos-filter").fill("gnp")
    wait_for(lambda: _texts(page, "#positions tbody tr.row td:nth-child(2)") == [shown], "the symbol's row, as text")
    page.locator("#positions tbody tr.row input[type=checkbox]").check()  # its chart: the legend names it
    wait_for(lambda: rtl in js(page, "window.__tradeobs.selected"), "the symbol charted")
    page.locator("#f-strategy").select_option(HOSTILE["img"])  # the desk's events: its reject by risk, among them
    wait_for(lambda: f"{shown} · {RTL_ORDER}" in _texts(page, "#blotter td.detail"), "the reason, then the order id")
    assert shown in _texts(page, "#reasons td.detail")
    assert js(page, BIDI_ON_SCREEN) == []
    _no_harm(page, errors)
