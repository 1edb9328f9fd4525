"""Tabs of the live page share one stream: one tab (the holder, elected with the Web Locks API) streams and relays
every event to the others on a BroadcastChannel. Real headless Chromium, tabs as pages of one browser, over
HTTP/1.1 against the scenario service (live_server.py), whose ``/snapshot`` counts the server's stream clients.

Before: each tab streamed on its own connection; Chromium opens at most 6 to a server, so with 8 tabs the server saw
6 streams, the 7th and 8th tabs never connected, and no other request of the app was answered.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests._util import wait_for
from tests.e2e.conftest import LiveProcess

pytestmark = pytest.mark.e2e


def js(page: Any, expr: str, arg: Any = None) -> Any:
    return page.evaluate(expr, arg)


def clients(srv: LiveProcess) -> int:
    return int(srv.snapshot()["health"]["clients"])


def streaming(page: Any, frames: int = 5) -> None:
    wait_for(lambda: js(page, "window.__tradeobs && window.__tradeobs.status") == "connected", "connected")
    n = js(page, "window.__tradeobs.frames")
    wait_for(lambda: js(page, "window.__tradeobs.frames") >= n + frames, f"{frames} more frames")


def open_tabs(browser_page: Any, srv: LiveProcess, n: int) -> list[Any]:
    tabs = [browser_page]
    for _ in range(n - 1):
        tabs.append(browser_page.context.new_page())
    for tab in tabs:
        tab.goto(srv.base + "/telemetry/", wait_until="commit")
    return tabs


def holders(tabs: list[Any]) -> list[Any]:
    return [t for t in tabs if js(t, "window.__tradeobs.role") == "holder"]


def answered_within(page: Any, path: str, ms: int) -> bool:
    """A request of the app from the page (on the browser's connections to the server): answered before ``ms``?"""
    return bool(
        js(
            page,
            "(a) => { const ctl = new AbortController(); setTimeout(() => ctl.abort(), a[1]);"
            " return fetch(a[0], { signal: ctl.signal }).then((r) => r.ok, () => false); }",
            [path, ms],
        )
    )


def test_eight_tabs_share_one_stream(live_server: Callable[..., LiveProcess], browser_page: Any) -> None:
    """8 tabs over HTTP/1.1: the server sees 1 stream client, every tab shows frames advancing to the same seq, and a
    9th request of the app is answered (with a stream per tab, 6 streams held all 6 connections: it was not)."""
    srv = live_server()
    tabs = open_tabs(browser_page, srv, 8)
    for tab in tabs:
        streaming(tab)
    assert js(browser_page, "performance.getEntriesByType('navigation')[0].nextHopProtocol") == "http/1.1"
    assert len(holders(tabs)) == 1
    assert clients(srv) == 1
    assert sum(js(t, "window.__tradeobs.opens") for t in tabs) == 1
    # the same frames everywhere: freeze the feed, and every tab settles on the server's seq
    srv.post("/test/freeze")
    wait_for(lambda: len({js(t, "window.__tradeobs.state.seq") for t in tabs}) == 1, "the same seq in every tab")
    seq = js(tabs[0], "window.__tradeobs.state.seq")
    wait_for(lambda: all(js(t, "window.__tradeobs.state.seq") > seq + 3 for t in tabs), "frames advancing")
    wait_for(lambda: len({js(t, "window.__tradeobs.state.seq") for t in tabs}) == 1, "the same seq in every tab")
    for tab in tabs:
        assert tab.locator("#positions tbody tr.row").count() == 12
        assert tab.locator("#tabs-note").inner_text() == ""
    # a 9th request of the app, from a tab, is answered (the 5 s bounds only a starved request)
    assert answered_within(tabs[-1], srv.base + "/test/info", 5000)
    assert all(js(t, "window.__tradeobs.resets") == 0 for t in tabs)


def test_closing_the_holder_hands_the_stream_over_without_a_reset(
    live_server: Callable[..., LiveProcess], browser_page: Any
) -> None:
    """The holder's tab closes: another tab takes the lock and resumes the stream from the last id it heard (the
    server replays what was missed, no ``reset``); the others keep advancing; still 1 stream client."""
    srv = live_server()
    tabs = open_tabs(browser_page, srv, 4)
    for tab in tabs:
        streaming(tab)
    for _ in range(2):
        (holder,) = holders(tabs)
        tabs.remove(holder)
        events = [js(t, "window.__tradeobs.events") for t in tabs]
        holder.close()
        wait_for(lambda: len(holders(tabs)) == 1, "a new holder")
        (new,) = holders(tabs)
        # It holds the lock before its stream opens (counted at onopen): a loaded run read 0 between the two.
        wait_for(lambda new=new: js(new, "window.__tradeobs.opens") >= 1, "the new holder's stream open")
        for tab in tabs:
            streaming(tab)
        assert js(new, "window.__tradeobs.opens") == 1  # one stream, not one per retry
        wait_for(lambda: clients(srv) == 1, "one stream client")
        assert all(js(t, "window.__tradeobs.resets") == 0 for t in tabs)
        # events (a fill every 0.5 s) kept coming, none twice
        wait_for(
            lambda events=events: all(js(t, "window.__tradeobs.events") > e for t, e in zip(tabs, events, strict=True)),
            "events after the handover",
        )
        for tab in tabs:
            ids = js(tab, "window.__tradeobs.eventIds")
            assert len(ids) == len(set(ids))


def test_a_tab_opened_late_gets_the_whole_state(live_server: Callable[..., LiveProcess], browser_page: Any) -> None:
    """A tab that joins a shared stream gets the holder's whole state, not only the deltas after it: with full frames
    once an hour, every symbol's row is there at once (a delta-only follower would show none, or only those that
    moved, until the next full frame)."""
    srv = live_server("--full-every", "3600")
    streaming(open_tabs(browser_page, srv, 1)[0], frames=20)
    late = browser_page.context.new_page()
    late.goto(srv.base + "/telemetry/")
    streaming(late)
    assert js(late, "window.__tradeobs.role") == "follower"
    assert js(late, "window.__tradeobs.opens") == 0 and clients(srv) == 1
    assert late.locator("#positions tbody tr.row").count() == len(srv.snapshot()["symbols"]) == 12
    assert js(late, "Object.keys(window.__tradeobs.state.symbols).length") == 12
    assert js(late, "window.__tradeobs.full") == 1  # the holder's state; the rest were deltas on top of it
    # the blotter has the history too (from /history, and what the holder relayed since)
    assert js(late, "window.__tradeobs.events") > 0


NO_LOCKS = "Object.defineProperty(navigator, 'locks', { value: undefined })"


def test_eight_tabs_without_web_locks_share_one_stream(
    live_server: Callable[..., LiveProcess], browser_page: Any
) -> None:
    """Without the Web Locks API (a page over plain HTTP from a name other than localhost is not a secure context)
    the tabs elect the holder on the BroadcastChannel: 8 tabs, 1 stream client, every tab at the same seq, a request
    of the app answered. (Before, each tab streamed on its own: 6 streams, the 7th and 8th tabs starved.)"""
    srv = live_server()
    browser_page.context.add_init_script(NO_LOCKS)
    tabs = open_tabs(browser_page, srv, 8)
    for tab in tabs:
        streaming(tab)
    wait_for(lambda: clients(srv) == 1 and len(holders(tabs)) == 1, "one holder, one stream client")
    assert all(js(t, "window.__tradeobs.election") == "channel" for t in tabs)
    srv.post("/test/freeze")
    wait_for(lambda: len({js(t, "window.__tradeobs.state.seq") for t in tabs}) == 1, "the same seq in every tab")
    seq = js(tabs[0], "window.__tradeobs.state.seq")
    wait_for(lambda: all(js(t, "window.__tradeobs.state.seq") > seq + 3 for t in tabs), "frames advancing")
    wait_for(lambda: len({js(t, "window.__tradeobs.state.seq") for t in tabs}) == 1, "the same seq in every tab")
    assert len(holders(tabs)) == 1 and clients(srv) == 1
    for tab in tabs:
        assert tab.locator("#positions tbody tr.row").count() == 12
    assert answered_within(tabs[-1], srv.base + "/test/info", 5000)
    assert all(js(t, "window.__tradeobs.resets") == 0 for t in tabs)


def test_without_web_locks_closing_the_holder_hands_the_stream_over(
    live_server: Callable[..., LiveProcess], browser_page: Any
) -> None:
    """Without Web Locks, the holder's tab closes (it says bye on pagehide): another tab claims the stream and resumes
    it from the last id it heard, no reset, no event twice, the others keep advancing; still 1 stream client."""
    srv = live_server()
    browser_page.context.add_init_script(NO_LOCKS)
    tabs = open_tabs(browser_page, srv, 4)
    for tab in tabs:
        streaming(tab)
    wait_for(lambda: len(holders(tabs)) == 1 and clients(srv) == 1, "one holder")
    for _ in range(2):
        (holder,) = holders(tabs)
        tabs.remove(holder)
        events = [js(t, "window.__tradeobs.events") for t in tabs]
        holder.close(run_before_unload=True)
        wait_for(lambda: len(holders(tabs)) == 1, "a new holder")
        for tab in tabs:
            streaming(tab)
        wait_for(lambda: clients(srv) == 1 and len(holders(tabs)) == 1, "one stream client")
        assert all(js(t, "window.__tradeobs.resets") == 0 for t in tabs)
        wait_for(
            lambda events=events: all(js(t, "window.__tradeobs.events") > e for t, e in zip(tabs, events, strict=True)),
            "events after the handover",
        )
        for tab in tabs:
            ids = js(tab, "window.__tradeobs.eventIds")
            assert len(ids) == len(set(ids))


def test_without_web_locks_two_tabs_opened_together_converge_to_one_holder(
    live_server: Callable[..., LiveProcess], browser_page: Any
) -> None:
    """Two tabs that start at once, without Web Locks: whatever both did first (here both made holders on purpose,
    as two claims crossing would), the younger yields, and one stream is left; the yielding tab neither resets nor
    loses or doubles an event, and both advance at the same seq."""
    srv = live_server()
    browser_page.context.add_init_script(NO_LOCKS)
    tabs = [browser_page, browser_page.context.new_page()]
    for tab in tabs:
        tab.goto(srv.base + "/telemetry/", wait_until="commit")  # both load together
    for tab in tabs:
        streaming(tab)
    wait_for(lambda: len(holders(tabs)) == 1 and clients(srv) == 1, "one holder")
    # Two holders at once (two claims crossing): the follower claims too.
    (follower,) = [t for t in tabs if t not in holders(tabs)]
    assert not js(follower, "window.__tradeobs.holds")
    js(follower, "window.__tradeobs.claimNow()")  # synchronous: it is a holder, opening its stream
    assert js(follower, "window.__tradeobs.holds") == 1
    wait_for(lambda: len(holders(tabs)) == 1 and clients(srv) == 1, "one holder again")
    assert sum(js(t, "window.__tradeobs.yields || 0") for t in tabs) == 1  # one of the two yielded, once
    for tab in tabs:
        streaming(tab)
    srv.post("/test/freeze")
    wait_for(lambda: len({js(t, "window.__tradeobs.state.seq") for t in tabs}) == 1, "the same seq in both tabs")
    assert all(js(t, "window.__tradeobs.resets") == 0 for t in tabs)
    for tab in tabs:
        ids = js(tab, "window.__tradeobs.eventIds")
        assert len(ids) == len(set(ids))


def test_a_tab_whose_web_locks_fail_streams_on_its_own_and_warns(
    live_server: Callable[..., LiveProcess], browser_page: Any
) -> None:
    """Where the Web Locks API is there but refuses (a sandboxed frame), each tab streams on its own as before, and
    from 4 tabs of the page over HTTP/1.x each says so under its header; when one closes and 3 are left, the note
    goes."""
    srv = live_server()
    browser_page.context.add_init_script(
        "navigator.locks.request = () => Promise.reject(new DOMException('denied', 'SecurityError'))"
    )
    tabs = open_tabs(browser_page, srv, 4)
    for tab in tabs:
        streaming(tab)
        assert js(tab, "window.__tradeobs.role") == "alone"
    assert clients(srv) == 4
    for tab in tabs:
        note = tab.locator("#tabs-note")
        wait_for(lambda note=note: note.is_visible() and "4 tabs of this page" in note.inner_text(), "the note")
        assert "HTTP/2" in note.inner_text()
    tabs.pop().close()
    for tab in tabs:
        wait_for(lambda tab=tab: js(tab, "window.__tradeobs.tabs") == 3, "the closed tab's bye")
        assert not tab.locator("#tabs-note").is_visible()


def test_followers_take_over_from_a_hung_holder(live_server: Callable[..., LiveProcess], browser_page: Any) -> None:
    """The holder's tab hangs (its script stopped: here paused in the DevTools protocol's debugger; a tab the browser
    froze in the background, or one busy in a long task, looks the same): it relays nothing and keeps its lock. A
    follower's watchdog finds the relay stale and takes the lock from it (one follower: the others stay followers),
    resumes the stream without a reset, and the tabs advance. The old holder, running again, finds its lock gone,
    closes its stream and follows. (Before, every tab streamed on its own: nothing to take over.)"""
    srv = live_server()
    tabs = open_tabs(browser_page, srv, 3)
    for tab in tabs:
        streaming(tab)
    (holder,) = holders(tabs)
    others = [t for t in tabs if t is not holder]
    cdp = holder.context.new_cdp_session(holder)
    cdp.send("Debugger.enable")
    cdp.send("Debugger.pause")
    wait_for(lambda: len(holders(others)) == 1, "a follower takes over", limit=60)
    for tab in others:
        streaming(tab)
        assert js(tab, "window.__tradeobs.resets") == 0
    assert clients(srv) == 2  # the hung tab's stream is still open
    cdp.send("Debugger.resume")
    wait_for(lambda: js(holder, "window.__tradeobs.role") == "follower", "the old holder follows")
    streaming(holder)
    assert len(holders(tabs)) == 1
    wait_for(lambda: clients(srv) == 1, "one stream client")
    assert all(js(t, "window.__tradeobs.resets") == 0 for t in tabs)


def test_without_web_locks_followers_take_over_from_a_hung_holder(
    live_server: Callable[..., LiveProcess], browser_page: Any
) -> None:
    """Without Web Locks, the holder hangs (paused in the debugger: no beats, no relays): after 3 s without it the
    oldest follower claims the stream and the others follow it, no reset. The old holder, running again, is the
    older of two holders: the new one yields, and 1 stream client is left, every tab advancing, no event twice."""
    srv = live_server()
    browser_page.context.add_init_script(NO_LOCKS)
    tabs = open_tabs(browser_page, srv, 3)
    for tab in tabs:
        streaming(tab)
    wait_for(lambda: len(holders(tabs)) == 1 and clients(srv) == 1, "one holder")
    (holder,) = holders(tabs)
    others = [t for t in tabs if t is not holder]
    cdp = holder.context.new_cdp_session(holder)
    cdp.send("Debugger.enable")
    cdp.send("Debugger.pause")
    wait_for(lambda: len(holders(others)) == 1, "a follower takes over")
    for tab in others:
        streaming(tab)
    cdp.send("Debugger.resume")
    wait_for(lambda: len(holders(tabs)) == 1 and clients(srv) == 1, "one holder, one stream client")
    for tab in tabs:
        streaming(tab)
        assert js(tab, "window.__tradeobs.resets") == 0
        ids = js(tab, "window.__tradeobs.eventIds")
        assert len(ids) == len(set(ids))
