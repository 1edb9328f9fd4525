"""The in-process registry: exact values under concurrency, through every real reader; bad input; limits."""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import threading
from bisect import bisect_left
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import tradeobs_agent
from tests._util import otel_points, prom_samples
from tradeobs_agent import metrics
from tradeobs_agent.metrics import OVERFLOW_KEY, Registry
from tradeobs_agent.options import MetricsOptions


def _otel_points(reader: InMemoryMetricReader, name: str) -> list[Any]:
    return otel_points(reader).get(name, [])


_prom_samples = prom_samples


_ids = itertools.count()


def _hammer(work: list[list[Any]], fn: Any) -> None:
    """Run each list of amounts through ``fn`` on its own thread, and also from asyncio tasks on one more."""

    async def tasks(amounts: list[Any]) -> None:
        async def one(chunk: list[Any]) -> None:
            for a in chunk:
                fn(a)
                await asyncio.sleep(0)

        await asyncio.gather(*(one(amounts[i::4]) for i in range(4)))

    threads = [threading.Thread(target=lambda a=a: [fn(x) for x in a]) for a in work[1:]]
    threads.append(threading.Thread(target=lambda: asyncio.run(tasks(work[0]))))
    for t in threads:
        t.start()
    for t in threads:
        t.join()


# Unit increments (the lock-free path) mixed with other amounts (the locked path).
_amounts = st.lists(st.one_of(st.just(1), st.integers(0, 1000), st.floats(0, 1e6).map(lambda f: round(f, 3))))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(work=st.lists(_amounts, min_size=2, max_size=5), repeat=st.integers(1, 300))
def test_counter_exact_under_threads_and_tasks_through_otel_and_prometheus(
    agent_with_readers: tuple[Any, InMemoryMetricReader], work: list[list[Any]], repeat: int
) -> None:
    agent, reader = agent_with_readers
    name = f"test.hammer.c{next(_ids)}"
    bound = tradeobs_agent.counter(name, unit="{event}").bind(symbol="AAPL", side="buy", venue="x")
    work = [w * repeat for w in work]
    _hammer(work, bound.add)
    # math.fsum: the exact sum of the floats; integer-valued inputs are exact either way.
    expected = math.fsum(itertools.chain.from_iterable(work))

    (point,) = _otel_points(reader, name)
    assert point.value == pytest.approx(expected, rel=1e-12, abs=1e-9)
    if all(isinstance(x, int) for x in itertools.chain.from_iterable(work)):
        assert point.value == sum(itertools.chain.from_iterable(work))  # integers: exactly
    samples = _prom_samples(agent.prometheus_url)[name.replace(".", "_") + "_total"]
    (sample,) = [s for s in samples if s.labels.get("symbol") == "AAPL"]
    assert sample.value == pytest.approx(point.value, rel=1e-15)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    work=st.lists(st.lists(st.floats(0, 20, allow_nan=False), max_size=200), min_size=2, max_size=4),
)
def test_histogram_exact_under_threads_and_tasks_through_otel_and_prometheus(
    agent_with_readers: tuple[Any, InMemoryMetricReader], work: list[list[float]]
) -> None:
    agent, reader = agent_with_readers
    name = f"test.hammer.h{next(_ids)}"
    bound = tradeobs_agent.histogram(name, unit="s").bind(symbol="AAPL")
    _hammer(work, bound.record)
    values = list(itertools.chain.from_iterable(work))
    bounds = metrics.DEFAULT_LATENCY_BOUNDS
    expected_counts = [0] * (len(bounds) + 1)
    for v in values:
        expected_counts[bisect_left(bounds, v)] += 1

    (point,) = _otel_points(reader, name)
    assert point.count == len(values)
    assert list(point.bucket_counts) == expected_counts
    assert point.sum == pytest.approx(math.fsum(values), rel=1e-9, abs=1e-9)
    if values:
        assert (point.min, point.max) == (min(values), max(values))
    prom = _prom_samples(agent.prometheus_url)
    base = name.replace(".", "_") + "_seconds"
    (count,) = prom[base + "_count"]
    assert count.value == len(values)
    cumulative = list(itertools.accumulate(expected_counts))
    buckets = prom[base + "_bucket"]
    assert [b.value for b in buckets] == cumulative


