"""_internal/prometheus: names as the OTel exporter gives them, and an exposition valid to independent parsers."""

from __future__ import annotations

import math
import shutil
import subprocess
import urllib.request
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_text

import tradeobs_agent
from tradeobs_agent import PrometheusOptions
from tradeobs_agent._internal.prometheus import PrometheusCollector, Renderer, client_families, prometheus_name
from tradeobs_agent.metrics import Registry

from ..conftest import PointsAlive

ATTRS: dict[str, Any] = {"venue:id": "v", "1x": "y", "flag": True, "n": 3, "f": 1.5, "symbol": 'we"ird\\na\nme'}
UNITS = ["", "1", "s", "ms", "us", "m", "W", "TiBy", "By", "By/w", "By/s", "m/s", "1/s", "{order}", "%", "Cel", "foo"]
NAMES = ["trading.orders.submitted", "a.b__c-d", "requests.total", "requests_total", "odd-name/x", "n"]
KINDS = ["counter", "updowncounter", "gauge", "histogram"]


def _exporter_text(name: str, unit: str, kind: str, attrs: dict[str, Any]) -> str:
    """What ``opentelemetry-exporter-prometheus``, configured as the agent configures it, serves for one point."""
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.sdk.metrics import MeterProvider

    reg = CollectorRegistry(auto_describe=False)
    reader = PrometheusMetricReader(registry=reg, disable_target_info=True, scope_info_enabled=False)
    provider = MeterProvider(metric_readers=[reader])
    try:
        meter = provider.get_meter("t")
        if kind == "counter":
            meter.create_counter(name, unit=unit).add(2, attrs)
        elif kind == "updowncounter":
            meter.create_up_down_counter(name, unit=unit).add(-2, attrs)
        elif kind == "gauge":
            meter.create_gauge(name, unit=unit).set(2.5, attrs)
        else:
            meter.create_histogram(name, unit=unit, explicit_bucket_boundaries_advisory=[1.0, 5.0]).record(2, attrs)
        return generate_latest(reg).decode()
    finally:
        provider.shutdown()


def _ours_text(name: str, unit: str, kind: str, attrs: dict[str, Any]) -> str:
    reg = Registry()
    if kind == "counter":
        reg.counter(name, unit).add(2, attrs)
    elif kind == "updowncounter":
        reg.updown_counter(name, unit).add(-2, attrs)
    elif kind == "gauge":
        reg.gauge(name, unit).set(2.5, attrs)
    else:
        reg.histogram(name, unit, bounds=[1.0, 5.0]).record(2, attrs)
    return Renderer(reg).render().decode()


def _shape(text: str) -> dict[str, tuple[str, list[tuple[str, tuple[str, ...], float]]]]:
    """Family name -> (type, [(sample name, sorted label items, value)]): what a scraper sees, HELP aside."""
    out = {}
    for fam in parse_text(text):
        out[fam.name] = (fam.type, sorted((s.name, tuple(sorted(s.labels.items())), s.value) for s in fam.samples))
    return out


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("unit", UNITS)
def test_names_units_and_labels_match_the_otel_exporter(unit: str, kind: str) -> None:
    for name in NAMES:
        ours, theirs = _shape(_ours_text(name, unit, kind, ATTRS)), _shape(_exporter_text(name, unit, kind, ATTRS))
        assert ours == theirs, (name, unit, kind)


@settings(max_examples=60, deadline=None)
@given(
    name=st.from_regex(r"\A[A-Za-z][A-Za-z0-9_./\-]{0,20}\Z"),
    unit=st.sampled_from(UNITS),
    kind=st.sampled_from(KINDS),
    key=st.from_regex(r"\A[A-Za-z0-9_.:\-]{1,12}\Z"),
)
def test_any_name_and_label_key_matches_the_otel_exporter(name: str, unit: str, kind: str, key: str) -> None:
    attrs = {key: "v"}
    assert _shape(_ours_text(name, unit, kind, attrs)) == _shape(_exporter_text(name, unit, kind, attrs))


