// tradeobs live dashboard: EventSource on ./stream, uPlot charts, no build step, no network beyond this server
// (the Grafana links, when live_grafana_url is set, are plain hrefs the user opens).
//
// Work per frame is O(symbols) with small constants (merge the delta, write one sample per symbol into
// preallocated rings); everything drawn waits for the next animation frame and touches only what is on
// screen: the chosen symbols' chart series, the positions rows scrolled into view, the newest blotter rows.
(function () {
  "use strict";
  var MAX_POINTS = 600, MAX_EVENTS = 5000, WORKING_ROWS = 50, MAX_CHART = 20, DEFAULT_CHART = 6;
  // The page holds the newest MAX_EVENTS events (rows, ids seen, the test hook's eventIds: the same ones), trimmed
  // back to that in one go once TRIM_STEP more came (5,001 rows beside 5,000 ids before 2026-12-07).
  var TRIM_STEP = 500;
  // A table row's height, the CSS's --row-h: 21 px, 45 px on a touch screen (a 44 px tap target in its border).
  var ROW_H = 21, OVERSCAN = 4, OLD_ORDER_S = 30;
  function rowHeight() {
    var h = parseFloat(getComputedStyle(document.documentElement).getPropertyValue("--row-h"));
    return h > 0 ? h : 21;
  }
  // A line is told from the others by its dash as well as its colour (a red-green colour-blind eye reads the old
  // green and pink, p50 and p99, alike): line i has colour i and dash i % 4, and the colours were ordered so that
  // neighbours (i, i+1) and lines sharing a dash stay apart under deuteranopia and protanopia (Machado 2009, full
  // severity: CIELAB distance of at least 25, tests/e2e/test_live_page_a11y.py). Each is 4.5:1 or more on a card.
  var COLORS = ["#4e9cff", "#ffb84e", "#ff6f91", "#c39bff", "#6fdc8c", "#4ed6d6", "#e5e06a", "#f6d4cb", "#9bd0ff",
    "#ec13ec", "#ec6a13", "#d6a36f", "#13ec13", "#dbfac6", "#e052c4", "#c1ec13", "#cbf6f6", "#e06e52", "#fac6fa", "#d161a4"];
  var DASHES = [[], [6, 4], [2, 3], [10, 3, 2, 3]];  // solid, dashed, dotted, dash-dot
  var AXIS_FONT = "12px system-ui, sans-serif";
  var STORE_KEY = "tradeobs.live.chart";
  // Exposed for tests and debugging; the page object survives reconnects (no reload).
  var T = window.__tradeobs = {
    marker: Math.random().toString(36).slice(2), frames: 0, full: 0, deltas: 0, resets: 0, opens: 0,
    eventIds: [], lastId: "", state: null, status: "offline", config: null, selected: [], paused: false,
    events: 0, axes: {}, chart: {}, charts: null, draws: 0, clockSteps: 0
  };
  var $ = function (id) { return document.getElementById(id); };
  var es = null, retryTimer = null, seen = new Set(), share = null;
  var recvAt = 0, frameTs = 0;                      // performance.now() and server ts of the last frame
  var symList = [], symSet = new Set(), symListDirty = true;
  var lower = new Map();                             // symbol -> its lower case, for the positions filter
  var touched = false;                               // the user changed the chart selection
  var refill = false;                                // symbols leaving emptied the chart: chart the next that comes

  // ------------------------------------------------------------------ formatting
  var NF = {};
  function nf(d, signed) {
    var k = d + (signed ? "s" : "");
    return NF[k] || (NF[k] = new Intl.NumberFormat("en-US", {
      minimumFractionDigits: d, maximumFractionDigits: d, signDisplay: signed ? "exceptZero" : "auto"
    }));
  }
  // Money (P&L, equity) to live_money_decimals (/config: 2 unless set; 8 for an account kept in BTC, whose P&L of
  // +0.0012 read "+0.00"), notionals and exposure to 2 fewer. Set from /config before the first frame is drawn.
  var MONEY = 2;
  function cash(v) { return num(v, MONEY); }
  function signedCash(v) { return signed(v, MONEY); }
  function bigCash(v, withSign) { var d = Math.max(0, MONEY - 2); return withSign ? signed(v, d) : num(v, d); }
  function num(v, d) { return v === undefined || v === null || v !== v ? "—" : nf(d).format(v); }
  function signed(v, d) { return v === undefined || v === null || v !== v ? "—" : nf(d, true).format(v); }
  // A price to about 7 significant digits, at least 2 decimals: 59,920.15, 190.4171, 1.10053 (FX), 0.00001234,
  // 0.0000000015 (a token priced in billionths). At most 8 decimals, a price under 0.000000005 read "0.00" (both the
  // price and the average entry of a BABYDOGE/USDT row); 20 is what every browser's Intl.NumberFormat takes.
  var PRICE = [];
  function price(v) {
    if (v === undefined || v === null || v !== v) return "—";
    var a = Math.abs(v), d = a > 0 ? Math.min(20, Math.max(2, 6 - Math.floor(Math.log10(a)))) : 2;
    return (PRICE[d] || (PRICE[d] = new Intl.NumberFormat("en-US", {
      minimumFractionDigits: 2, maximumFractionDigits: d
    }))).format(v);
  }
  // A quantity as it is, to 8 decimals: 0.5 BTC is "0.5", not "1"; 100 shares "100"; never "-0". One under
  // 0.000000005 (dust left by a venue's rounding, a fee paid in the coin) shows its first 3 significant digits:
  // 0.000000003 read "0" (and -0.000000004 "-0"), a flat position that was not; below 20 decimals, in E notation.
  var QTY = new Intl.NumberFormat("en-US", { maximumFractionDigits: 8 }), DUST = [];
  var QTY_E = new Intl.NumberFormat("en-US", { notation: "scientific", maximumSignificantDigits: 3 });
  function qty(v) {
    if (v === undefined || v === null || v !== v) return "—";
    var a = Math.abs(v);
    if (a === 0 || a >= 5e-9) return QTY.format(v + 0);
    var d = 2 - Math.floor(Math.log10(a));                  // 3e-9: 11 decimals, "0.000000003"
    if (d > 20) return QTY_E.format(v);
    return (DUST[d] || (DUST[d] = new Intl.NumberFormat("en-US", { maximumFractionDigits: d }))).format(v);
  }
  function count(v) { return nf(0).format(v || 0); }                 // a count that is absent is 0, never blank
  function ms(v) { return v === undefined || v === null ? "—" : nf(v < 0.001 ? 3 : 2).format(v * 1000); }
  function pct(v, d) { return v === undefined || v === null ? "—" : nf(d).format(v * 100) + " %"; }
  function tone(v) { return v > 0 ? "pos" : v < 0 ? "neg" : ""; }
  function esc(s) {
    return String(s).replace(/[&<>"]/g, function (c) { return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]; });
  }
  // Bidi controls (Unicode's Bidi_Control: embeddings and overrides U+202A-U+202E, isolates U+2066-U+2069, the marks
  // U+200E, U+200F, U+061C) in a name from the service reorder what follows them on screen: "AAPL\u202egnp.exe" showed
  // as "AAPLexe.png", and an override in a reject reason turned the order id after it around. Every name written as
  // text (plain: textContent; txt: markup) shows each as a visible [U+202E]; keys (data-*, option values) keep the name.
  var BIDI = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
  function bidiCode(c) { return "[U+" + c.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0") + "]"; }
  function plain(s) { return String(s).replace(BIDI, bidiCode); }
  function txt(s) { return esc(plain(s)); }
  function age(s) {
    if (s === undefined || s === null || s !== s) return "—";
    if (s < 60) return nf(s < 10 ? 1 : 0).format(s) + " s";
    if (s < 3600) return Math.floor(s / 60) + " m " + Math.floor(s % 60) + " s";
    return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " m";
  }
  // A symbol's market-data age in its narrow column: "<1 s", "45 s", "12 m", "3 h", "2 d" (whole units, rounded down).
  function shortAge(s) {
    if (s === undefined || s === null || s !== s) return "—";
    if (s < 1) return "<1 s";
    if (s < 60) return Math.floor(s) + " s";
    if (s < 3600) return Math.floor(s / 60) + " m";
    if (s < 86400) return Math.floor(s / 3600) + " h";
    return Math.floor(s / 86400) + " d";
  }
  // The one zone of the page's clock times (the blotter's rows, its "not received" rows, the charts' time axes), the
  // zone the header's "counts since" and the day P&L's label are in: the desk's (the frame's day_tz, its
  // trading_day_start's zone) when it names one this browser knows, else the browser's own. It is named once, in the
  // blotter's head ("New York time"). The blotter was in the browser's zone beside "since 17:00 New York": a trader in
  // London read "fill at 14:03" and could not tell whose 14:03 it was.
  var zone = { tz: null, name: "", fmt: null, day: null };
  function zoneName(tz, start) {  // "New York": the place of day_start ("17:00 New York"), else of the IANA name
    if (start && start !== "mixed" && start.indexOf(" ") > 0) return start.slice(start.indexOf(" ") + 1);
    return (tz.slice(tz.lastIndexOf("/") + 1) || tz).replace(/_/g, " ");
  }
  function setZone(tz, start) {
    tz = typeof tz === "string" ? tz : "";
    if (zone.tz === tz) return;
    var o = { hourCycle: "h23", hour: "2-digit", minute: "2-digit", second: "2-digit" }, d = { month: "short", day: "numeric" };
    var own = new Intl.DateTimeFormat().resolvedOptions().timeZone || "", used = "";
    if (tz) {
      try { new Intl.DateTimeFormat([], { timeZone: tz }); o.timeZone = d.timeZone = used = tz; }
      catch (e) { /* a zone this browser does not know: its own time, as without one */ }
    }
    zone = { tz: tz, name: used ? zoneName(used, start) : own ? zoneName(own, "") : "local",
      fmt: new Intl.DateTimeFormat([], o), day: new Intl.DateTimeFormat([], d), today: "" };
    var title = "times in " + (used ? used + ", the desk's trading day's zone (trading_day_start)" :
      (own || "this browser's zone") + ", this browser's zone (no trading_day_start zone)");
    var el = $("blotter-zone");
    el.textContent = zone.name + " time";
    el.title = title;
    var th = $("blotter").tHead.rows[0].cells[0], tip = th.querySelector('span[id^="tip-"]');
    th.title = title;
    if (tip) tip.textContent = title;  // its description for a screen reader (made once from the first title, below)
    events.forEach(function (ev) { delete ev._clock; delete ev._html; });  // rows already written: in the new zone
    filterDirty = true; chartKey = "";
  }
  function clock(ts) { return zone.fmt.format(new Date(ts * 1000)); }
  function clockDay(ts) { return zone.day.format(new Date(ts * 1000)); }
  // A row's time, with its date when it is not of today in the page's zone ("Dec 6 23:59:55"): a desk that runs
  // overnight kept yesterday's fills in the blotter under today's, each read as today's time. Today is the server's
  // (the frames' clock); the rows' cached times are written again when it changes (blotter()).
  function stamp(ts) { var d = clockDay(ts); return d === zone.today ? clock(ts) : d + " " + clock(ts); }
  // From when to when the page got no event: with the dates when the two are on different days in the page's zone
  // ("from Dec 6 16:55:00 to Dec 7 09:10:00"): "from 16:55:00 to 09:10:00" read as a negative span, or as today.
  function span2(since, until) {
    if (clockDay(since) === clockDay(until)) return "from " + clock(since) + " to " + clock(until);
    return "from " + clockDay(since) + " " + clock(since) + " to " + clockDay(until) + " " + clock(until);
  }
  // Replace an element's HTML only when it changed: an unchanged table costs no layout.
  // Maps keyed by names from the data (symbols, order ids, services...) have no prototype: a key "__proto__" or
  // "constructor" is then a key like any other, never Object.prototype (writing to that broke every object on the page).
  function dict(o) { return Object.assign(Object.create(null), o); }
  function setHTML(el, html) { if (el._html !== html) { el._html = html; el.innerHTML = html; } }
  function serverNow() { return frameTs ? frameTs + (performance.now() - recvAt) / 1000 : Date.now() / 1000; }

  // ------------------------------------------------------------------ connection
  // The badge is the page's one live region (role=status, polite): it is written only when the state or its text
  // changes. A tab that follows another's stream hears the holder's status each second, and wrote the same text,
  // class and state again each time, so a screen reader could read "connected" out every second.
  function setStatus(s, text) {
    T.status = s;
    var el = $("status"), shown = text || s;
    if (el.textContent !== shown) el.textContent = shown;
    if (el.dataset.state !== s) { el.className = "status " + s; el.dataset.state = s; }
    if (share && share.holder) post({ kind: "status", s: s, text: text || "" });
  }

  // A stream that stops without an error: a phone that slept or changed networks, a NAT that forgot the connection.
  // The socket stays open, so the browser neither reports an error nor reconnects, and the page showed "connected"
  // over numbers that no longer moved. The hub sends a frame every tick (live_hz, 0.1 to 100 Hz): with none for
  // three typical gaps (the median of the last 9; at least 10 s), the stream is called stale, closed, and opened
  // again from the last id (no reload, nothing missed); again after as long if the new one hangs too. Checked each
  // second; a page woken (shown again, back online...) does not wait for it: see wake().
  var aliveAt = 0, gaps = [], STALL_MIN = 10;
  function alive(now) {
    if (aliveAt && (share && share.holder === false ? share.ready : es && es.readyState === EventSource.OPEN)) {
      gaps.push((now - aliveAt) / 1000);
      if (gaps.length > 9) gaps.shift();
    }
    aliveAt = now;
  }
  function stallAfter() {  // before two gaps are known: 3 of the slowest tick's (live_hz 0.1: one frame each 10 s)
    if (gaps.length < 2) return 3 * STALL_MIN;
    var g = gaps.slice().sort(function (a, b) { return a - b; });
    return Math.max(STALL_MIN, 3 * g[g.length >> 1]);
  }
  function watchdog() {
    if (share && share.holder) post({ kind: "status", s: T.status, text: $("status").textContent });
    if (share && !share.holder) { followerWatch(); return; }
    var idle = !probes && (!es || es.readyState === EventSource.CLOSED);  // (offline: closed, yet checked)
    if (!aliveAt || (idle && navigator.onLine !== false)) return;
    if ((performance.now() - aliveAt) / 1000 <= stallAfter()) return;
    if (navigator.onLine === false) reopen("offline", "offline, waiting for the network");  // (said once, not again)
    else reopen("stale", "stale, reconnecting");
  }

  // A new EventSource does not mean a new connection: over HTTP/1.1 the browser sends its request on a connection
  // it keeps from before (the page's own requests: the page, its scripts, /history), and after the phone slept or
  // its network changed that connection is as dead as the stream's. No error comes, so the request waits for ever:
  // the page showed "stale" and streamed again only when the watchdog gave up on that one too (10 s each: 14 s, or
  // 33 s, after waking in the phone tests; longer with more dead connections kept). So a stream this page opens
  // again is opened after asking HEAD stream on PROBES requests at once (a browser keeps at most 6 connections to a
  // server): the dead connections kept take some and hang, the others go out on new connections; when the first
  // answers (any status: the network is back) the rest are cancelled, which closes the dead connections under them,
  // and the EventSource goes out on a live connection, from the last id (?lastEventId=). All failing at once (the
  // server down): "offline", and a plain connect after 2 s; all hanging: the watchdog starts again after as long as
  // it calls a stream stale. While the browser says it is offline the page keeps no stream (the browser's own
  // retries would go out on the dead connections the moment the network is back) and only probes, each watchdog
  // round, until "online". Only a stream opened again costs these requests, never one that works.
  var probes = null, PROBES = 6, tryAt = 0, awayAt = 0;
  function reopen(state, text) {
    clearTimeout(retryTimer);
    if (es) es.close();
    if (probes) probes.abort();
    setStatus(state, text);
    aliveAt = tryAt = performance.now();
    var ctl = probes = new AbortController(), left = PROBES;
    T.probes = (T.probes || 0) + 1;
    function done(ok) {
      if (probes !== ctl) return;                       // cancelled: this round is over
      if (ok && ok.ok === false) { probes = null; ctl.abort(); refused(ok); return; }
      if (ok) { probes = null; ctl.abort(); connect(); return; }
      if (--left) return;
      probes = null;
      if (navigator.onLine === false) { setStatus("offline", "offline, waiting for the network"); return; }
      setStatus("offline");
      retryTimer = setTimeout(connect, 2000);
    }
    for (var i = 0; i < PROBES; i++) {
      fetch("stream", { method: "HEAD", cache: "no-store", credentials: "include", signal: ctl.signal })
        .then(function (r) { done(r); }, function () { done(false); });
    }
  }
  // The server answered, and refused the stream: full (live_max_clients), stopped, or this browser is not let in. The
  // page said "offline" (the network was fine) and asked for the stream every 2 s, each request counted as a client
  // refused. Now it says why, from the answer's x-tradeobs-refused ("refused: too many live clients"), and asks again
  // with the probes (not counted) after the answer's Retry-After; the stream is asked for once a probe is let in.
  function refused(r) {
    var why = r.headers.get("x-tradeobs-refused") || "HTTP " + r.status;
    var wait = Math.min(60, Math.max(1, +r.headers.get("retry-after") || 5));
    T.refusals = (T.refusals || 0) + 1;
    setStatus("refused", "refused: " + why + ", trying again every " + wait + " s");
    retryTimer = setTimeout(function () { reopen("refused", $("status").textContent); }, wait * 1000);
  }
  // Woken: the page shown again, resumed after the browser froze it, restored from the back/forward cache, or the
  // browser back online. A stream that cannot be trusted is opened again at once, not after the watchdog's 10 s: after
  // "online" always (the connections of before may be dead: the browser's own retry goes out on one of them); else if
  // it is not open (and not an attempt this page began since it went away), or no frame came for more than twice the
  // stream's usual gap (at least 1 s). A stream whose frames keep coming is kept: a tab switched away from and back,
  // a slow healthy stream. A follower tab asks the holder, whose stream it is (not for "online": every tab hears it).
  function wake(why) {
    if (share && !share.holder) { if (share.ready && why !== "online") post({ kind: "wake", why: why }); return; }
    if (!tryAt || (probes && why !== "online")) return; // not streaming yet, or already finding a live connection
    if (why !== "online" && es) {
      if (es.readyState === EventSource.CONNECTING && tryAt > awayAt) return;
      if (es.readyState === EventSource.OPEN && (performance.now() - aliveAt) / 1000 <= usualQuiet()) return;
    }
    T.wakes = (T.wakes || 0) + 1;
    reopen("reconnecting", "reconnecting");
  }
  function usualQuiet() {
    if (gaps.length < 2) return Math.max(1, stallAfter() / 3);
    var g = gaps.slice().sort(function (a, b) { return a - b; });
    return Math.max(1, 2 * g[g.length >> 1]);
  }

  function connect() {
    clearTimeout(retryTimer);
    aliveAt = tryAt = performance.now();
    // A fresh EventSource cannot set Last-Event-ID, so a manual reconnect passes it in the query.
    var url = "stream" + (T.lastId ? "?lastEventId=" + encodeURIComponent(T.lastId) : "");
    es = new EventSource(url, { withCredentials: true });
    es.onopen = function () { T.opens++; aliveAt = performance.now(); setStatus("connected"); };
    es.onerror = function () {
      if (es.readyState === EventSource.CLOSED) {      // HTTP error (503, 401): the browser gave up, we do not;
        setStatus("reconnecting");                      // the probes tell why (refused()), and when to try again
        retryTimer = setTimeout(function () {           // (not at once: a stream refused after a probe let in)
          reopen("reconnecting", "reconnecting");
        }, Math.max(0, 2000 - (performance.now() - tryAt)));
      } else if ((T.status !== "stale" || $("status").textContent === lateText) && navigator.onLine !== false) {
        setStatus("reconnecting");  // the browser retries itself, sending Last-Event-ID (stale, reconnecting and
      }                             // offline: said until a new one opens; a late stream that errs: reconnecting)
    };
    var mine = es;
    ["frame", "event", "reset"].forEach(function (type) {
      es.addEventListener(type, function (e) {
        if (mine !== es) return;                        // a stream this tab closed (it handed the stream over)
        if (share && share.holder) post({ kind: "sse", type: type, data: e.data, id: e.lastEventId });
        ON[type](e);
      });
    });
  }

  // ------------------------------------------------------------------ frames
  function onFrame(e) {
    var f = JSON.parse(e.data);
    // A tab that shares another's stream joins mid-stream: a delta before the holder's full state has no base.
    if (f.type !== "full" && !T.state && share && !share.holder) return;
    alive(performance.now());
    T.lastId = e.lastEventId || T.lastId;
    if (f.type === "full" || !T.state) {
      T.state = f; T.full++;
      f.working = dict(f.working); f.symbols = dict(f.symbols);
      if (f.services) f.services = dict(f.services);
      if (f.strategies) f.strategies = dict(f.strategies);
      var listed = Object.keys(f.symbols);
      newSymbols(listed);
      // A full frame with no symbol at all (a restarted service that has not traded yet) says nothing of which have
      // gone: forgetting them all there lost the user's chart choice to the first symbol that came back.
      if (listed.length) forgetSymbols(absent(f.symbols));
    } else {
      merge(T.state, f); T.state.ts = f.ts; T.state.seq = f.seq; T.deltas++;
    }
    recvAt = performance.now();
    var gapped = frameTs && ring.n && f.ts - ring.t[(ring.n - 1) % MAX_POINTS] > stallAfter();
    frameTs = f.ts;
    T.frames++;
    if (gapped) { ring.n = 0; ring.px = dict(); ring.pnl = dict(); }
    record(T.state);
    if (gapped) resync("", 0, 0);  // the points of the gap from /history, if the server has them (else: the charts
    schedule();                      // start again from this frame, not a line across the gap)
  }

  // A delta: per section the keys that changed; null is a key that is gone (delete it), at every level merged:
  // a section's key, a symbol, a symbol's field, a working order, a fleet row and its fields.
  function patch(obj, d) { for (var k in d) { if (d[k] === null) delete obj[k]; else obj[k] = d[k]; } }
  function merge(state, d) {
    var syms = d.symbols, fresh = null, gone = null;
    for (var s in syms) {
      var row = syms[s], old = state.symbols[s];
      if (row === null) { delete state.symbols[s]; (gone = gone || []).push(s); }
      else if (old) patch(old, row); else { state.symbols[s] = row; (fresh = fresh || []).push(s); }
    }
    if (fresh) newSymbols(fresh);
    if (gone) forgetSymbols(gone);
    ["account", "desk", "latency", "health", "system", "working"].forEach(function (k) {
      if (d[k]) patch(state[k] || (state[k] = dict()), d[k]);
    });
    // The fleet gateway's rows: a new row whole, a changed row's changed fields, a removed row as null.
    ["services", "strategies"].forEach(function (k) {
      if (!d[k]) return;
      var rows = state[k] || (state[k] = dict());
      for (var x in d[k]) {
        var r = d[k][x];
        if (r === null) delete rows[x]; else if (rows[x]) patch(rows[x], r); else rows[x] = r;
      }
    });
  }

  // Symbols in the order a person looks them up in, whatever their case: "btc_jpy" beside "BTC/USDT", before
  // "ETH-PERP" (by code unit every lower-case name came after every upper-case one, at the end of the table); two that
  // differ only in case, upper case first.
  function bySymbol(a, b) {
    var x = lowerOf(a), y = lowerOf(b);
    return x < y ? -1 : x > y ? 1 : a < b ? -1 : a > b ? 1 : 0;
  }
  function newSymbols(list) {
    for (var i = 0; i < list.length; i++) {
      if (!symSet.has(list[i])) { symSet.add(list[i]); symList.push(list[i]); symListDirty = true; }
    }
    if (symListDirty) symList.sort(bySymbol);
  }

  // What the page holds of symbols a full frame does not list: picker entries, rings (also those /history
  // prefilled for symbols gone since), chart choices (also one restored from localStorage).
  function absent(present) {
    var held = new Set(symList.concat(Object.keys(ring.px), Object.keys(ring.pnl), T.selected)), out = [];
    held.forEach(function (s) { if (!(s in present)) out.push(s); });
    return out;
  }

  // Symbols gone from the state (a delta's null, or not in a full frame: a worker that alone traded them exited,
  // the service restarted without them): out of the picker and the chart, their rings freed, so the page's memory
  // follows the symbols there are now, not every symbol ever seen. One that comes back is new: fresh rings, not
  // charted again by itself. A chart left empty shows the first symbol there is (the first ones if the user never
  // chose), said next to the chips. Not saved: localStorage keeps what the user chose.
  function forgetSymbols(gone) {
    if (!gone.length) return;
    var lost = [];
    for (var i = 0; i < gone.length; i++) {
      var s = gone[i], k = T.selected.indexOf(s);
      symSet.delete(s); lower.delete(s); delete ring.px[s]; delete ring.pnl[s];
      if (k >= 0) { T.selected.splice(k, 1); lost.push(s); }
    }
    var n = symList.length;
    symList = symList.filter(function (x) { return symSet.has(x); });
    if (symList.length !== n) symListDirty = true;
    if (!lost.length) return;
    var text = (lost.length > 3 ? lost.slice(0, 3).join(", ") + " and " + (lost.length - 3) + " more" : lost.join(", ")) +
      " left the feed";
    if (!T.selected.length) {
      refill = true;
      if (refillSelection()) text += "; charting " + T.selected.join(", ");
    }
    tell(text);
  }
  function refillSelection() {
    if (!refill || T.selected.length || !symList.length) return false;
    refill = false;
    T.selected = symList.slice(0, touched ? 1 : DEFAULT_CHART);
    return true;
  }

  // ------------------------------------------------------------------ chart rings (every symbol, so any can be charted)
  var ring = T.ring = { n: 0, t: new Float64Array(MAX_POINTS), total: new Float64Array(MAX_POINTS),
    p50: new Float64Array(MAX_POINTS), p99: new Float64Array(MAX_POINTS), px: dict(), pnl: dict() };

  function symRing(store, s) {
    var r = store[s];
    if (!r) { r = store[s] = new Float64Array(MAX_POINTS); r.fill(NaN); }
    return r;
  }

  // The ring slot of a point at server time ts. uPlot needs the x values in order: after the server's wall clock
  // stepped back (NTP, an operator), its frames' times were drawn before the points already there, the line doubling
  // back across the chart. The points already drawn move back by the step instead, so the newest carry the clock the
  // server keeps now. A frame at the time of the last point (the stream's first, after /history's) takes its slot.
  function slot(ts) {
    var n = Math.min(ring.n, MAX_POINTS);
    if (n) {
      var last = ring.t[(ring.n - 1) % MAX_POINTS];
      if (ts === last) return (ring.n - 1) % MAX_POINTS;
      if (ts < last) {
        var gap = n > 1 ? last - ring.t[(ring.n - 2) % MAX_POINTS] : 0.1;
        var shift = last - ts + Math.min(Math.max(gap, 0.001), 1);
        for (var k = 0; k < MAX_POINTS; k++) ring.t[k] -= shift;
        T.clockSteps++;
      }
    }
    ring.t[ring.n % MAX_POINTS] = ts;
    return ring.n++ % MAX_POINTS;
  }

  function record(st) {
    var i = slot(st.ts), syms = st.symbols;
    var tot = (st.account || {}).pnl;
    ring.total[i] = tot === undefined || tot === null ? NaN : tot;
    for (var s in syms) {
      var r = syms[s];
      symRing(ring.px, s)[i] = r.px === undefined ? NaN : r.px;
      symRing(ring.pnl, s)[i] = r.rpnl === undefined && r.upnl === undefined ? NaN : (r.rpnl || 0) + (r.upnl || 0);
    }
    var lat = (st.latency || {}).submit_to_fill || {};
    ring.p50[i] = lat.p50 == null ? NaN : lat.p50 * 1000;
    ring.p99[i] = lat.p99 == null ? NaN : lat.p99 * 1000;
  }

  // A reset: the server cannot resume from our last id (it restarted, or lost our place), and a full frame follows.
  // The charts start again from it: points of the old process would be joined to the new one's across the outage
  // (its P&L starts again at 0), and "% change" would be measured from the old process's first price.
  //
  // The page then asks /history again, as when it loaded: the events the server still holds were never sent on the
  // new stream (a reset sends the state, not the events), and the charts would start from one point. After a phone
  // slept or a tab was frozen longer than the server keeps events for, the blotter showed what came before and what
  // came after, nothing between, and nothing said so: a trader read "no fill in 30 minutes". Now the events the server
  // still has go in their place, before those that came since, after a row saying which ones the page did not get.
  function onReset(e) {
    T.resets++;
    var why = "";
    try { why = JSON.parse(e.data).reason || ""; } catch (err) { /* no reason given */ }
    ring.n = 0; ring.px = dict(); ring.pnl = dict();
    resync(why === "gap" ? "the server no longer had them" : "the server restarted", frameTs, eventN);
  }
  // The charts' points from /history, then those the ring got since: a frame after a gap (no frame for longer than
  // a stream is called stale: a tab the browser froze, a phone that slept, a network cut) was joined by a straight line
  // across the whole gap to the points of before it, minutes of prices that were never seen drawn as a steady move.
  // A reset also passes what it lost: the events from "since" (the last frame's time) on are asked for too.
  var resyncing = 0;
  function resync(lost, since, mark) {
    var mine = ++resyncing;
    T.resyncs = (T.resyncs || 0) + 1;
    getJson("history").then(function (h) {
      if (!h) return;
      var boot = T.lastId.slice(0, T.lastId.lastIndexOf("-"));
      if (lost) restoreEvents(h.events || [], lost, since, mark);
      if (mine !== resyncing || !h.frames || !h.frames.length || (boot && h.boot && h.boot !== boot)) return;
      var kept = ringFrames(), first = kept.length ? kept[0].ts : Infinity;
      ring.n = 0; ring.px = dict(); ring.pnl = dict();
      prefill(h.frames.filter(function (f) { return f.ts < first; }).concat(kept));
      schedule(true);
    });
  }
  function ringFrames() {  // the ring's points as /history's frames
    var n = Math.min(ring.n, MAX_POINTS), start = ring.n - n, out = [], v = function (x) { return x !== x ? null : x; };
    for (var k = 0; k < n; k++) {
      var i = (start + k) % MAX_POINTS, px = {}, pnl = {};
      for (var s in ring.px) { px[s] = v(ring.px[s][i]); pnl[s] = v(symRing(ring.pnl, s)[i]); }
      out.push({ ts: ring.t[i], total: v(ring.total[i]), p50: v(ring.p50[i]) === null ? null : ring.p50[i] / 1000,
        p99: v(ring.p99[i]) === null ? null : ring.p99[i] / 1000, px: px, pnl: pnl });
    }
    return out;
  }
  // The events the server holds that this page has not shown, in order before those that came after the reset
  // (numbered after "mark"), after a row saying from when to when the page got none.
  function restoreEvents(held, lost, since, mark) {
    var at = 0;
    while (at < events.length && events[at]._n <= mark) at++;
    var firstHeld = null, i;
    for (i = 0; i < held.length; i++) if (!seen.has(held[i].id)) { firstHeld = held[i]; break; }
    var until = firstHeld ? firstHeld.ts : serverNow();
    if (since && until > since) {
      var gap = { id: "gap-" + T.resets, kind: "gap", ts: since, _gap: true, _n: ++eventN,
        _since: since, _until: until, _lost: lost };
      events.splice(at++, 0, gap);
      T.gaps = (T.gaps || 0) + 1;
    }
    for (; i < held.length; i++) if (addEvent(held[i], held[i].id, at)) at++;
    filterDirty = true;
    schedule();
  }
  var ON = { frame: onFrame, event: onEvent, reset: onReset };

  function prefill(frames) {  // chart points from /history, so the charts do not start empty
    frames.slice(-MAX_POINTS).forEach(function (f) {
      var i = slot(f.ts);
      ring.total[i] = f.total == null ? NaN : f.total;
      Object.keys(f.px || {}).forEach(function (s) {
        symRing(ring.px, s)[i] = f.px[s] == null ? NaN : f.px[s];
        symRing(ring.pnl, s)[i] = f.pnl[s] == null ? NaN : f.pnl[s];
      });
      ring.p50[i] = f.p50 == null ? NaN : f.p50 * 1000;
      ring.p99[i] = f.p99 == null ? NaN : f.p99 * 1000;
    });
    newSymbols(Object.keys((frames[frames.length - 1] || {}).px || {}));
  }

  function ordered(arr, scale, base) {  // ring -> chronological array for uPlot (null = gap)
    var n = Math.min(ring.n, MAX_POINTS), start = ring.n - n, out = new Array(n);
    for (var k = 0; k < n; k++) {
      var v = arr[(start + k) % MAX_POINTS];
      out[k] = v !== v ? null : scale ? (v / base - 1) * 100 : v;
    }
    return out;
  }
  function firstValue(arr) {
    var n = Math.min(ring.n, MAX_POINTS), start = ring.n - n;
    for (var k = 0; k < n; k++) { var v = arr[(start + k) % MAX_POINTS]; if (v === v && v !== 0) return v; }
    return NaN;
  }

  // ------------------------------------------------------------------ charts
  var charts = {}, chartKey = "";
  var measureCtx = document.createElement("canvas").getContext("2d");

  // The time axis: each tick's clock time ("10:44:05"). uPlot's default put ":05" on each tick and a date line under
  // the first one, which the chart's left edge cut ("/5/26 10:44am"); a live minute needs no date.
  // Whole seconds or more between ticks: uPlot picked ticks by the room alone, and a wide chart with a few seconds of
  // points got one every 0.5 s or 0.2 s, each labelled with its whole second ("11:19:19 11:19:19 11:19:20").
  var TIME_INCRS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 21600, 43200, 86400];
  function timeValues(id) {
    return function (u, splits) {
      var out = splits.map(function (v) { return v === null ? "" : clock(v); });
      T.axes[id + ":x"] = { splits: splits.slice(), labels: out };
      return out;
    };
  }
  function axisValues(id, kind) {
    return function (u, splits) {
      // As many decimals as the step between ticks has: a price chart of 1000PEPEUSDT alone (0.00000123, moving by
      // 0.00000001) has ticks 0.000000005 apart, which 3 decimals at most labelled "0.000" each; ticks 0.25 apart
      // read "0.3", "0.5", "0.8".
      var step = splits.length > 1 ? Math.abs(splits[1] - splits[0]) : 1, d = 0;
      while (d < 20 && step > 0 && isFinite(step) && Math.abs(step * Math.pow(10, d) - Math.round(step * Math.pow(10, d))) >
        1e-6 * step * Math.pow(10, d)) d++;
      var out = splits.map(function (v) {
        if (v === null) return "";
        return kind === "pct" ? nf(d, true).format(v) + " %" : nf(d).format(v);
      });
      T.axes[id] = out;
      return out;
    };
  }
  // Half the widest time label, and a little: the first and last time ticks may fall on the plot's edges, where their
  // labels are centred, so the y axis (left of the plot) and the right padding are each at least this wide. uPlot's
  // own right padding is half the y axis: with narrow y labels ("0.5") a time label at the right edge was cut.
  var halfTime = 0;
  function halfTimeLabel() {
    if (!halfTime) {
      measureCtx.font = AXIS_FONT;
      halfTime = Math.ceil(measureCtx.measureText("88:88:88").width / 2) + 2;
    }
    return halfTime;
  }
  // The y axis is as wide as its longest label (uPlot's default is a fixed 50 px, which cut "-2,000" to "2,000").
  // uPlot calls this again after laying out with the new size (cycleNum 2, 3): keep the first answer, so it settles.
  function axisSize() {
    var width = 0;
    return function (u, values, axisIdx, cycleNum) {
      if (cycleNum > 1 && width) return width;
      var axis = u.axes[axisIdx], widest = 0;
      measureCtx.font = AXIS_FONT;
      (values || []).forEach(function (v) { widest = Math.max(widest, measureCtx.measureText(v).width); });
      return (width = Math.max(Math.ceil(widest) + axis.ticks.size + axis.gap + 6, halfTimeLabel()));
    };
  }

  function makeChart(k, ser, kind) {
    var id = "chart-" + k, el = $(id);
    el.textContent = "";
    ser = ser.map(function (s) { return Object.assign({ width: 1.5, spanGaps: true, show: !hiddenLines[k].has(s.label) }, s); });
    renderLegend(k, ser);
    var opts = {
      width: Math.max(300, el.clientWidth || 600), height: 200,
      series: [{}].concat(ser),
      axes: [
        { stroke: "#9aa4b1", grid: { stroke: "#262c34" }, font: AXIS_FONT, values: timeValues(id), space: 70,
          incrs: TIME_INCRS },
        { stroke: "#9aa4b1", grid: { stroke: "#262c34" }, font: AXIS_FONT, values: axisValues(id, kind), size: axisSize(),
          gap: 5, ticks: { size: 6, stroke: "#262c34" } }
      ],
      legend: { show: false },  // the page's own, renderLegend()
      padding: [null, halfTimeLabel, null, null]  // null: uPlot's own
    };
    return new uPlot(opts, [[]].concat(ser.map(function () { return []; })), el);
  }

  function colorOf(s) { return COLORS[T.selected.indexOf(s) % COLORS.length]; }
  function dashOf(s) { return DASHES[T.selected.indexOf(s) % DASHES.length]; }

  // Each chart's legend is the page's own: a button per line, after the chart. uPlot's legend toggled a line on a
  // click only (a table row: no Tab stop, no key, no state a screen reader could read) and sat inside the chart's
  // role=img, whose content a screen reader skips. Tab reaches each button, Enter or Space hides or shows its line,
  // aria-pressed says whether it is shown (and the label is struck through when not: not by colour alone); the
  // swatch draws the line's colour, dash and weight. A hidden line stays hidden, by its label, when the charts are
  // built again (a symbol added or removed). Written when the charts are built, never per frame.
  var hiddenLines = { price: new Set(), pnl: new Set(), latency: new Set() };
  var CHART_NAMES = { price: "price chart", pnl: "P&L chart", latency: "latency chart" };
  function swatch(stroke, dash, width) {
    return '<svg class="sw" width="24" height="8" aria-hidden="true" focusable="false"><line x1="1" y1="4" x2="23" y2="4" stroke="' +
      esc(stroke) + '" stroke-width="' + (width > 2 ? 3 : 2) + '"' + (dash && dash.length ? ' stroke-dasharray="' +
      dash.join(" ") + '"' : "") + "></line></svg>";
  }
  function renderLegend(k, ser) {
    setHTML($("legend-" + k), ser.map(function (s, i) {
      return '<button type="button" class="line" data-i="' + (i + 1) + '" aria-pressed="' + s.show + '" aria-label="' +
        esc(s.label + " line in the " + CHART_NAMES[k]) + '" title="show or hide this line">' +
        swatch(s.stroke, s.dash, s.width) + esc(s.label) + "</button>";
    }).join(""));
  }
  function toggleLine(k, button) {
    var u = charts[k], i = +button.getAttribute("data-i"), s = u && u.series[i];
    if (!s) return;
    var show = !s.show;
    u.setSeries(i, { show: show });
    button.setAttribute("aria-pressed", String(show));
    if (show) hiddenLines[k].delete(s.label); else hiddenLines[k].add(s.label);
  }

  function buildCharts() {
    var mode = $("price-mode").value;
    var key = T.selected.join(",") + "|" + mode;
    if (key === chartKey && charts.price) return;
    chartKey = key;
    Object.keys(charts).forEach(function (k) { charts[k].destroy(); });
    var sym = T.selected.map(function (s) { return { label: plain(s), stroke: colorOf(s), dash: dashOf(s) }; });
    charts.price = makeChart("price", sym, mode === "pct" ? "pct" : "num");
    charts.pnl = makeChart("pnl", [{ label: "total", stroke: "#ffffff", width: 2.5 }].concat(sym), "num");
    // p50 and p99 were green and pink, which a red-green colour-blind eye reads alike: blue and orange, p99 dashed.
    charts.latency = makeChart("latency", [{ label: "p50", stroke: COLORS[0] }, { label: "p99", stroke: COLORS[1], dash: DASHES[1] }], "num");
    T.charts = charts;
    renderChips();
  }

  function drawCharts() {
    buildCharts();
    var t = ordered(ring.t), pctMode = $("price-mode").value === "pct", priceData = [t], pnlData = [t, ordered(ring.total)];
    T.selected.forEach(function (s) {
      var px = symRing(ring.px, s);
      priceData.push(ordered(px, pctMode, pctMode ? firstValue(px) : 1));
      pnlData.push(ordered(symRing(ring.pnl, s)));
    });
    charts.price.setData(priceData);
    charts.pnl.setData(pnlData);
    charts.latency.setData([t, ordered(ring.p50), ordered(ring.p99)]);
    T.chart = { price: priceData, pnl: pnlData };
  }

  // A chart's text: its accessible name (role=img), what a screen reader reads instead of the canvas, and what tells
  // lines apart without their colours: each line's last value and its range over the points kept. Written every 2 s
  // (with the fps), and only when it changed: not a live region, nothing is announced.
  function span(arr, fmt, scale, base) {
    var n = Math.min(ring.n, MAX_POINTS), start = ring.n - n, lo = Infinity, hi = -Infinity, last = NaN;
    for (var k = 0; k < n; k++) {
      var v = arr[(start + k) % MAX_POINTS];
      if (v !== v) continue;
      if (scale) v = (v / base - 1) * 100;
      last = v; if (v < lo) lo = v; if (v > hi) hi = v;
    }
    return last !== last ? "no data" : fmt(last) + " (low " + fmt(lo) + ", high " + fmt(hi) + ")";
  }
  function describeCharts() {
    if (!charts.price || !ring.n) return;
    var n = Math.min(ring.n, MAX_POINTS), t0 = ring.t[(ring.n - n) % MAX_POINTS], t1 = ring.t[(ring.n - 1) % MAX_POINTS];
    var over = " over the last " + age(Math.max(0, t1 - t0)) + ": ", pctMode = $("price-mode").value === "pct";
    var money = signedCash, pctF = function (v) { return signed(v, 2) + " %"; };
    var ms2 = function (v) { return num(v, 2) + " ms"; };
    var label = function (el, text) { if (el.getAttribute("aria-label") !== text) el.setAttribute("aria-label", text); };
    label($("chart-price"), (pctMode ? "Price chart, % change" : "Price chart") + over + (T.selected.map(function (s) {
      var px = symRing(ring.px, s);
      return plain(s) + " " + (pctMode ? span(px, pctF, true, firstValue(px)) : span(px, price));
    }).join("; ") || "no symbol charted"));
    label($("chart-pnl"), "P&L chart" + over + ["total " + span(ring.total, money)].concat(T.selected.map(function (s) {
      return plain(s) + " " + span(symRing(ring.pnl, s), money);
    })).join("; "));
    label($("chart-latency"), "Submit-to-fill latency chart" + over + "p50 " + span(ring.p50, ms2) + "; p99 " +
      span(ring.p99, ms2));
  }

  // ------------------------------------------------------------------ chart selection
  function loadSelection() {
    try {
      var saved = JSON.parse(localStorage.getItem(STORE_KEY) || "null");
      if (Array.isArray(saved)) { T.selected = saved.slice(0, MAX_CHART); touched = true; }
    } catch (err) { /* no storage (private mode): the default selection */ }
  }
  function saveSelection() {
    touched = true; refill = false;
    try { localStorage.setItem(STORE_KEY, JSON.stringify(T.selected)); } catch (err) { /* ignore */ }
  }
  function defaultSelection() {
    if (T.selected.length || !symList.length) return;
    if (refill) { if (refillSelection()) tell("charting " + T.selected.join(", ")); return; }
    if (!touched) T.selected = symList.slice(0, DEFAULT_CHART);
  }
  function select(s, on) {
    var i = T.selected.indexOf(s);
    if (on && i < 0) {
      if (T.selected.length >= MAX_CHART) { note("at most " + MAX_CHART + " symbols at once: remove one first"); return false; }
      T.selected.push(s);
    } else if (!on && i >= 0) {
      T.selected.splice(i, 1);
    } else {
      return true;
    }
    note("");
    saveSelection();
    schedule(true);
    return true;
  }
  function note(text) {
    var el = $("chips-note"), t = plain(text);
    if (el.textContent !== t) el.textContent = t;
    if (!charts.price) pendingNote = text;           // the first chips drawn keep it
  }
  var pendingNote = "";
  function tell(text) { pendingNote = text; note(text); }  // a note that outlives the chips drawn again next
  // The note after the chips stays put (a polite live region: "unknown symbol X", "ZGONE left the feed"); the chips
  // before it are drawn again when the choice changes. A chip's remove button is named after its symbol ("×" alone
  // was all a screen reader said, six times).
  function renderChips() {
    var html = T.selected.map(function (s) {
      return '<span class="chip" data-sym="' + esc(s) + '">' + swatch(colorOf(s), dashOf(s), 1.5) + txt(s) +
        '<button type="button" title="remove" aria-label="remove ' + txt(s) + ' from the charts" data-remove="' +
        esc(s) + '">×</button></span>';
    }).join("");
    var box = $("chips"), keep = $("chips-note");
    while (box.firstChild !== keep) box.removeChild(box.firstChild);
    keep.insertAdjacentHTML("beforebegin", html);
    note(pendingNote);
    pendingNote = "";
  }
  function pickFromInput() {
    var el = $("sym-pick"), v = el.value.trim();
    if (!v) return;
    var match = symSet.has(v) ? v : symList.find(function (s) { return s.toUpperCase() === v.toUpperCase(); });
    if (match === undefined) { note("unknown symbol " + v); return; }
    if (select(match, true)) el.value = "";
  }

  // ------------------------------------------------------------------ positions (virtual rows: only what is scrolled into view)
  var sortKey = "sym", sortAsc = true;
  // The filter box: the symbols containing its text, any case; applied to every frame's symbols before sorting, so
  // it holds as symbols come and go. Empty, it costs nothing (the rows are those of the page without it).
  var posFilter = "";
  function lowerOf(s) { var l = lower.get(s); if (l === undefined) { l = s.toLowerCase(); lower.set(s, l); } return l; }
  function pnlOf(r) { return r.rpnl === undefined && r.upnl === undefined ? undefined : (r.rpnl || 0) + (r.upnl || 0); }
  function sortedSymbols(st) {
    var syms = st.symbols, q = posFilter;
    var keep = q ? function (s) { return s in syms && lowerOf(s).indexOf(q) >= 0; } : function (s) { return s in syms; };
    if (sortKey === "sym") return sortAsc ? symList.filter(keep) : symList.filter(keep).reverse();
    var val = function (s) {
      var r = syms[s];
      var v = sortKey === "pnl" ? pnlOf(r) : r[sortKey];
      return v === undefined || v === null ? null : (sortKey === "ntl" ? Math.abs(v) : v);
    };
    // A symbol without the value (no P&L, no latency yet) goes last either way: sorted up, the biggest losers
    // come first, not the rows showing "—".
    return (q ? Object.keys(syms).filter(keep) : Object.keys(syms)).sort(function (a, b) {
      var x = val(a), y = val(b), d = x === null ? (y === null ? 0 : 1) : y === null ? -1 : sortAsc ? x - y : y - x;
      return d || bySymbol(a, b);
    });
  }
  // A pool of row elements, one per row in view, each updated cell by cell: a price that moved repaints its
  // cell, not the table (a scroller's whole content is repainted when its DOM is replaced).
  var posRows = [], posTop = null, posBottom = null;
  function spacer() {
    var tr = document.createElement("tr"); tr.className = "spacer";
    var td = document.createElement("td"); td.colSpan = 15; tr.appendChild(td);
    return tr;
  }
  function posRow() {
    var tr = document.createElement("tr"), td = document.createElement("td"), box = document.createElement("input");
    var hit = document.createElement("label");    // the whole cell toggles it: a target a finger can hit
    td.className = "c"; box.type = "checkbox"; hit.appendChild(box); td.appendChild(hit); tr.appendChild(td);
    tr._box = box;
    for (var k = 1; k < 15; k++) tr.appendChild(document.createElement("td"));
    return tr;
  }
  // Columns of the fixed tables that grow to their widest text shown (never shrink back, so they do not jump as values
  // change; up to a cap, past which the text is cut and the positions' symbol has its whole name as its title). Their
  // widths fit a stock desk: a crypto desk's names and numbers were cut into an ellipsis at 1400 px, in the very digits
  // that matter: "BTC-27..." for every Deribit option, "0.00000..." for PEPE's price, "-1,500,000..." for its position,
  // "BTC/US..." in the working orders, a fill of "1,500,000,000" as "1,5..." in the blotter. Table id -> column -> cap.
  var FIT = {
    positions: { 1: 220, 2: 150, 3: 150, 4: 150, 5: 150, 6: 130, 7: 130, 8: 130 },
    working: { 1: 220, 3: 220, 4: 150 },
    blotter: { 2: 160, 3: 160, 4: 220, 6: 150, 7: 150 }
  };
  var fitted = {};  // table id -> column -> [its longest text's length so far, its width], and "font" -> per column
  function fit(id) {
    var t = $(id), spec = FIT[id], rows = t.tBodies[0].rows, done = fitted[id] || (fitted[id] = {}), cols = null;
    for (var k in spec) {
      var longest = "", at = null, n = done[k] ? done[k][0] : 0;
      for (var r = 0; r < rows.length; r++) {
        var c = rows[r].cells[k];
        if (c === undefined || rows[r].cells.length < 3) continue;  // spacer and "not received" rows
        var s = c.textContent;
        if (s.length > n && s.length > longest.length) { longest = s; at = c; }
      }
      if (at === null) continue;
      var cs = getComputedStyle(at);
      measureCtx.font = cs.font;
      var need = Math.ceil(measureCtx.measureText(longest).width + parseFloat(cs.paddingLeft) + parseFloat(cs.paddingRight));
      cols = cols || t.querySelectorAll("colgroup > col");
      var col = cols[k], width = done[k] ? done[k][1] : parseFloat(getComputedStyle(col).width) || 0;  // as the page sets it
      done[k] = [longest.length, width];
      if (need > width && width < spec[k]) { done[k][1] = Math.min(need, spec[k]); col.style.width = done[k][1] + "px"; }
    }
  }
  function cell(td, text, cls) {
    if (td._t !== text) { td._t = text; td.textContent = plain(text); }
    if (td._c !== cls) { td._c = cls; td.className = cls; }
  }
  function positions(st) {
    var body = $("positions").tBodies[0], order = sortedSymbols(st), total = order.length, g = view.pos;
    var first = Math.max(0, Math.floor(g.top / ROW_H) - OVERSCAN);
    var last = Math.min(total, Math.ceil((g.top + (g.height || 340)) / ROW_H) + OVERSCAN);
    var n = Math.max(0, last - first), stale = (T.config && T.config.stale_after) || 5;
    if (!posTop) { posTop = spacer(); posBottom = spacer(); body.appendChild(posTop); body.appendChild(posBottom); }
    while (posRows.length < n) { var tr = posRow(); body.insertBefore(tr, posBottom); posRows.push(tr); }
    while (posRows.length > n) body.removeChild(posRows.pop());
    posTop.style.height = first * ROW_H + "px"; posTop.hidden = first === 0;
    posBottom.style.height = (total - last) * ROW_H + "px"; posBottom.hidden = last >= total;
    for (var i = 0; i < n; i++) {
      var s = order[first + i], r = st.symbols[s], pnl = pnlOf(r), row = posRows[i], c = row.cells;
      if (row._sym !== s) {
        row._sym = s; row.dataset.sym = s; c[1].title = plain(s);  // whole, where its column's cap cuts it
        var box = row._box; box.dataset.chart = s; box.setAttribute("aria-label", "chart " + plain(s));
      }
      var cls = "row" + (r.age >= stale ? " stale" : "");
      if (row.className !== cls) row.className = cls;
      var on = T.selected.indexOf(s) >= 0;
      if (row._box.checked !== on) row._box.checked = on;
      cell(c[1], s, "");
      cell(c[2], price(r.px), "");
      cell(c[3], qty(r.pos), "");
      cell(c[4], r.pos ? price(r.avg) : "—", "");
      cell(c[5], bigCash(r.ntl), tone(r.ntl));
      cell(c[6], signedCash(pnl), tone(pnl));
      cell(c[7], signedCash(r.rpnl), tone(r.rpnl));
      cell(c[8], signedCash(r.upnl), tone(r.upnl));
      cell(c[9], count(r.ord), "");
      cell(c[10], count(r.fill), "");
      cell(c[11], count(r.rej), "");
      cell(c[12], ms(r.p50), "");
      cell(c[13], ms(r.p99), "");
      cell(c[14], shortAge(r.age), "");
    }
    fit("positions");
    var label = posFilter ? total + " of " + Object.keys(st.symbols).length + " symbols" : total + " symbols";
    if ($("pos-count").textContent !== label) $("pos-count").textContent = label;
  }

  function setPosFilter(text) {
    var q = text.trim().toLowerCase();
    if (q === posFilter) return;
    posFilter = q;
    $("pos-wrap").scrollTop = 0;     // the matches from the first one, not from where the unfiltered list was scrolled
    schedule();
  }

  // ------------------------------------------------------------------ header strip
  function kpi(id, text, cls) {
    var el = $("kpi-" + id);
    if (el.textContent !== text) el.textContent = text;
    var c = "kv" + (cls ? " " + cls : "");
    if (el.className !== c) el.className = c;
  }
  // The day P&L's label. By default the day starts at the server's local midnight: "P&L today", or "P&L since HH:MM"
  // (the browser's time) when it started later. With trading_day_start the frame says when (day_start, "17:00 New
  // York") and in which zone (day_tz): "P&L since 17:00 New York", or since a later start in that zone's time.
  var hhmmLast = { key: "", text: "" };  // the same start every frame: formatted once (Intl builds a formatter per call)
  function hhmm(ts, tz) {
    var key = ts + " " + (tz || "");
    if (hhmmLast.key === key) return hhmmLast.text;
    var o = { hourCycle: "h23", hour: "2-digit", minute: "2-digit" }, text = null;
    if (tz) {
      try { text = new Date(ts * 1000).toLocaleTimeString([], Object.assign({ timeZone: tz }, o)); }
      catch (e) { /* a zone this browser does not know: its own time, as without one */ }
    }
    if (text === null) text = new Date(ts * 1000).toLocaleTimeString([], o);
    hhmmLast = { key: key, text: text };
    return text;
  }
  function dayLabel(a) {
    var el = $("kpi-day-label"), text, title = "";
    var start = typeof a.day_start === "string" ? a.day_start : "";
    if (start === "mixed") {  // a fleet whose services' days start at different times: no one day's P&L
      text = "P&L (day starts differ)";
      title = "the services' trading days start at different times (trading_day_start)";
    } else if (!start) {
      text = a.day_full || a.day_since === undefined ? "P&L today" : "P&L since " + hhmm(a.day_since);
    } else {
      var place = start.indexOf(" ") > 0 ? start.slice(start.indexOf(" ")) : "";
      text = "P&L since " + (a.day_full || a.day_since === undefined ? start : hhmm(a.day_since, a.day_tz) + place);
      title = "the trading day starts at " + start + (a.day_tz ? " (" + a.day_tz + ")" : "");
    }
    if (el.textContent !== text) el.textContent = text;
    if (el.title !== title) el.title = title;
  }
  // Since when the order, fill and reject counts count (desk.counts_since): the process's start (in a worker group
  // the group's first worker's, on the fleet gateway the first instance's), not the day's start; Grafana has the
  // day's. A trader comparing with the broker's blotter after a restart at noon read the page's fills as the day's.
  // In the desk's zone when it has one (day_tz), as the P&L's label; with the date when that is not today.
  var sinceMemo = {};  // formatted once a minute (whether the date is today's), not every frame
  function clockAt(ts, tz) {
    var key = ts + " " + (tz || "") + " " + Math.floor(Date.now() / 60000);
    if (sinceMemo[key] !== undefined) return sinceMemo[key];
    var o = { hourCycle: "h23", hour: "2-digit", minute: "2-digit", second: "2-digit" }, day = { month: "short", day: "numeric" };
    if (tz) {
      try { new Date(0).toLocaleTimeString([], { timeZone: tz }); o.timeZone = day.timeZone = tz; }
      catch (e) { /* a zone this browser does not know: its own time, as without one */ }
    }
    var when = new Date(ts * 1000), text = when.toLocaleTimeString([], o), date = when.toLocaleDateString([], day);
    if (date !== new Date().toLocaleDateString([], day)) text = date + " " + text;
    if (Object.keys(sinceMemo).length > 8) sinceMemo = {};
    sinceMemo[key] = text;
    return text;
  }
  function countsSince(st) {
    var d = st.desk || {}, a = st.account || {}, since = d.counts_since, label = "fills", text = "", title = "";
    if (typeof since === "number") {
      var start = typeof a.day_start === "string" && a.day_start !== "mixed" ? a.day_start : "";
      var place = a.day_tz && start.indexOf(" ") > 0 ? start.slice(start.indexOf(" ")) : "";
      var at = clockAt(since, a.day_tz) + place;
      var whose = st.services ? "the first instance's" : (st.health || {}).workers > 1 ? "the worker group's" : "this process's";
      label = "fills since " + at;
      text = "counts since " + at;
      title = "orders, fills and rejects counted since " + whose + " start; after a restart they count from there " +
        "(the day's counts over every process: Grafana's trading overview)";
      if (typeof d.counts_since_last === "number") {
        var last = clockAt(d.counts_since_last, a.day_tz) + place;
        text += ", one instance since " + last;
        title = "the instances' counts added up: the first started counting at " + at + ", the last at " + last +
          " (its orders before then are not in them; the day's counts: Grafana's trading overview)";
      }
    }
    var el = $("kpi-fills-label"), note = $("counts-since");
    if (el.textContent !== label) el.textContent = label;
    if (note.textContent !== text) note.textContent = text;
    if (note.title !== title) { note.title = title; el.title = title; }
  }
  function strip(st) {
    var a = st.account || {}, d = st.desk || {};
    countsSince(st);
    kpi("pnl", signedCash(a.pnl), tone(a.pnl));
    kpi("pnl_day", signedCash(a.pnl_day), tone(a.pnl_day));
    dayLabel(a);
    kpi("rpnl", signedCash(a.rpnl), tone(a.rpnl));
    kpi("upnl", signedCash(a.upnl), tone(a.upnl));
    kpi("gross", bigCash(a.gross));
    kpi("net", bigCash(a.net, true), tone(a.net));
    kpi("open", d.open === undefined ? (d.working === undefined ? "—" : count(d.working)) : count(d.open));
    kpi("fills", d.fills === undefined ? "—" : count(d.fills));
    var rr = d.reject_rate;
    kpi("reject_rate", rr === undefined || rr === null ? "—" : pct(rr, 1), rr > 0.05 ? "bad" : "");
    $("kpi-reject-label").textContent = "reject rate " + (d.reject_window >= 299 ? "5m" : d.reject_window ? Math.round(d.reject_window) + "s" : "");
    var ks = $("kpi-kill");
    if (a.kill_switch === undefined) { ks.hidden = true; } else {
      ks.hidden = false;
      kpi("kill_switch", a.kill_switch ? "ENGAGED" : "off", a.kill_switch ? "bad" : "");
      ks.classList.toggle("alarm", !!a.kill_switch);
    }
    waiting(d);
  }
  // Orders sent and not yet acknowledged, filled or ended, with the oldest one's age, and how late the trading loop
  // is (desk.unacked, unacked_age, stall: the agent's gauges at its last collection, a second old at most). Each box
  // shows once its gauge exists. Past the alerts' limits (page config: ack_age_limit, stall_limit; 30 s) the value is
  // red with a sign before it (read "alert:") and the box turns dark red: never colour alone.
  function waiting(d) {
    var c = T.config || {}, box = $("kpi-ack"), n = d.unacked, old = d.unacked_age || 0;
    var ackLimit = c.ack_age_limit || 30, stallLimit = c.stall_limit || 30;
    if (typeof n !== "number") { box.hidden = true; } else {
      box.hidden = false;
      var over = n > 0 && old >= ackLimit;
      kpi("unacked", n > 0 ? count(n) + " · oldest " + age(old) + (over ? " (over " + age(ackLimit) + ")" : "") : "none",
        over ? "bad" : "");
      box.classList.toggle("alarm", over);
      box.title = "orders sent to the venue and not yet acknowledged, filled or ended; TradingOrdersUnacknowledged " +
        "pages when the oldest waits more than " + age(ackLimit);
    }
    var lb = $("kpi-loop"), s = d.stall;
    if (typeof s !== "number") { lb.hidden = true; return; }
    lb.hidden = false;
    var who = d.stall_at ? " · " + d.stall_at : d.stall_pid !== undefined ? " · pid " + d.stall_pid : "";
    var stalled = s >= stallLimit;
    kpi("stall", s < 1 ? "on time" : (stalled ? "stalled " : "late ") + age(s) + who, s >= 1 ? "bad" : "");
    lb.classList.toggle("alarm", stalled);
    lb.title = "how late the trading event loop is now in waking its lag monitor (the worst process's); " +
      "TradingEventLoopStalled pages past " + age(stallLimit);
  }
  // Late: no frame for LATE_MIN s (2 s: twenty frames of a 10 Hz stream), or three of the server's frame periods when
  // it sends fewer (live_hz, /config's hz: 15 s at 0.2 Hz). The data freshness turns red then and the badge says
  // "stale" with it: the badge said "connected" for 8 s more, until the watchdog gave up on the stream (10 s, below),
  // while the freshness next to it was red over numbers that no longer moved. The watchdog still reopens the stream
  // only after its own limit (a short silence of a busy server is not worth a new connection); a frame that comes
  // puts the badge back. A check that comes late itself (this page's thread was held: a busy machine, a background
  // tab's throttled timers) leaves the badge as it is once: the frames queued meanwhile are read first.
  var LATE_MIN = 2, lateText = "", checkedAt = 0;
  function lateAfter() {
    var hz = T.config && T.config.hz;
    return Math.max(LATE_MIN, hz > 0 ? 3 / hz : 0);
  }
  function freshness() {  // also on a timer: a stalled stream must show its age growing
    var st = T.state; if (!st) return;
    var now = performance.now(), held = checkedAt && now - checkedAt > 1000;
    checkedAt = now;
    var d = st.desk || {}, since = (now - recvAt) / 1000, stale = (T.config && T.config.stale_after) || 5;
    var limit = lateAfter(), late = since > limit;
    var parts = ["stream " + age(since)];
    if (d.md_age !== undefined) parts.push("ticks " + age(d.md_age + since));
    if (d.stale) parts.push(d.stale + " stale");
    kpi("freshness", parts.join(" · "), late || d.stale || d.md_age + since > stale ? "bad" : "");
    if (late && !held && T.status === "connected") {
      lateText = "stale: no data for over " + nf(0).format(limit) + " s";
      setStatus("stale", lateText);
    } else if (!late && T.status === "stale" && lateText && $("status").textContent === lateText) {
      setStatus("connected");
    }
  }

  // ------------------------------------------------------------------ orders: working, blotter
  // The blotter's filters offer the strategies and venues of the events the page holds: name -> { n: its events held,
  // opt: its option }. An option whose last event the page let go is removed (unless it is the one chosen): a desk
  // whose strategies are per contract (listed, expired, rolled) kept every name of the day in the filter, thousands.
  var events = [], eventN = 0, filterDirty = true, names = { strategy: new Map(), venue: new Map() };
  function onEvent(e) {
    aliveAt = performance.now();
    T.lastId = e.lastEventId || T.lastId;
    addEvent(JSON.parse(e.data), e.lastEventId);
    schedule();
  }
  function addEvent(ev, id, at) {  // at: where in the list (events from /history after a reset), else last
    id = id || ev.id;
    if (seen.has(id)) return false;
    // The page keeps its own state on an event in keys starting with "_" (its row's HTML, its clock, its order):
    // the service's event data may have keys of any name, and one named "_html" was written into the page as is.
    for (var k in ev) if (k.charAt(0) === "_") delete ev[k];
    seen.add(id); T.eventIds.push(id); T.events++;
    ev.id = id;
    ev._n = ++eventN;
    if (at === undefined) events.push(ev); else events.splice(at, 0, ev);
    name("strategy", ev.strategy, 1); name("venue", ev.venue, 1);
    if (events.length > MAX_EVENTS + TRIM_STEP) {  // back to the newest MAX_EVENTS, and the hook's ids with them
      events.splice(0, events.length - MAX_EVENTS).forEach(function (old) {
        seen.delete(old.id); name("strategy", old.strategy, -1); name("venue", old.venue, -1);
      });
      T.eventIds = T.eventIds.filter(function (held) { return seen.has(held); });
      filterDirty = true;  // the blotter's rows are filtered again from what is held (it showed 500 more)
    }
    return true;
  }
  function name(kind, value, by) {  // one event more (by 1) or less (-1) of a strategy or venue; its option with it
    if (!value) return;
    value = String(value);
    var held = names[kind], it = held.get(value), sel = $("f-" + kind);
    if (by > 0 && !it) {
      it = { n: 0, opt: document.createElement("option") };
      it.opt.value = value; it.opt.textContent = plain(value); sel.appendChild(it.opt);
      held.set(value, it);
    }
    if (!it) return;
    it.n += by;
    if (it.n <= 0 && sel.value !== value) { it.opt.remove(); held.delete(value); }
  }
  function pruneNames(kind) {  // the filter moved off a name whose events are all gone: its option goes too
    var sel = $("f-" + kind);
    names[kind].forEach(function (it, value) { if (it.n <= 0 && sel.value !== value) { it.opt.remove(); names[kind].delete(value); } });
  }
  var KNOWN = { order: 1, fill: 1, reject: 1, cancel: 1 };
  function passes(ev, f, now) {
    if (ev._gap) return !f.window || now - ev.ts <= f.window;  // whatever the filters: events of any kind are missing
    if (f.kind && (f.kind === "other" ? KNOWN[ev.kind] : ev.kind !== f.kind)) return false;
    if (f.strategy && ev.strategy !== f.strategy) return false;
    if (f.venue && ev.venue !== f.venue) return false;
    return !f.window || now - ev.ts <= f.window;
  }
  function filters() {
    return { kind: $("f-kind").value, strategy: $("f-strategy").value, venue: $("f-venue").value, window: +$("f-window").value || 0 };
  }
  function grafanaRange(ts) { return "&from=" + Math.round((ts - 900) * 1000) + "&to=" + Math.round((ts + 900) * 1000); }
  function traceHref(trace, ts) {  // Grafana Explore on the Jaeger datasource, looking the trace id up
    var c = T.config;
    if (!c || !c.grafana_url || !trace) return "";
    var panes = { trace: { datasource: c.jaeger_datasource, queries: [{ refId: "A", datasource: { type: "jaeger", uid: c.jaeger_datasource }, query: trace }],
      range: { from: String(Math.round((ts - 900) * 1000)), to: String(Math.round((ts + 900) * 1000)) } } };
    return c.grafana_url + "/explore?schemaVersion=1&orgId=1&panes=" + encodeURIComponent(JSON.stringify(panes));
  }
  function orderHref(oid, trace, ts) {  // the order drill-down dashboard with its variables
    var c = T.config;
    if (!c || !c.grafana_url || !oid) return "";
    return c.grafana_url + "/d/" + c.order_dashboard + "?orgId=1&var-job=" + encodeURIComponent(c.job) + "&var-order_id=" +
      encodeURIComponent(oid) + (trace ? "&var-trace_id=" + encodeURIComponent(trace) : "") + grafanaRange(ts);
  }
  // A link's accessible name says which order it is for (name): a screen reader's list of links read "order",
  // "trace", "order", "trace"... for every row.
  function link(cls, href, text, title, name) {
    return href ? '<a class="' + cls + '" target="_blank" rel="noopener" title="' + txt(title) + '"' +
      (name ? ' aria-label="' + txt(name) + '"' : "") + ' href="' + esc(href) + '">' + txt(text) + "</a>" : "";
  }
  function grafanaLinks(oid, trace, ts, what) {
    return link("trace", traceHref(trace, ts), "trace", "the order's trace in Grafana Explore", "trace of " + what) +
      link("order", orderHref(oid, trace, ts), "order", "order drill-down dashboard", "order dashboard of " + what);
  }
  function eventRow(ev, now) {
    if (ev._gap) return '<tr class="gap" data-gap="' + esc(ev.id) + '"><td>' + stamp(ev.ts) + '</td><td colspan="10">' +
      txt("events " + span2(ev._since, ev._until) + " not received (" + ev._lost + ")") + "</td></tr>";
    // A cancel of what a partly filled order had left: the row's qty is the order's, so say what was cancelled (a
    // 10-lot filled 4 read "cancel 10", as if nothing had filled).
    var part = ev.kind === "cancel" && ev.filled_qty > 0 && ev.qty > ev.filled_qty ?
      qty(ev.filled_qty) + " filled, " + qty(ev.qty - ev.filled_qty) + " cancelled" : "";
    var detail = ev.kind === "fill" ? (ev.leaves > 0 ? "partial, " + qty(ev.leaves) + " left" : "filled") :
      part ? (ev.reason ? part + ", " + ev.reason : part) :
      ev.reason || ev.message || (ev.kind === "order" ? ev.order_type : "") || "";
    if (ev.order_id) detail = detail ? detail + " · " + ev.order_id : ev.order_id;
    var when = ev._clock || (ev._clock = stamp(ev.ts || 0)), what = ev.kind + " " + (ev.order_id || "") + " at " + when;
    return '<tr class="' + esc(ev.kind) + '" data-id="' + esc(ev.id) + '"><td>' + when +
      "</td><td>" + txt(ev.kind) + "</td><td>" + txt(ev.strategy || "") + "</td><td>" + txt(ev.venue || "") + "</td><td>" +
      txt(ev.symbol || "") + "</td><td>" + txt(ev.side || "") + "</td><td>" + qty(ev.qty) + "</td><td>" + price(ev.price) +
      "</td><td>" + (ev.slippage_bps === undefined || ev.slippage_bps === null ? "" : signed(ev.slippage_bps, 2)) +
      '</td><td class="detail" tabindex="0" title="' + txt(detail) + '">' + txt(detail) + "</td><td>" + grafanaLinks(ev.order_id, ev.trace_id, ev.ts || now, what) +
      "</td></tr>";
  }
  // A table whose rows are written as HTML (the blotter, the working orders) is not written while the keyboard's focus
  // is in it: the new rows replaced the focused link or cell (the blotter with each event, the working orders as
  // their ages moved), and the focus fell to the page's start. It catches up when the focus leaves (bind()).
  function held(body) {
    var a = document.activeElement;  // the keyboard's focus only: a click on a detail cell must not stop the table
    return a !== null && a !== body && body.contains(a) && a.matches(":focus-visible");
  }
  // The events that pass the filters, oldest first; the table shows them newest first and only the rows in view.
  // The blotter's count is of events: the rows saying what was not received are not (each read as one event more).
  var matched = [], shownN = 0, pausedAt = 0, gapsMatched = 0, gapsHeld = 0;
  function gapRows(list) { var n = 0; for (var k = 0; k < list.length; k++) if (list[k]._gap) n++; return n; }
  function blotter() {
    var f = filters(), now = serverNow(), i, ev, today = clockDay(now);
    if (today !== zone.today) {  // a new day (or zone): yesterday's rows get their date
      zone.today = today;
      events.forEach(function (e) { delete e._clock; delete e._html; });
    }
    if (filterDirty) {             // filters changed (or the window slid): filter everything again
      filterDirty = false;
      matched = events.filter(function (e) { return passes(e, f, now); });
      gapsMatched = gapRows(matched); gapsHeld = gapRows(events);
    } else {                       // only new events
      for (i = 0; i < events.length; i++) if (events[i]._n > shownN) break;
      for (; i < events.length; i++) { ev = events[i]; if (passes(ev, f, now)) matched.push(ev); }
    }
    shownN = eventN;
    if (matched.length > MAX_EVENTS) matched.splice(0, matched.length - MAX_EVENTS);
    var len = matched.length;
    if (T.paused) while (len > 0 && matched[len - 1]._n > pausedAt) len--;  // paused: the view ends where it was
    var body = $("blotter").tBodies[0], g = view.blotter;
    var first = Math.max(0, Math.floor(g.top / ROW_H) - OVERSCAN);
    var last = Math.min(len, Math.ceil((g.top + (g.height || 300)) / ROW_H) + OVERSCAN);
    var html = first > 0 ? ['<tr class="spacer" style="height:' + first * ROW_H + 'px"><td colspan="11"></td></tr>'] : [];
    for (i = first; i < last; i++) {
      ev = matched[len - 1 - i];
      html.push(ev._html || (ev._html = eventRow(ev, now)));
    }
    if (last < len) html.push('<tr class="spacer" style="height:' + (len - last) * ROW_H + 'px"><td colspan="11"></td></tr>');
    if (!held(body)) { setHTML(body, html.join("")); fit("blotter"); }
    var newer = matched.length - len;
    var pausedNote = T.paused ? (newer ? newer + " new" : "") : "";
    if ($("paused-note").textContent !== pausedNote) $("paused-note").textContent = pausedNote;
    var shownEvents = len - gapsMatched, heldEvents = events.length - gapsHeld;
    var note = shownEvents + " event" + (shownEvents === 1 ? "" : "s") + (shownEvents < heldEvents ? " of " + heldEvents : "");
    if ($("blotter-note").textContent !== note) $("blotter-note").textContent = note;
  }
  function working(st) {
    var w = st.working || {}, f = filters(), now = serverNow(), ids = Object.keys(w), rows = [], shown = 0;
    ids.sort(function (a, b) { return w[a].t - w[b].t; });
    for (var i = 0; i < ids.length && rows.length < WORKING_ROWS; i++) {
      var o = w[ids[i]], id = o.id === undefined ? ids[i] : String(o.id);  // the gateway keys rows service/instance/id
      if ((f.strategy && o.st !== f.strategy) || (f.venue && o.v !== f.venue)) continue;
      var a = now - o.t;
      shown++;
      var oref = orderHref(id, o.tr, o.t);
      // From a minute on, whole minutes or hours (as the positions' md age): "3 h 20 m" was cut in its 58 px column,
      // and with the "▲" an old order's age has before it, "1 m 59 s" was too.
      rows.push('<tr class="' + (a >= OLD_ORDER_S ? "old" : "") + '" data-oid="' + esc(ids[i]) + '"><td>' +
        (a < 60 ? age(Math.max(0, a)) : shortAge(a)) + "</td><td>" +
        txt(o.s || "") + "</td><td>" + txt(o.sd || "") + "</td><td>" + qty(o.f) + "/" + qty(o.q) + "</td><td>" +
        (o.p === null || o.p === undefined ? "mkt" : price(o.p)) + '</td><td class="detail" title="' + txt(id + " · " + (o.sv ? o.sv + " · " : "") + (o.st || "") + " · " + (o.v || "")) + '">' +
        (oref ? link("order", oref, id, "order drill-down dashboard", "order dashboard of " + id) : txt(id)) + "</td><td>" +
        link("trace", traceHref(o.tr, o.t), "trace", "the order's trace in Grafana Explore", "trace of " + id) + "</td></tr>");
    }
    if (!held($("working").tBodies[0])) { setHTML($("working").tBodies[0], rows.join("")); fit("working"); }
    var d = st.desk || {}, total = d.working === undefined ? ids.length : d.working;
    $("working-count").textContent = total > shown ? "oldest " + shown + " of " + total : String(total);
  }

  // ------------------------------------------------------------------ risk, health
  function risk(st) {
    var d = st.desk || {}, lim = d.limits || {}, names = Object.keys(lim).sort();
    setHTML($("limits"), names.length ? names.map(function (n) {
      var v = lim[n], cls = v >= 1 ? "over" : v >= 0.8 ? "warn" : "";
      return '<div class="limit ' + cls + '" data-limit="' + esc(n) + '"><span title="' + txt(n) + '">' + txt(n) + '</span><div class="bar"><span style="width:' +
        Math.min(100, Math.max(0, v * 100)).toFixed(1) + '%"></span></div><span class="v">' + pct(v, 1) + "</span></div>";
    }).join("") : '<span class="muted">no limits reported</span>');
    var reasons = d.reasons || {};
    setHTML($("reasons").tBodies[0], Object.keys(reasons).sort(function (a, b) { return reasons[b] - reasons[a]; }).map(function (r) {
      return '<tr><td class="detail" tabindex="0" title="' + txt(r) + '">' + txt(r) + "</td><td>" + count(reasons[r]) + "</td></tr>";
    }).join(""));
  }
  var EXPORT = { ok: "exporting", failing: "export failing", not_configured: "collector not configured", off: "export off", no_agent: "no agent" };
  function health(st) {
    var a = st.account || {}, h = st.health || {}, sys = st.system || {}, ex = h.export;
    var failing = ex === "failing";
    var items = [
      ["equity", cash(a.equity)], ["drawdown", a.drawdown == null ? "—" : pct(a.drawdown, 2)],
      ["export", EXPORT[ex] || ex || "—", failing ? "bad" : "neutral", "export"]
    ];
    if (ex === "ok" || failing) items.push(["export failures", count(h.exports_failed), failing ? "bad" : "", "exports_failed"]);
    // its Prometheus port held (the same service started twice, another program): this service's /metrics unserved
    if (h.prometheus_port_busy > 0) items.push(["Prometheus", "port in use: not served", "bad", "prometheus_port_busy"]);
    items.push(
      ["logs dropped", count(h.logs_dropped), h.logs_dropped > 0 ? "bad" : ""], ["items dropped", count(h.items_dropped), h.items_dropped > 0 ? "bad" : ""],
      ["series overflow", count(h.series_overflow), h.series_overflow > 0 ? "bad" : ""], ["live clients", count(h.clients)],
      ["frames coalesced", count(h.frames_coalesced)], ["clients timed out", count(h.clients_timed_out)],
      ["events evicted", count(h.events_evicted)],
      ["process CPU", sys.cpu_pct == null ? "—" : sys.cpu_pct + " %"], ["process RSS", sys.rss_mb == null ? "—" : sys.rss_mb + " MB"]
    );
    setHTML($("health"), items.map(function (it) {
      return "<dt>" + it[0] + '</dt><dd data-k="' + (it[3] || it[0]) + '"' + (it[2] ? ' class="' + it[2] + '"' : "") + ">" + txt(it[1]) + "</dd>";
    }).join(""));
    var badge = $("export");
    badge.textContent = EXPORT[ex] || "";
    badge.dataset.state = ex || "";
  }

  // ------------------------------------------------------------------ drawing: once per animation frame at most
  var pending = false, chartsDirty = true;
  function schedule(charts) {
    if (charts) chartsDirty = true;
    if (pending) return;
    pending = true;
    requestAnimationFrame(draw);
  }
  // Scroll positions, read before anything is written in a frame (a read after a write forces a layout).
  var view = { pos: { top: 0, height: 0 }, blotter: { top: 0, height: 0 } };
  function measure() {
    var p = $("pos-wrap"), b = $("blotter-wrap");
    view.pos.top = p.scrollTop; view.pos.height = p.clientHeight;
    view.blotter.top = b.scrollTop; view.blotter.height = b.clientHeight;
  }
  function draw() {
    pending = false;
    var st = T.state;
    if (!st) return;
    T.draws++;
    var a = st.account || {};
    setZone(a.day_start === "mixed" ? "" : a.day_tz, a.day_start);  // before the charts' and the blotter's times
    measure();
    if (symListDirty) {
      symListDirty = false;
      $("sym-list").innerHTML = symList.map(function (s) { return '<option value="' + esc(s) + '">'; }).join("");
      defaultSelection();
    }
    drawCharts();
    strip(st);
    freshness();
    positions(st);
    working(st);
    blotter();
    risk(st);
    health(st);
    $("lastid").textContent = "last id " + T.lastId;
    fleet(st);
  }

  function fleet(st) {  // only the fleet gateway's frames have services and strategies
    var svcs = st.services, strats = st.strategies || {};
    $("fleet").hidden = !svcs;
    if (!svcs) return;
    setHTML($("services").tBodies[0], Object.keys(svcs).sort().map(function (k) {
      var r = svcs[k];
      return "<tr" + (r.stale ? " class=bad" : "") + "><td>" + txt(k) + "</td><td>" + count(r.instances) + "</td><td>" +
        count(r.stale) + "</td><td>" + count(r.ord) + "</td><td>" + count(r.fill) + "</td><td>" + count(r.rej) +
        "</td><td>" + cash(r.equity) + "</td><td class=" + tone(r.rpnl) + ">" + signedCash(r.rpnl) + "</td><td class=" +
        tone(r.upnl) + ">" + signedCash(r.upnl) + "</td><td>" + ms(r.p50) + "</td><td>" + ms(r.p99) + "</td><td>" +
        count(r.dropped) + "</td><td>" + age(r.age) + "</td></tr>";
    }).join(""));
    setHTML($("strategies").tBodies[0], Object.keys(strats).sort().map(function (k) {
      var r = strats[k];
      return "<tr><td>" + txt(k) + "</td><td>" + count(r.ord) + "</td><td>" + count(r.fill) + "</td><td>" +
        count(r.rej) + "</td><td>" + bigCash(r.ntl) + "</td><td class=" + tone(r.rpnl) + ">" + signedCash(r.rpnl) +
        "</td><td class=" + tone(r.upnl) + ">" + signedCash(r.upnl) + "</td><td>" + pct(r.drawdown, 2) + "</td><td" +
        (r.kill_switch ? " class=bad>ENGAGED" : ">off") + "</td></tr>";
    }).join(""));
  }

  // ------------------------------------------------------------------ header tips
  // A column header's tooltip (its title) shows on hover only: a keyboard cannot reach a header, and a touch screen
  // has no hover. Each sort header is a button (Tab reaches it, Enter or Space sorts), and a header with a tip gets
  // it as its accessible description (aria-describedby) and shows it in its card's note, under the card's head,
  // while it has the keyboard's focus or after a click or tap (on a sort header it sorts and shows it; on another
  // header a second one hides it), until the header loses the focus. The title stays for the mouse's hover.
  function headerTips() {
    var n = 0;
    Array.prototype.forEach.call(document.querySelectorAll("th[data-sort], th[title]"), function (th) {
      var target = th, tip = th.getAttribute("title"), sorts = th.hasAttribute("data-sort");
      var label = th.textContent.trim();
      if (sorts) {
        target = document.createElement("button");
        target.type = "button"; target.className = "sort";
        while (th.firstChild) target.appendChild(th.firstChild);
        th.appendChild(target);
      } else if (tip) {
        th.tabIndex = 0;
      }
      if (!tip) return;
      var desc = document.createElement("span");
      desc.id = "tip-" + (++n); desc.hidden = true; desc.textContent = tip;
      th.appendChild(desc);
      target.setAttribute("aria-describedby", desc.id);
      th.removeAttribute("title"); target.title = tip;
      var text = label + ": " + tip;
      // From the keyboard only: a note that appeared on a pointer's focus (mousedown, before the click) would move the
      // table under the finger and the click would land elsewhere. A click or a tap shows it after the fact.
      target.addEventListener("focus", function () { if (target.matches(":focus-visible")) showTip(th, text, true); });
      target.addEventListener("blur", function () { showTip(th, text, false); });
      target.addEventListener("click", function () { showTip(th, text, sorts ? true : undefined); });
    });
  }

  // Show (on true), hide (false: only this header's text) or toggle (undefined) a header's tip in its card's note.
  function showTip(th, text, on) {
    var card = th.closest(".card"), note = card.querySelector(".tip-note");
    if (!note) {
      note = document.createElement("div"); note.className = "tip-note";
      card.insertBefore(note, card.querySelector(".cardhead").nextSibling);
    }
    if (on === undefined) on = note.textContent !== text;
    if (on) note.textContent = text;
    else if (note.textContent === text) note.textContent = "";
  }

  // ------------------------------------------------------------------ controls
  function bind() {
    $("sym-pick").addEventListener("change", pickFromInput);
    $("sym-pick").addEventListener("keydown", function (e) { if (e.key === "Enter") pickFromInput(); });
    $("sym-clear").addEventListener("click", function () { T.selected = []; saveSelection(); schedule(true); });
    $("price-mode").addEventListener("change", function () { schedule(true); });
    $("chips").addEventListener("click", function (e) {
      var s = e.target.getAttribute && e.target.getAttribute("data-remove");
      if (s !== null && s !== undefined) select(s, false);
    });
    $("positions").addEventListener("change", function (e) {
      var s = e.target.getAttribute("data-chart");
      if (s !== null && !select(s, e.target.checked)) e.target.checked = false;
    });
    headerTips();
    $("positions").tHead.addEventListener("click", function (e) {
      var hit = e.target.closest && e.target.closest("th[data-sort]"), k = hit && hit.getAttribute("data-sort");
      if (!k) return;
      sortAsc = k === sortKey ? !sortAsc : k === "sym";
      sortKey = k;
      Array.prototype.forEach.call(this.querySelectorAll("th"), function (th) {
        th.classList.toggle("sorted", th === hit); th.classList.toggle("asc", th === hit && sortAsc);
        if (th === hit) th.setAttribute("aria-sort", sortAsc ? "ascending" : "descending");
        else th.removeAttribute("aria-sort");
      });
      schedule();
    });
    $("pos-filter").addEventListener("input", function () { setPosFilter(this.value); });
    $("pos-filter").addEventListener("keydown", function (e) {
      if (e.key !== "Escape") return;
      e.preventDefault();
      this.value = "";
      setPosFilter("");
    });
    // A tap (or click) on a detail cell shows its whole text under the table; again, or on another row, hides or
    // replaces it. A link in the cell (the order id to Grafana) is followed as before.
    // From the keyboard: a detail cell of the blotter and of the rejects by reason is a Tab stop, and Enter or Space on
    // it does what a click does (before, a keyboard could not read a reason cut to its column).
    ["blotter", "working", "reasons"].forEach(function (id) {
      var body = $(id).tBodies[0];
      function toggle(e) {
        var td = e.target.closest && e.target.closest("td.detail");
        if (!td || e.target.closest("a")) return false;
        var out = $(id).closest(".card").querySelector(".detail-note"), text = td.title;
        out.textContent = out.textContent === text ? "" : text;
        return true;
      }
      body.addEventListener("click", toggle);
      body.addEventListener("keydown", function (e) {
        if ((e.key === "Enter" || e.key === " ") && e.target.matches && e.target.matches("td.detail") && toggle(e)) e.preventDefault();
      });
      body.addEventListener("focusout", function () { schedule(); });  // a table held while focused catches up
    });
    ["price", "pnl", "latency"].forEach(function (k) {
      $("legend-" + k).addEventListener("click", function (e) {
        var b = e.target.closest && e.target.closest("button.line");
        if (b) toggleLine(k, b);
      });
    });
    // Escape closes what a click, a tap or a key opened over the tables: the detail notes and the header tips (a tip
    // shown on focus is dismissed without moving the focus, WCAG 1.4.13; before, only leaving the cell hid it). The
    // positions filter's own Escape (it clears the filter) comes first.
    document.addEventListener("keydown", function (e) {
      if (e.key !== "Escape" || e.defaultPrevented) return;
      Array.prototype.forEach.call(document.querySelectorAll(".card .detail-note, .card .tip-note"), function (n) {
        if (n.textContent) n.textContent = "";
      });
    });
    $("pos-wrap").addEventListener("scroll", function () { schedule(); }, { passive: true });
    $("blotter-wrap").addEventListener("scroll", function () { schedule(); }, { passive: true });
    ["f-kind", "f-strategy", "f-venue", "f-window"].forEach(function (id) {
      $(id).addEventListener("change", function () {
        if (id === "f-strategy" || id === "f-venue") pruneNames(id.slice(2));
        filterDirty = true; schedule();
      });
    });
    $("pause").addEventListener("click", function () {
      T.paused = !T.paused;
      pausedAt = eventN;
      this.setAttribute("aria-pressed", String(T.paused));
      this.textContent = T.paused ? "resume" : "pause";
      schedule();
    });
    window.addEventListener("resize", function () { ROW_H = rowHeight(); chartKey = ""; schedule(true); });
    // Frames over the time since the last count, not over the 2 s asked for: a background tab's timers run once a
    // minute (Chromium's throttling), and the frames of that minute over 2 s read "300.0 fps" when the trader came
    // back to a 10 Hz stream.
    var lastCount = 0, countedAt = performance.now();
    setInterval(function () {
      var now = performance.now(), secs = (now - countedAt) / 1000;
      $("rate").textContent = (secs > 0 ? (T.frames - lastCount) / secs : 0).toFixed(1) + " fps";
      lastCount = T.frames; countedAt = now;
      describeCharts();
    }, 2000);
    setInterval(function () {  // ages move without frames; the time window slides
      freshness();
    }, 250);
    setInterval(watchdog, 1000);
    function away() { awayAt = performance.now(); }
    document.addEventListener("visibilitychange", function () { if (document.hidden) away(); else wake("shown"); });
    document.addEventListener("freeze", away);
    document.addEventListener("resume", function () { wake("resumed"); });
    window.addEventListener("pagehide", away);
    window.addEventListener("pageshow", function (e) { if (e.persisted) wake("restored"); });
    window.addEventListener("offline", function () {
      away();
      if (share && !share.holder) return;
      clearTimeout(retryTimer);
      if (es) es.close();
      if (probes) { probes.abort(); probes = null; }
      setStatus("offline", "offline, waiting for the network");
    });
    window.addEventListener("online", function () { wake("online"); });
    setInterval(function () {  // the time window slides: rows that left it go
      if (!T.paused && +$("f-window").value) { filterDirty = true; schedule(); }
    }, 1000);
  }

  // ------------------------------------------------------------------ tabs of this page: one stream for all
  // Over HTTP/1.1 a browser keeps at most 6 connections to a server (scheme, host and port), and a stream holds its
  // connection for good: with a stream per tab, 6 tabs of this page left a 7th page of the same server (this one, or
  // the app it is mounted in) unloaded. So the tabs of this page share one stream. They elect a holder with the Web
  // Locks API (an exclusive lock named after the stream's address, held for the tab's life); the holder alone opens
  // the EventSource and relays every event it gets (frames, events, resets, with their ids, and its status) on a
  // BroadcastChannel; the others (followers) hand what they hear to the same handlers. A follower that joins asks the
  // holder for its whole state (its merged frame, as a full one) and drops deltas until it has it. When the holder
  // goes (tab closed, navigated away) the lock passes to a follower, which opens the stream from the last id it heard
  // (?lastEventId=): the server replays what was missed and sends a full frame, no reset. A follower that hears
  // nothing from the holder for as long as its own watchdog would call a stream stale (a holder frozen by the
  // browser, a hung tab) takes the lock from it (one follower at a time: a second lock); the old holder, if it
  // wakes, finds its lock gone and follows. Without BroadcastChannel, or where Web Locks refuse (a sandboxed frame),
  // each tab streams on its own, and from TABS_WARN tabs of the page over HTTP/1.x the tabs say so under the header
  // (docs/live.md, "Several tabs").
  var TABS_WARN = 4;
  //
  // Without Web Locks (plain HTTP from a name other than localhost: http://trading-host:8000/telemetry/) the tabs
  // elect the holder on the BroadcastChannel itself, which browsers offer in any context. Each tab has a random id
  // and its start time and says "here" each second (the holder's status does it); the holder is the live tab with
  // the oldest start (tie: the lowest id). A follower that has heard no holder for CLAIM_AFTER ms claims the stream
  // if it is the oldest tab it has heard from lately, any follower after twice as long (a short random back-off on
  // top): two holders at once (two tabs claiming together, a hung holder running again) last until one hears the
  // other; the younger one yields (closes its stream, follows) and the others follow the older one, asking it for
  // its whole state; events are kept by id, so none is lost or doubled, and no reset is made. A holder whose page
  // goes (pagehide) says "bye", so the next tab claims at once.
  var CLAIM_AFTER = 3000;
  function shareable() { return typeof BroadcastChannel === "function" && typeof AbortController === "function"; }
  function hasLocks() { return !!navigator.locks && typeof navigator.locks.request === "function"; }
  function senior(a, b) { return a.start < b.start || (a.start === b.start && a.from < b.from); }
  function post(m) {
    m.from = share.me; m.start = share.start; m.holder = share.holder;
    try { share.ch.postMessage(m); } catch (err) { /* the channel is closed: the page is going */ }
  }
  function startShare() {
    share = { me: T.marker, holder: false, holderId: "", ready: false, queue: [], heardAt: 0, wait: null, taking: false,
      name: "tradeobs-live " + new URL("stream", location.href).href,
      byChannel: !hasLocks(), start: performance.timeOrigin + performance.now(), peers: Object.create(null),
      holders: Object.create(null), backoff: 0 };
    T.role = "follower"; T.election = share.byChannel ? "channel" : "locks";
    share.ch = new BroadcastChannel(share.name);
    // Listening before /history is asked for: an event the holder relays meanwhile is kept (a duplicate is dropped).
    share.ch.onmessage = function (e) {
      var m = e.data || {};
      if (!share) return;
      if (share.byChannel) alivePeer(m);
      if (share.ready) heard(m); else share.queue.push(m);
    };
    if (share.byChannel) {
      post({ kind: "here", hello: true });
      window.addEventListener("pagehide", function () { if (share) post({ kind: "bye" }); });
      window.addEventListener("beforeunload", function () { if (share) post({ kind: "bye" }); });
    }
  }
  function alivePeer(m) {                             // channel election: who is alive, and since when
    if (!m.from) return;
    if (m.kind === "bye") { delete share.peers[m.from]; return; }
    share.peers[m.from] = { from: m.from, start: m.start, at: performance.now() };
    if (m.hello) post({ kind: "here" });               // a new tab: tell it who is here (the holder, as holder)
  }
  function oldestHere() {                              // the oldest tab heard from lately: this one?
    var now = performance.now(), me = { from: share.me, start: share.start };
    for (var k in share.peers) {
      var p = share.peers[k];
      if (now - p.at > CLAIM_AFTER) delete share.peers[k];
      else if (senior(p, me)) return false;
    }
    return true;
  }
  T.claimNow = function () { if (share && share.byChannel && !share.holder) becomeHolder(); };  // tests: claims crossing
  function claim() {                                   // channel election, each second and when the holder leaves
    if (!share.ready || share.holder) return;
    var quiet = performance.now() - share.heardAt;
    if (quiet <= CLAIM_AFTER || (!oldestHere() && quiet <= 2 * CLAIM_AFTER + share.backoff)) return;
    if (share.holderId) setStatus("stale", "stale, taking over the stream");
    becomeHolder();
  }
  function joinShare() {
    if (!share) return connect();
    share.ready = true; share.heardAt = performance.now();
    share.queue.splice(0).forEach(heard);
    if (!share.holder) post({ kind: "sync" });
    if (!share.byChannel) return elect(false);
    // The others answered the hello at once: a holder, if any, is known; if none, the oldest claims in a second.
    share.backoff = Math.random() * 1000;
    if (!share.holderId) share.heardAt = performance.now() - CLAIM_AFTER + 1000;
  }
  // Queue for the lock (or, steal: take it from a holder that stopped relaying); the promise settles when this tab
  // has it, or never.
  function elect(steal) {
    var ctl = steal ? null : new AbortController(), granted;
    share.wait = ctl;
    var got = new Promise(function (resolve) { granted = resolve; });
    var opts = steal ? { mode: "exclusive", steal: true } : { mode: "exclusive", signal: ctl.signal };
    navigator.locks.request(share.name, opts, function () {
      if (share.wait === ctl) share.wait = null;
      becomeHolder();
      granted();
      return new Promise(function () { /* held for the tab's life */ });
    }).catch(function (err) {
      if (share.holder) becomeFollower("");               // another tab took the lock: this one stopped relaying
      else if (!err || err.name !== "AbortError") {     // no locks here after all (a sandboxed frame): stream alone
        share.ch.close(); share = null; T.role = "alone"; connect();
      }
    });
    return got;
  }
  function becomeHolder() {
    share.holder = true; share.holderId = share.me; T.role = "holder"; T.holds = (T.holds || 0) + 1;
    post({ kind: "holder" });
    connect();
  }
  function becomeFollower(holderId) {
    share.holder = false; share.holderId = holderId; T.role = "follower"; T.yields = (T.yields || 0) + 1;
    clearTimeout(retryTimer);
    if (es) { es.close(); es = null; }
    if (probes) { probes.abort(); probes = null; }
    share.heardAt = performance.now();
    post({ kind: "sync" });
    if (!share.byChannel) elect(false);
  }
  function heard(m) {
    if (m.kind === "sync") {                           // a follower asks for the whole state
      if (share.holder && T.state) {
        post({ kind: "state", to: m.from, id: T.lastId, s: T.status, text: $("status").textContent,
          data: JSON.stringify(Object.assign({}, T.state, { type: "full" })) });
      }
      return;
    }
    if (m.kind === "wake") { if (share.holder) wake(m.why); return; }
    if (m.kind === "here" || m.kind === "bye") {
      if (m.kind === "bye" && m.from === share.holderId && !share.holder) { share.holderId = ""; share.heardAt = performance.now() - CLAIM_AFTER - 1; claim(); }
      return;
    }
    if (share.byChannel && m.holder && m.from !== share.holderId && (share.holder || share.holderId)) {
      // Two holders: the younger yields; a follower follows the older, and asks it for its whole state.
      if (!senior(m, share.holder ? { from: share.me, start: share.start } : share.holders[share.holderId] || m)) return;
      if (share.holder) { becomeFollower(m.from); return; }
      share.holderId = m.from; post({ kind: "sync" });
    }
    if (share.holder) return;
    if (m.kind === "holder") share.holderId = m.from;
    else if (!share.holderId) share.holderId = m.from;
    else if (m.from !== share.holderId) return;        // a holder that lost its lock and has not noticed yet
    share.heardAt = performance.now();
    if (m.holder) share.holders[m.from] = { from: m.from, start: m.start };
    if (m.kind === "sse" && ON[m.type]) ON[m.type]({ data: m.data, lastEventId: m.id });
    else if (m.kind === "state" && m.to === share.me) { onFrame({ data: m.data, lastEventId: m.id }); setStatus(m.s, m.text); }
    else if (m.kind === "status") setStatus(m.s, m.text);
  }
  function followerWatch() {
    if (share.byChannel) { post({ kind: "here" }); claim(); return; }
    if (!share.ready || share.taking) return;
    if ((performance.now() - Math.max(share.heardAt, aliveAt)) / 1000 <= stallAfter()) return;
    share.taking = true;
    navigator.locks.request(share.name + " takeover", { ifAvailable: true }, function (lock) {
      if (!lock || share.holder) return null;          // another follower is taking over, or this tab holds it now
      setStatus("stale", "stale, taking over the stream");
      if (share.wait) share.wait.abort();
      return elect(true);
    }).catch(function (err) { console.error("tradeobs live: taking over the stream", err); }).then(function () {
      if (share) { share.taking = false; share.heardAt = performance.now(); }
    });
  }

  function countTabs() {
    var nav = performance.getEntriesByType && performance.getEntriesByType("navigation")[0];
    var proto = (nav && nav.nextHopProtocol) || "";
    if (typeof BroadcastChannel !== "function") return;
    var http1 = !proto || /^http\/1/.test(proto);     // over HTTP/2 the tabs share one connection anyway
    var me = Math.random().toString(36).slice(2), others = Object.create(null);
    var ch = new BroadcastChannel("tradeobs-live " + location.pathname);
    function say(kind) { ch.postMessage({ kind: kind, id: me }); }
    function show() {
      var now = Date.now(), n = 1;
      for (var k in others) { if (now - others[k] > 5000) delete others[k]; else n++; }
      T.tabs = n;
      var warn = share || !http1 || n < TABS_WARN ? "" : n + " tabs of this page are open in this browser, " +
        "each on a connection of its own (this browser cannot share one stream between them here): over HTTP/1.1 a " +
        "browser opens at most 6 to a server, and a 7th page of this server will not load. Close some, open the page " +
        "over HTTPS or from localhost, or serve it over HTTP/2 (see `tradeobs docs live`).";
      if ($("tabs-note").textContent !== warn) $("tabs-note").textContent = warn;  // a live region: changes only
    }
    ch.onmessage = function (e) {
      var m = e.data || {};
      if (m.kind === "bye") delete others[m.id];
      else if (m.id) { if (!(m.id in others) && m.kind === "hello") say("here"); others[m.id] = Date.now(); }
      show();
    };
    say("hello");
    setInterval(function () { say("here"); show(); }, 2000);
    window.addEventListener("pagehide", function () { say("bye"); });
    show();
  }

  function getJson(path) {
    return fetch(path, { credentials: "same-origin" }).then(function (r) { return r.ok ? r.json() : null; }).catch(function () { return null; });
  }

  // What the page holds, by count (tests, benchmarks/live_page_day.py): each is bounded by the symbols there are now,
  // MAX_EVENTS events or MAX_CHART symbols charted, whatever has come and gone since the page opened.
  T.sizes = function () {
    return { events: events.length, seen: seen.size, ids: T.eventIds.length, matched: matched.length,
      symbols: symList.length, symSet: symSet.size, lower: lower.size, rings: Object.keys(ring.px).length,
      pnlRings: Object.keys(ring.pnl).length, strategies: names.strategy.size, venues: names.venue.size,
      options: document.querySelectorAll("option").length, charts: document.querySelectorAll(".uplot").length,
      selected: T.selected.length };
  };

  ROW_H = rowHeight();
  setZone("", "");
  loadSelection();
  bind();
  T.role = "alone";
  if (shareable()) startShare();
  countTabs();
  Promise.all([getJson("config"), getJson("history")]).then(function (res) {
    var c = res[0], h = res[1];
    if (c) {
      T.config = c; $("job").textContent = c.job || "";
      if (c.money_decimals >= 0 && c.money_decimals <= 12) MONEY = c.money_decimals | 0;
    }
    // Without live_grafana_url the links' columns (the blotter's "Grafana", the working orders' "trace") stay empty:
    // the page starts with them collapsed and shows them only when there is a Grafana to link to.
    document.body.classList.toggle("no-grafana", !(c && c.grafana_url));
    if (h && h.events) h.events.forEach(function (ev) { addEvent(ev, ev.id); });
    if (h && h.frames && h.frames.length) prefill(h.frames);
    // Resume the stream from where this history ends, so no event falls between the two requests.
    if (h && h.last_id && !T.lastId) T.lastId = h.last_id;
  }).then(joinShare);
})();