def test_exemplar_reaches_the_otel_reader(agent_with_readers: tuple[Any, InMemoryMetricReader]) -> None:
    _, reader = agent_with_readers
    tracer = tradeobs_agent.get_agent().tracer()  # type: ignore[union-attr]
    h = tradeobs_agent.histogram("test.exemplar", unit="s").bind()
    with tracer.start_as_current_span("op") as span:
        h.record(0.002, exemplar=span)
    (point,) = _otel_points(reader, "test.exemplar")
    (ex,) = point.exemplars
    assert ex.trace_id == span.get_span_context().trace_id
    assert ex.value == 0.002


# --------------------------------------------------------------------------- unit behaviour


def test_unit_adds_and_other_amounts_combine_and_reads_do_not_disturb() -> None:
    c = Registry().counter("c").bind()
    for _ in range(5):
        c.add()
        assert c.value == c.value  # reading twice changes nothing
    c.add(2.5)
    c.add(1)
    assert c.value == 8.5
    c.inc()  # the C fast path of add(1)
    c.inc()
    assert c.value == 10.5


def test_updown_counter_goes_down() -> None:
    c = Registry().updown_counter("open").bind()
    c.add(3)
    c.add(-1)
    c.add(1)
    assert c.value == 3


@pytest.mark.parametrize("bad", [-1, -0.5, math.nan, math.inf, -math.inf, "3", None, [1], object()])
def test_bad_counter_amounts_are_dropped_counted_and_warned_once(bad: Any, caplog: pytest.LogCaptureFixture) -> None:
    reg = Registry()
    c = reg.counter("orders").bind()
    c.add(2)
    with caplog.at_level(logging.WARNING, logger="tradeobs"):
        c.add(bad)
        c.add(bad)
    assert c.value == 2
    invalid = reg.self_metrics.invalid.bind(instrument="orders", reason="value")
    assert invalid.value == 2
    assert len([r for r in caplog.records if "orders" in r.getMessage()]) == 1


@pytest.mark.parametrize("bad", [math.nan, math.inf, "1.0", None])
def test_bad_histogram_and_gauge_values_are_dropped(bad: Any) -> None:
    reg = Registry()
    h = reg.histogram("lat", unit="s").bind()
    g = reg.gauge("px").bind()
    h.record(0.1)
    g.set(5)
    h.record(bad)
    g.set(bad)
    assert h.count == 1 and g.value == 5
    assert reg.self_metrics.invalid.bind(instrument="lat", reason="value").value == 1
    assert reg.self_metrics.invalid.bind(instrument="px", reason="value").value == 1


@given(
    values=st.dictionaries(
        st.text(max_size=8),
        st.one_of(st.text(max_size=600), st.integers(), st.floats(), st.booleans(), st.none(), st.lists(st.integers())),
        max_size=5,
    )
)
@example(values={"self": "x", "name": 1})  # an attribute named like bind()'s own parameter: a TypeError before
def test_any_attribute_values_bind_without_raising(values: dict[str, Any]) -> None:
    reg = Registry()
    s = reg.counter("c").bind(**values)
    s.add(1)
    assert s.value == 1
    for k, v in s.attributes.items():
        assert isinstance(k, str)
        assert isinstance(v, str | bool | int | float)
        if isinstance(v, str):
            assert len(v) <= metrics.MAX_ATTR_LEN
        if isinstance(v, float):
            assert math.isfinite(v)


def test_overflow_series_past_the_limit_counted_and_warned_once(caplog: pytest.LogCaptureFixture) -> None:
    reg = Registry(max_series=10)
    c = reg.counter("ticks")
    with caplog.at_level(logging.WARNING, logger="tradeobs"):
        for i in range(25):
            c.bind(symbol=f"S{i}").add(1)
    series = {s.key: s for s in c.series()}
    assert len(series) == 11  # ten real sets + the overflow set
    assert series[OVERFLOW_KEY].value == 15
    assert series[OVERFLOW_KEY].attributes == {"otel.metric.overflow": True}
    assert sum(s.value for s in series.values()) == 25  # nothing lost
    assert reg.self_metrics.metric_overflow.bind(instrument="ticks").value == 15
    assert len([r for r in caplog.records if "'ticks' passed its limit" in r.getMessage()]) == 1