@pytest.mark.parametrize(
    ("name", "unit", "kind", "expected"),
    [
        ("trading.order.submit_to_fill.latency", "s", "histogram", "trading_order_submit_to_fill_latency_seconds"),
        ("trading.orders.submitted", "{order}", "counter", "trading_orders_submitted"),
        ("trading.drawdown", "{ratio}", "gauge", "trading_drawdown"),
        ("trading.order.fill_ratio", "1", "histogram", "trading_order_fill_ratio"),
        ("rate", "By/s", "gauge", "rate_bytes_per_second"),
        ("requests.total", "", "counter", "requests"),
    ],
)
def test_trading_names(name: str, unit: str, kind: Any, expected: str) -> None:
    assert prometheus_name(name, unit, kind) == expected


# --------------------------------------------------------------------------- the endpoint, valid to the letter


def _scrape(url: str, openmetrics: bool = False) -> str:
    headers = {"Accept": "application/openmetrics-text; version=1.0.0"} if openmetrics else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as resp:
        return str(resp.read().decode())


@pytest.fixture
def busy_agent() -> Any:
    """An agent whose endpoint serves every kind: trading telemetry (signed slippage, exemplars), self-metrics,
    the live hub's counters, a user histogram that recorded a negative value, and an SDK instrument."""
    from tradeobs_agent.live import create_app

    agent = tradeobs_agent.init(
        service_name="prom-test", otlp=False, logs=False, prometheus=PrometheusOptions(host="127.0.0.1", port=0)
    )
    create_app()  # the live hub's own counters
    tt = tradeobs_agent.TradingTelemetry(strategy="s", venue="v")
    for i, (side, px) in enumerate([("buy", 101.0), ("sell", 101.0), ("buy", 99.0)]):
        o = tt.order_signal(f"o{i}", "AAPL", side, 10, price=100.0)
        o.submitted()
        o.acked("v")
        o.fill(10, px)
    o = tt.order_signal("o-rej", "AAPL", "buy", 10, price=100.0)
    o.risk_check(passed=False, reason="limit")
    tt.tick("AAPL", 100.0, exchange_ts=None, seq=1)
    tt.position("AAPL", 10, 100.0)
    tt.account(1_000.0)
    tt.kill_switch(False)
    tradeobs_agent.histogram("myapp.pnl.change", unit="{USD}", bounds=[0, 10]).record(-5)
    agent.meter_provider.get_meter("sdk").create_counter("sdk.requests", description="SDK instrument").add(1)
    # A library's instrument made without a description: the SDK exporter's part gave it an empty HELP, which
    # promtool check metrics refused ("no help text") while the docs say every family has HELP text.
    agent.meter_provider.get_meter("sdk").create_histogram("sdk.undocumented", unit="s").record(0.2)
    yield agent
    tt.close()


def test_openmetrics_scrape_parses_with_the_spec_following_parser(busy_agent: Any) -> None:
    om = _scrape(busy_agent.prometheus_url, openmetrics=True)
    families = {f.name: f for f in parse_om(om)}  # raises on anything the OpenMetrics 1.0 spec forbids
    slip = families["trading_order_slippage"]
    assert slip.type == "histogram"
    names = {s.name for s in slip.samples}
    assert "trading_order_slippage_sum" not in names and "trading_order_slippage_count" not in names  # signed
    inf = [s for s in slip.samples if s.name == "trading_order_slippage_bucket" and s.labels["le"] == "+Inf"]
    assert sum(s.value for s in inf) == 3  # every fill is still counted
    assert any(s.exemplar is not None for s in families["trading_order_submit_to_fill_latency_seconds"].samples)
    assert "myapp_pnl_change_sum" not in {s.name for s in families["myapp_pnl_change"].samples}
    assert families["trading_order_submit_to_fill_latency_seconds"].unit == "seconds"
    assert "sdk_requests" in families


def test_every_family_has_help_text(busy_agent: Any) -> None:
    for openmetrics in (False, True):
        text = _scrape(busy_agent.prometheus_url, openmetrics=openmetrics)
        parse = parse_om if openmetrics else parse_text
        for fam in parse(text):
            assert fam.documentation.strip(), f"{fam.name} has no HELP text"
            if fam.name.startswith(("tradeobs_", "trading_")):
                assert fam.documentation != fam.name.replace("_", "."), f"{fam.name}: HELP is only its name"


