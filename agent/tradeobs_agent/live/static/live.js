// tradeobs live dashboard: EventSource on ./stream, uPlot charts, no build step, no network beyond this server.
(function () {
  "use strict";
  var MAX_POINTS = 600, MAX_ROWS = 200, CHART_SYMBOLS = 6;
  var COLORS = ["#4e9cff", "#ffb84e", "#6fdc8c", "#ff6f91", "#c39bff", "#4ed6d6"];
  // Exposed for tests and debugging; the page object survives reconnects (no reload).
  var T = window.__tradeobs = {
    marker: Math.random().toString(36).slice(2), frames: 0, full: 0, deltas: 0, resets: 0,
    opens: 0, eventIds: [], lastId: "", state: null, status: "offline"
  };
  var $ = function (id) { return document.getElementById(id); };
  var es = null, retryTimer = null, seenEvents = {};
  var charts = {}, series = { t: [], px: {}, pnl: {}, p50: [], p99: [] }, chartSyms = [];

  function setStatus(s) {
    T.status = s;
    var el = $("status"); el.textContent = s; el.className = "status " + s; el.dataset.state = s;
  }

  function connect() {
    clearTimeout(retryTimer);
    // A fresh EventSource cannot set Last-Event-ID, so a manual reconnect passes it in the query.
    var url = "stream" + (T.lastId ? "?lastEventId=" + encodeURIComponent(T.lastId) : "");
    es = new EventSource(url, { withCredentials: true });
    es.onopen = function () { T.opens++; setStatus("connected"); };
    es.onerror = function () {
      if (es.readyState === EventSource.CLOSED) {      // HTTP error (503, 401): the browser gave up, we do not
        setStatus("offline");
        retryTimer = setTimeout(connect, 2000);
      } else {
        setStatus("reconnecting");                      // the browser retries itself, sending Last-Event-ID
      }
    };
    es.addEventListener("frame", onFrame);
    es.addEventListener("event", onEvent);
    es.addEventListener("reset", function () { T.resets++; });
  }

  function onFrame(e) {
    var f = JSON.parse(e.data);
    T.lastId = e.lastEventId || T.lastId;
    if (f.type === "full" || !T.state) { T.state = f; T.full++; }
    else { merge(T.state, f); T.state.ts = f.ts; T.state.seq = f.seq; T.deltas++; }
    T.frames++;
    record(T.state);
  }

  function merge(state, d) {
    var syms = d.symbols || {};
    for (var s in syms) { state.symbols[s] = Object.assign(state.symbols[s] || {}, syms[s]); }
    ["account", "latency", "health", "system"].forEach(function (k) {
      if (d[k]) { state[k] = state[k] || {}; for (var x in d[k]) state[k][x] = d[k][x]; }
    });
  }

  function onEvent(e) {
    T.lastId = e.lastEventId || T.lastId;
    addEvent(JSON.parse(e.data), e.lastEventId);
  }

  function addEvent(ev, id) {
    id = id || ev.id;
    if (seenEvents[id]) return;
    seenEvents[id] = true;
    T.eventIds.push(id);
    var tr = document.createElement("tr");
    tr.className = ev.kind;
    var when = new Date((ev.ts || 0) * 1000).toLocaleTimeString([], { hour12: false });
    var detail = ev.reason || ev.message || ev.order_id || "";
    [when, ev.kind, ev.symbol, ev.side, ev.qty, fmt(ev.price, 4), detail].forEach(function (v) {
      var td = document.createElement("td"); td.textContent = v === undefined || v === null ? "" : v; tr.appendChild(td);
    });
    var body = $("blotter").tBodies[0];
    body.insertBefore(tr, body.firstChild);
    while (body.rows.length > MAX_ROWS) body.deleteRow(-1);
  }

  function push(arr, v) { arr.push(v); if (arr.length > MAX_POINTS) arr.shift(); }

  function record(st) {
    var syms = Object.keys(st.symbols || {}).sort().slice(0, CHART_SYMBOLS);
    if (syms.join() !== chartSyms.join()) { chartSyms = syms; resetCharts(); }
    push(series.t, st.ts);
    syms.forEach(function (s) {
      var r = st.symbols[s] || {};
      push(series.px[s], r.px === undefined ? null : r.px);
      push(series.pnl[s], (r.rpnl || 0) + (r.upnl || 0));
    });
    var lat = (st.latency || {}).submit_to_fill || {};
    push(series.p50, lat.p50 == null ? null : lat.p50 * 1000);
    push(series.p99, lat.p99 == null ? null : lat.p99 * 1000);
    draw();
  }

  function resetCharts() {
    series = { t: [], px: {}, pnl: {}, p50: [], p99: [] };
    chartSyms.forEach(function (s) { series.px[s] = []; series.pnl[s] = []; });
    Object.keys(charts).forEach(function (k) { charts[k].destroy(); });
    charts = {};
    var symSeries = chartSyms.map(function (s, i) { return { label: s, stroke: COLORS[i % COLORS.length] }; });
    charts.price = makeChart("chart-price", symSeries);
    charts.pnl = makeChart("chart-pnl", symSeries);
    charts.latency = makeChart("chart-latency", [{ label: "p50", stroke: "#6fdc8c" }, { label: "p99", stroke: "#ff6f91" }]);
  }

  function makeChart(id, ser) {
    var el = $(id);
    var opts = {
      width: Math.max(300, el.clientWidth || 600), height: 180,
      series: [{}].concat(ser.map(function (s) { return Object.assign({ width: 1.5, spanGaps: true }, s); })),
      axes: [{ stroke: "#9aa4b1", grid: { stroke: "#262c34" } }, { stroke: "#9aa4b1", grid: { stroke: "#262c34" } }],
      legend: { live: false }
    };
    return new uPlot(opts, [[]].concat(ser.map(function () { return []; })), el);
  }

  var pending = false;
  function draw() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(function () {
      pending = false;
      if (!charts.price) return;
      charts.price.setData([series.t].concat(chartSyms.map(function (s) { return series.px[s]; })));
      charts.pnl.setData([series.t].concat(chartSyms.map(function (s) { return series.pnl[s]; })));
      charts.latency.setData([series.t, series.p50, series.p99]);
      tables();
    });
  }

  function prefill(frames) {  // chart points from /history, so the charts do not start empty
    chartSyms = Object.keys(frames[frames.length - 1].px || {}).sort().slice(0, CHART_SYMBOLS);
    resetCharts();
    frames.forEach(function (f) {
      push(series.t, f.ts);
      chartSyms.forEach(function (s) {
        push(series.px[s], f.px[s] === undefined ? null : f.px[s]);
        push(series.pnl[s], f.pnl[s] === undefined ? null : f.pnl[s]);
      });
      push(series.p50, f.p50 == null ? null : f.p50 * 1000);
      push(series.p99, f.p99 == null ? null : f.p99 * 1000);
    });
    draw();
  }

  function fmt(v, d) { return v === undefined || v === null ? "" : (typeof v === "number" ? v.toFixed(d) : v); }

  function tables() {
    var st = T.state; if (!st) return;
    var rows = Object.keys(st.symbols).sort().map(function (s) {
      var r = st.symbols[s];
      return "<tr><td>" + esc(s) + "</td><td>" + fmt(r.px, 2) + "</td><td>" + fmt(r.pos, 0) + "</td><td>" + fmt(r.ntl, 0) +
        "</td><td>" + fmt(r.rpnl, 2) + "</td><td>" + fmt(r.upnl, 2) + "</td><td>" + fmt(r.ord, 0) + "</td><td>" +
        fmt(r.fill, 0) + "</td><td>" + fmt(r.rej, 0) + "</td><td>" + fmt(r.p50 == null ? null : r.p50 * 1000, 2) +
        "</td><td>" + fmt(r.p99 == null ? null : r.p99 * 1000, 2) + "</td></tr>";
    });
    $("positions").tBodies[0].innerHTML = rows.join("");
    var a = st.account || {}, h = st.health || {}, sys = st.system || {};
    var items = [
      ["equity", fmt(a.equity, 2)], ["drawdown", a.drawdown == null ? "" : (a.drawdown * 100).toFixed(2) + " %"],
      ["kill switch", a.kill_switch ? "ENGAGED" : "off", a.kill_switch],
      ["export failures", h.exports_failed, h.exports_failed > 0], ["logs dropped", h.logs_dropped, h.logs_dropped > 0],
      ["items dropped", h.items_dropped, h.items_dropped > 0], ["series overflow", h.series_overflow, h.series_overflow > 0],
      ["live clients", h.clients], ["frames coalesced", h.frames_coalesced], ["clients timed out", h.clients_timed_out],
      ["process CPU", sys.cpu_pct == null ? "" : sys.cpu_pct + " %"], ["process RSS", sys.rss_mb == null ? "" : sys.rss_mb + " MB"]
    ];
    $("health").innerHTML = items.map(function (it) {
      return "<dt>" + it[0] + "</dt><dd" + (it[2] ? " class=bad" : "") + ">" + esc(String(it[1] === undefined ? "" : it[1])) + "</dd>";
    }).join("");
    $("lastid").textContent = "last id " + T.lastId;
  }

  function esc(s) { return s.replace(/[&<>"]/g, function (c) { return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]; }); }

  var lastCount = 0;
  setInterval(function () { $("rate").textContent = ((T.frames - lastCount) / 2).toFixed(1) + " fps"; lastCount = T.frames; }, 2000);

  fetch("history", { credentials: "same-origin" }).then(function (r) { return r.ok ? r.json() : null; }).then(function (h) {
    if (h && h.events) h.events.forEach(function (ev) { addEvent(ev, ev.id); });
    if (h && h.frames && h.frames.length) prefill(h.frames);
    // Resume the stream from where this history ends, so no event falls between the two requests.
    if (h && h.last_id && !T.lastId) T.lastId = h.last_id;
  }).catch(function () {}).then(connect);
})();