def test_the_first_instrument_past_max_series_is_said_on_the_console_naming_the_setting(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """At 1,000 symbols x 5 strategies x 3 venues 14 trading instruments passed the default 2,000 within seconds,
    and nothing was said where the service was started: the warnings went to logs/system.jsonl only."""
    from tradeobs_agent import _errors

    _errors.set_console_check(lambda: False)  # as with the agent's log pipeline and no console sink
    try:
        reg = Registry(max_series=2)
        for name in ("trading.orders.submitted", "trading.orders.filled"):
            for i in range(3):
                reg.counter(name).bind(symbol=f"S{i}").add(1)
    finally:
        _errors.set_console_check(None)
    lines = [line for line in capsys.readouterr().err.splitlines() if "passed its limit" in line]
    assert len(lines) == 1  # once, for the first instrument; the others are in the log
    assert "'trading.orders.submitted' passed its limit of 2 attribute sets" in lines[0]
    assert "TRADEOBS_MAX_SERIES" in lines[0]


def test_gauges_have_their_own_limit_and_their_overflow_names_it_on_the_console(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A gauge's overflow series keeps only the last value set through it: past ``max_series`` the position and
    P&L of 3,000 of 5,000 symbol x strategy pairs were lost (1,000 symbols x 5 strategies), and the one console line
    named the order counters that overflowed first. Gauges bind up to ``max_gauge_series``; past it the warning
    names that setting and says values are lost, on the console even after a counter's."""
    from tradeobs_agent import _errors

    _errors.set_console_check(lambda: False)
    try:
        reg = Registry(max_series=2, max_gauge_series=4)
        for i in range(3):
            reg.counter("trading.orders.submitted").bind(symbol=f"S{i}").add(1)
        pos = reg.gauge("trading.position.quantity")
        for i in range(6):
            pos.set(float(i), {"symbol": f"S{i}", "strategy": "a"})
    finally:
        _errors.set_console_check(None)
    assert len(reg.counter("trading.orders.submitted").series()) == 3  # 2 + overflow
    values = {s.key: s.value for s in pos.series()}
    assert len(values) == 5 and values[OVERFLOW_KEY] == 5.0  # 4 kept with their values, the last two in one
    assert [v for k, v in values.items() if k != OVERFLOW_KEY] == [0.0, 1.0, 2.0, 3.0]
    lines = [line for line in capsys.readouterr().err.splitlines() if "passed its limit" in line]
    assert len(lines) == 2
    assert "'trading.orders.submitted' passed its limit of 2" in lines[0] and "TRADEOBS_MAX_SERIES" in lines[0]
    assert "'trading.position.quantity' passed its limit of 4" in lines[1]
    assert "TRADEOBS_MAX_GAUGE_SERIES" in lines[1] and "values of those sets are lost" in lines[1]


def test_more_instruments_overflowing_than_max_series_do_not_hang_the_caller() -> None:
    """``tradeobs.agent.metric.overflow`` has a series per instrument that overflowed: with more of them than
    ``max_series`` (TRADEOBS_MAX_SERIES=10 and 14 trading instruments past it at 1,000 symbols), it overflowed
    itself, and the bind that overflowed it waited for its own lock for ever: the trading thread stopped."""
    reg = Registry(max_series=2)
    done = threading.Event()

    def overflow_four() -> None:
        for n in range(4):
            for i in range(5):
                reg.counter(f"c{n}").bind(symbol=f"S{i}").add(1)
        done.set()

    threading.Thread(target=overflow_four, daemon=True).start()
    assert done.wait(60), "a bind that overflowed the overflow counter never returned"
    counts = {s.key: s.value for s in reg.self_metrics.metric_overflow.series()}
    assert sum(counts.values()) == 4 * 3  # every bind past the limit counted: 2 instruments by name, 2 in overflow
    assert counts[OVERFLOW_KEY] == 2 * 3
    assert all(sum(s.value for s in reg.counter(f"c{n}").series()) == 5 for n in range(4))


def test_the_symbol_allowlist_is_a_trading_rule_not_a_registry_one() -> None:
    """Generic instruments keep a ``symbol`` attribute as given; the allowlist applies to trading instruments."""
    tradeobs_agent.init(
        otlp=False, prometheus=False, logs=False, live=False, metrics=MetricsOptions(symbol_allowlist=["AAPL"])
    )
    c = tradeobs_agent.counter("myapp.ticks")
    c.bind(symbol="AAPL").add(1)
    c.bind(symbol="GME").add(1)
    assert {s.attributes["symbol"]: s.value for s in c.series()} == {"AAPL": 1, "GME": 1}


def test_bad_unit_is_dropped_and_counted() -> None:
    reg = Registry()
    c = reg.counter("weird", unit="µs" * 40)
    assert c.unit == ""
    assert reg.self_metrics.invalid.bind(instrument="weird", reason="unit").value == 1


@given(st.lists(st.floats(0, 10), min_size=1, max_size=200), st.floats(0.01, 0.99))
def test_quantile_lies_within_the_observed_range(values: list[float], q: float) -> None:
    h = Registry().histogram("lat", unit="s").bind()
    for v in values:
        h.record(v)
    est = h.quantile(q)
    assert est is not None
    assert min(values) <= est <= max(values)


@settings(max_examples=50, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.floats(0, 10)), max_size=40), st.integers(1, 6))
def test_a_snapshot_that_reuses_unchanged_histogram_points_equals_a_fresh_one(
    records: list[tuple[int, float]], every: int
) -> None:
    """The live stream's snapshot (``reuse``) reads the same values as a full copy, tick after tick, and copies
    only the series that changed."""
    reg = Registry()
    h = reg.histogram("lat", unit="s")
    reuse: dict[str, dict[Any, Any]] = {}
    for i, (sym, v) in enumerate(records):
        h.bind(symbol=f"S{sym}").record(v)
        if i % every == 0:
            before = {k: id(p) for k, p in reuse.get("lat", {}).items()}
            got = reg.snapshot(["lat"], prepare=False, reuse=reuse).histogram("lat")
            want = reg.snapshot(["lat"], prepare=False).histogram("lat")
            assert got is not None and want is not None and got.points == want.points
            changed = {p.key for p in got.points if id(p) != before.get(p.key)}
            assert changed <= {
                tuple(sorted({"symbol": f"S{s}"}.items())) for s, _ in records[max(0, i - every + 1) : i + 1]
            }