def test_text_format_passes_promtool(busy_agent: Any, tmp_path: Any) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool (Debian package prometheus) is installed by scripts/install.d/20-apt.sh"
    text = _scrape(busy_agent.prometheus_url)
    proc = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_our_renderer_and_prometheus_clients_exposition_agree(busy_agent: Any) -> None:
    """The same snapshot through prometheus_client's own exposition code gives the same samples."""
    snap = busy_agent.registry.snapshot()

    class Frozen:
        def collect(self) -> Any:
            return client_families(snap)

    reg = CollectorRegistry(auto_describe=False)
    reg.register(Frozen())
    ours = Renderer(busy_agent.registry)
    for openmetrics, generate, parse in ((False, generate_latest, parse_text), (True, generate_openmetrics, parse_om)):
        reference = {f.name: f for f in parse(generate(reg).decode())}
        rendered = {f.name: f for f in parse(ours.render(openmetrics=openmetrics, snapshot=snap).decode())}
        assert rendered.keys() == reference.keys()
        for name, fam in rendered.items():
            ref = reference[name]
            assert (fam.type, fam.documentation) == (ref.type, ref.documentation), name
            got = sorted((s.name, sorted(s.labels.items()), s.value, s.exemplar) for s in fam.samples)
            want = sorted((s.name, sorted(s.labels.items()), s.value, s.exemplar) for s in ref.samples)
            assert got == want, name


def test_endpoint_serves_target_info_values_and_exemplars() -> None:
    agent = tradeobs_agent.init(
        service_name="prom-test", otlp=False, live=False, logs=False, prometheus=PrometheusOptions(port=0)
    )
    assert agent.prometheus_url
    hist = tradeobs_agent.histogram("trading.order.submit_to_fill.latency", unit="s").bind(symbol="AAPL")
    with agent.tracer().start_as_current_span("order") as span:
        hist.record(0.003, exemplar=span)
        trace_id = format(span.get_span_context().trace_id, "032x")
    tradeobs_agent.gauge("trading.drawdown", unit="{ratio}").set(0.05)
    tradeobs_agent.counter("flag.events").bind(ok=True).add(2)

    text = _scrape(agent.prometheus_url)
    assert "target_info{" in text and 'service_name="prom-test"' in text
    assert 'trading_order_submit_to_fill_latency_seconds_bucket{symbol="AAPL",le="0.0025"} 0' in text
    assert 'trading_order_submit_to_fill_latency_seconds_bucket{symbol="AAPL",le="0.005"} 1' in text
    assert 'trading_order_submit_to_fill_latency_seconds_bucket{symbol="AAPL",le="+Inf"} 1' in text
    assert 'trading_order_submit_to_fill_latency_seconds_count{symbol="AAPL"} 1' in text
    assert 'trading_order_submit_to_fill_latency_seconds_sum{symbol="AAPL"} 0.003' in text
    assert "trading_drawdown 0.05" in text
    assert 'flag_events_total{ok="true"} 2.0' in text

    om = _scrape(agent.prometheus_url, openmetrics=True)
    bucket = next(
        ln
        for ln in om.splitlines()
        if ln.startswith("trading_order_submit_to_fill_latency_seconds_bucket{") and 'le="0.005"' in ln
    )
    assert f'trace_id="{trace_id}"' in bucket and "# {" in bucket
    assert om.rstrip().endswith("# EOF") and om.count("# EOF") == 1


def test_prometheus_collector_serves_the_registry_through_prometheus_client() -> None:
    reg = Registry()
    reg.counter("orders", "{order}", "Orders").add(3, {"side": "buy"})
    cr = CollectorRegistry(auto_describe=False)
    cr.register(PrometheusCollector(reg))
    assert 'orders_total{side="buy"} 3.0' in generate_latest(cr).decode()


def test_prometheus_collector_keeps_each_series_labels_when_series_differ_in_label_names() -> None:
    """One instrument, series with different attribute keys (``side`` on one, ``venue`` on another): through
    PrometheusCollector, every series got the first one's label names, ``{venue="XNAS"}`` served as
    ``{side="XNAS"}`` and ``{side="sell",venue="ARCA"}`` as ``{side="sell"}``. Now as the embedded endpoint."""
    reg = Registry()
    c = reg.counter("orders", "{order}", "Orders")
    c.add(1, {"side": "buy"})
    c.add(2, {"venue": "XNAS"})
    c.add(3, {"side": "sell", "venue": "ARCA"})
    c.add(4)
    h = reg.histogram("lat", "s", "Latency", bounds=[1.0])
    h.record(0.5, {"side": "buy"})
    h.record(2.0, {"venue": "XNAS"})
    cr = CollectorRegistry(auto_describe=False)
    cr.register(PrometheusCollector(reg))

    def samples(text: str) -> set[tuple[str, tuple[tuple[str, str], ...], float]]:
        return {(s.name, tuple(sorted(s.labels.items())), s.value) for f in parse_text(text) for s in f.samples}

    got = samples(generate_latest(cr).decode())
    assert ("orders_total", (("venue", "XNAS"),), 2.0) in got
    assert ("orders_total", (("side", "sell"), ("venue", "ARCA")), 3.0) in got
    assert ("orders_total", (), 4.0) in got
    assert ("lat_seconds_count", (("venue", "XNAS"),), 1.0) in got
    assert got == samples(Renderer(reg).render().decode())