def test_an_unset_gauge_series_has_no_point_anywhere_until_it_is_set_again() -> None:
    """``BoundGauge.unset()``: a value that stopped meaning anything (a flat position's average entry price) is not
    kept as the last number (NaN would be bad input, and a lie at the endpoint). The series has no point in a
    snapshot, no sample at the Prometheus endpoint (read from the instruments or from a snapshot), no point in an
    OTLP export (the OTel objects and the agent's own encoder), as before its first set; set again, it is back.
    Another series of the instrument is untouched."""
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
    from opentelemetry.sdk.metrics.export import MetricsData, ResourceMetrics, ScopeMetrics
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope

    from tradeobs_agent._internal.bridge import collect, collect_encoded
    from tradeobs_agent._internal.otlp_encode import encode_metrics
    from tradeobs_agent._internal.prometheus import Renderer

    reg = Registry()
    avg = reg.gauge("trading.position.avg_price", "{price}")
    x, y = avg.bind(symbol="X"), avg.bind(symbol="Y")
    x.set(99.0)
    y.set(50.0)

    def everywhere() -> list[dict[str, float]]:
        snap = {str(p.attributes["symbol"]): float(p.value) for p in reg.snapshot().numbers(avg.name)}
        views = [snap]
        for text in (Renderer(reg).render(), Renderer(reg).render(snapshot=reg.snapshot())):
            lines = [ln for ln in text.decode().splitlines() if ln.startswith("trading_position_avg_price{")]
            views.append({ln.split('"')[1]: float(ln.rsplit(" ", 1)[1]) for ln in lines})
        otel = [m for m in collect(reg) if m.name == avg.name]
        views.append({str(p.attributes["symbol"]): float(p.value) for m in otel for p in m.data.data_points})
        scope = ScopeMetrics(InstrumentationScope("tradeobs"), collect_encoded(reg), "")
        raw = encode_metrics(MetricsData([ResourceMetrics(Resource({}), [scope], "")]))
        pb = ExportMetricsServiceRequest.FromString(raw).resource_metrics[0].scope_metrics[0].metrics
        views.append(
            {
                p.attributes[0].value.string_value: p.as_double
                for m in pb
                if m.name == avg.name
                for p in m.gauge.data_points
            }
        )
        return views

    assert everywhere() == [{"X": 99.0, "Y": 50.0}] * 5
    x.unset()
    assert x.value is None and not x.point()
    assert everywhere() == [{"Y": 50.0}] * 5
    x.unset()  # again: nothing more to take away
    avg.unset({"symbol": "Y"})  # the instrument's own call, as set()
    assert everywhere() == [{}] * 5
    assert "trading_position_avg_price" not in Renderer(reg).render().decode()  # no family left without a sample
    x.set(101.0)  # the position opened again
    assert everywhere() == [{"X": 101.0}] * 5
    assert avg.unsets == 2  # what a reader laying series out by place watches (metrics.wire)
    assert reg.self_metrics.invalid.bind(instrument=avg.name, reason="value").value == 0


# --------------------------------------------------------------------------- prometheus_client's names