def test_attribute_named_le_on_a_histogram_keeps_the_family_valid() -> None:
    reg = Registry()
    reg.histogram("h", bounds=[1.0]).record(0.5, {"le": "x"})
    text = Renderer(reg).render(openmetrics=True).decode()
    fams = {f.name: f for f in parse_om(text)}
    assert {s.labels.get("attr_le") for s in fams["h"].samples} == {"x"}


def test_attribute_keys_that_map_to_one_label_keep_every_value_joined_as_the_otel_spec_says() -> None:
    """``a.b`` and ``a_b`` (or ``a-b``) on one instrument are both the label ``a_b``: the endpoint kept the last
    value and dropped the other silently. The OTel spec (Prometheus and OpenMetrics compatibility, Metric
    Attributes): the values MUST be concatenated, separated by ``;``, in the lexicographical order of the original
    keys. The same for an attribute named ``le`` on a histogram (``attr_le``) beside one named ``attr_le``."""
    agent = tradeobs_agent.init(
        service_name="prom-clash", otlp=False, logs=False, live=False, prometheus=PrometheusOptions(port=0)
    )
    c = tradeobs_agent.counter("clash.orders")
    c.add(1, {"a_b": "y", "a.b": "x"})
    c.add(2, {"a.b": "w", "a-b": "z"})
    c.add(3, {"a-b": "p", "a.b": "q", "a_b": "r"})
    tradeobs_agent.histogram("clash.latency", "s", bounds=[1.0]).record(0.5, {"le": "L", "attr_le": "M"})
    want = {
        ("clash_orders_total", (("a_b", "x;y"),), 1.0),  # "a.b" < "a_b"
        ("clash_orders_total", (("a_b", "z;w"),), 2.0),  # "a-b" < "a.b"
        ("clash_orders_total", (("a_b", "p;q;r"),), 3.0),
    }
    cr = CollectorRegistry(auto_describe=False)
    cr.register(PrometheusCollector(agent.registry))
    texts = {
        "text": (_scrape(agent.prometheus_url), parse_text),
        "openmetrics": (_scrape(agent.prometheus_url, openmetrics=True), parse_om),
        "prometheus_client": (generate_latest(cr).decode(), parse_text),
    }
    for what, (text, parse) in texts.items():
        fams = {f.name: f for f in parse(text)}
        got = {(s.name, tuple(sorted(s.labels.items())), s.value) for s in fams["clash_orders"].samples}
        assert got == want, (what, got)
        hist = fams["clash_latency_seconds"].samples
        assert {s.labels["attr_le"] for s in hist} == {"M;L"}, (what, hist)  # "attr_le" < "le"
    proc = subprocess.run(
        [shutil.which("promtool") or "promtool", "check", "metrics"],
        input=texts["text"][0],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_non_finite_values_render_as_the_formats_spell_them() -> None:
    reg = Registry()
    reg.updown_counter("u").add(-3)
    g = reg.gauge("g")
    g.set(1.0)
    text = Renderer(reg).render().decode()
    samples = {s.name: s.value for f in parse_text(text) for s in f.samples}
    assert samples["u"] == -3 and samples["g"] == 1.0
    assert not math.isnan(samples["g"])


def _every_kind(reg: Registry, symbols: int) -> None:
    """Counters, an up-down counter gone negative, gauges set and never set, histograms with exemplars, with
    buckets below zero and with a negative value: every rule of both formats."""
    from opentelemetry.trace import SpanContext, TraceFlags

    ctx = SpanContext(0x1F, 0x2F, is_remote=False, trace_flags=TraceFlags(1))
    reg.gauge("never.set", unit="s").bind(symbol="X")
    for i in range(symbols):
        attrs = {"symbol": f"S{i:04d}", "side": "buy"}
        reg.counter("orders", "{order}", "Orders").add(i + 1, attrs)
        reg.updown_counter("open", "{order}").add(-i, attrs)
        if i % 2:
            reg.gauge("position", "{share}").set(i * 1.5, attrs)
        else:
            reg.gauge("position", "{share}").bind(**attrs)
        reg.histogram("latency", unit="s").record(0.001 * (i % 7), attrs, exemplar=ctx)
        reg.histogram("slippage", unit="USD", bounds=[-1.0, 0.0, 1.0]).record(0.5 - i % 3, attrs)
        reg.histogram("pnl.change", unit="USD").record(-1.0 if i % 5 == 0 else 2.0, attrs)


@pytest.mark.parametrize("openmetrics", [False, True])
def test_a_scrape_read_from_the_instruments_equals_one_from_a_snapshot(openmetrics: bool) -> None:
    """The endpoint writes each instrument's points as they are read (no snapshot); it must write what the
    snapshot's families give, line for line, in pieces that join to the same body."""
    reg = Registry()
    _every_kind(reg, 300)
    r = Renderer(reg)
    chunks = r.render_chunks(openmetrics=openmetrics)
    assert len(chunks) > 3  # past _CHUNK_LINES lines: encoded a piece at a time
    direct = b"".join(chunks)
    assert direct == r.render(openmetrics=openmetrics, snapshot=reg.snapshot())
    assert direct == r.render(openmetrics=openmetrics)
    text = direct.decode()
    assert "never_set" not in text  # a family whose gauges were never set is not written, as in a snapshot
    if openmetrics:
        assert text.endswith("# EOF\n") and text.count("# EOF") == 1
        assert {f.name for f in parse_om(text)} >= {"orders", "open", "position", "latency_seconds"}
        assert b"".join(r.render_chunks(openmetrics=True, eof=False)).count(b"# EOF") == 0
    else:
        assert {f.name for f in parse_text(text)} >= {"orders", "open", "position", "latency_seconds"}


def test_a_scrape_keeps_one_point_alive_at_a_time(points_alive: PointsAlive) -> None:
    """At 1,000 symbols a whole family's points outlive the garbage collections their allocation sets off and
    are promoted to the oldest generation, whose full collections hold the GIL for tens of ms. The endpoint
    makes each point, writes it and drops it."""
    reg = Registry()
    counter = reg.counter("orders")
    for i in range(2_000):
        counter.add(1, {"symbol": f"S{i:04d}"})
    text = Renderer(reg).render().decode()
    assert text.count("orders_total{") == 2_000
    assert points_alive.most <= 2, f"{points_alive.most} points alive at once"
    assert points_alive.now == 0


@pytest.mark.parametrize("openmetrics", [False, True])
def test_endpoint_gzip_and_length(openmetrics: bool) -> None:
    """The body goes out in pieces: with or without gzip, its Content-Length is what arrives, and it decodes to
    the same exposition (one # EOF in OpenMetrics, after the SDK instruments' part)."""
    import gzip

    agent = tradeobs_agent.init(
        service_name="prom-gzip", otlp=False, live=False, logs=False, prometheus=PrometheusOptions(port=0)
    )
    assert agent.prometheus_url
    _every_kind(tradeobs_agent.metrics.get_registry(), 200)
    accept = {"Accept": "application/openmetrics-text; version=1.0.0"} if openmetrics else {}
    bodies = []
    for enc in ("identity", "gzip"):
        req = urllib.request.Request(agent.prometheus_url, headers={**accept, "Accept-Encoding": enc})
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw = resp.read()
            assert int(resp.headers["Content-Length"]) == len(raw)
            assert (resp.headers.get("Content-Encoding") == "gzip") == (enc == "gzip")
            bodies.append(gzip.decompress(raw) if enc == "gzip" else raw)
    for body in bodies:
        text = body.decode()
        fams = {f.name for f in (parse_om(text) if openmetrics else parse_text(text))}
        assert {"orders", "latency_seconds"} <= fams and ("target" if openmetrics else "target_info") in fams
        if openmetrics:
            assert text.endswith("# EOF\n") and text.count("# EOF") == 1