@pytest.mark.parametrize(
    ("kind", "bound", "name", "says"),
    [
        ("counter", False, "labels", "use bind(**labels)"),
        ("counter", False, "inc", "use add(amount)"),
        ("counter", False, "dec", "a counter only goes up; for a count that goes down use updown_counter(name)"),
        ("counter", True, "dec", "use add(-amount) (an updown_counter's series; a counter only goes up)"),
        ("updown_counter", False, "dec", "use add(-amount)"),
        ("updown_counter", True, "dec", "use add(-amount)"),
        ("gauge", False, "labels", "then set() on the series it returns"),
        ("gauge", True, "inc", "a gauge holds the last value set: use set(value)"),
        ("histogram", False, "observe", "use record(value)"),
        ("histogram", True, "observe", "use record(value)"),
        ("histogram", False, "time", "use tradeobs_agent.timed(name)"),
    ],
)
def test_prometheus_client_names_say_which_call_to_use(kind: str, bound: bool, name: str, says: str) -> None:
    # c.labels(symbol="AAPL") was "'Counter' object has no attribute 'labels'", and nothing more
    instrument = getattr(Registry(), kind)("app.thing")
    obj = instrument.bind() if bound else instrument
    with pytest.raises(AttributeError) as exc:
        getattr(obj, name)
    assert str(exc.value).startswith(f"{type(obj).__name__!r} object has no attribute {name!r} (prometheus_client's ")
    assert says in str(exc.value)
    assert (exc.value.name, exc.value.obj) == (name, obj)
    assert not hasattr(obj, name)
    assert getattr(obj, name, None) is None


def test_other_missing_attributes_are_plain_attribute_errors() -> None:
    counter = Registry().counter("app.thing")
    for obj in (counter, counter.bind(side="buy")):
        with pytest.raises(AttributeError) as exc:
            getattr(obj, "lables")  # noqa: B009  (obj.lables stays a type error: __getattr__ is hidden from mypy)
        assert str(exc.value) == f"{type(obj).__name__!r} object has no attribute 'lables'"
    assert counter.bind().inc() == 0  # the bound counter's own inc (add(1)) is untouched
    assert counter.bind().value == 1


def test_a_bound_counters_inc_adds_one_and_is_typed_as_returning_nothing_to_use() -> None:
    """``inc()`` returns ``itertools.count``'s position, which reads of ``value`` advance too: after 5 incs and a
    read, the next inc returned 6 with the value at 6, and 151 after 150 incs and a read. A newcomer who used it as
    the count (``n: int = ticks.inc()``, which mypy accepted) got numbers that skip at every scrape. It is typed
    ``object`` now, so mypy refuses that, and the docs say to read ``value``."""
    from typing import get_type_hints

    from tradeobs_agent.metrics._series import BoundCounter

    assert get_type_hints(BoundCounter)["inc"] == Callable[[], object]
    bound = Registry().counter("newuser.ticks").bind(feed="iex")
    for _ in range(5):
        bound.inc()
    assert bound.value == 5
    bound.inc()
    assert bound.value == 6


def test_a_second_declaration_with_another_unit_or_bounds_is_said_and_counted_not_silently_ignored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``histogram("bot.lat", unit="s")`` then ``histogram("bot.lat", unit="ms", bounds=[1, 5, 10])`` (a module's
    second declaration, a notebook cell edited and re-run): the second returned the first instrument and its unit and
    buckets went nowhere, without a word. The first still wins (its series exist); the second is said once and
    counted."""
    reg = Registry()
    first = reg.histogram("newuser.lat", unit="s")
    with caplog.at_level(logging.WARNING, logger="tradeobs"):
        again = reg.histogram("newuser.lat", unit="ms", bounds=[1, 5, 10])
        reg.histogram("newuser.lat", unit="ms", bounds=[1, 5, 10])
        reg.histogram("newuser.lat")  # no unit, no bounds: asks for nothing
        reg.histogram("newuser.lat", unit="s", bounds=list(first.bounds))  # the same: nothing to say
        reg.counter("newuser.fills", unit="{fill}")
        reg.counter("newuser.fills", unit="1")
    assert again is first and first.unit == "s"
    said = [r.getMessage() for r in caplog.records if "declared before" in r.getMessage()]
    assert len(said) == 2, said
    assert "'newuser.lat'" in said[0] and "unit 'ms' (it has 's')" in said[0] and "bounds [1, 5, 10]" in said[0]
    assert "unit '1' (it has '{fill}')" in said[1], said[1]
    assert reg.self_metrics.invalid.bind(instrument="newuser.lat", reason="redeclared").value == 2
    assert reg.self_metrics.invalid.bind(instrument="newuser.fills", reason="redeclared").value == 1
