"""Registry.restart (``tradeobs_agent.testing.reset``): what is held stays, what nothing holds goes, with no
garbage collection per restart."""

from __future__ import annotations

import gc
import logging
from typing import Any

import pytest

from tradeobs_agent.metrics import Registry


class _Bot:
    """Like a test's ``TradingTelemetry``: it holds its instruments and, through a bound method, itself (a cycle
    that only a garbage collection frees)."""

    def __init__(self, reg: Registry, **declared: Any) -> None:
        self.fills = reg.counter("bot.fills", **declared).bind(side="buy")
        self.on_fill = self.fill  # self -> bound method -> self

    def fill(self) -> None:
        self.fills.add(1)


def _names(reg: Registry) -> set[str]:
    return {f.name for f in reg.snapshot().families}


@pytest.fixture
def no_auto_gc() -> Any:
    """What an automatic collection would free between two lines cannot make a test pass by chance."""
    was = gc.isenabled()
    gc.disable()
    yield
    if was:
        gc.enable()


def test_a_restart_collects_no_garbage(monkeypatch: pytest.MonkeyPatch) -> None:
    """One full collection per test took a tenth of a second in a test worker that had run a thousand tests: the
    suite took 39 minutes instead of 26."""
    calls: list[object] = []
    monkeypatch.setattr(gc, "collect", lambda *a: calls.append(a) or 0)
    reg = Registry()
    held = reg.counter("bot.orders").bind(side="buy")
    held.add(3)
    _Bot(reg).fill()
    for _ in range(3):
        reg.restart()
        reg.counter("bot.fills")  # declared as before: nothing to check
    assert calls == []
    assert held.value == 0


def test_what_nothing_holds_goes_without_a_collection(no_auto_gc: None) -> None:
    reg = Registry()
    reg.counter("bot.orders").bind(side="buy").add(1)  # held by nothing once this line is done
    reg.restart()
    assert reg.get("bot.orders") is None


def test_an_instrument_only_garbage_holds_shows_nothing_and_a_new_declaration_records_into_it(
    no_auto_gc: None,
) -> None:
    reg = Registry()
    _Bot(reg).fill()
    assert _names(reg) == {"bot.fills"}
    reg.restart()
    assert _names(reg) == set()  # kept (garbage is not told from a holder without a collection) but silent
    bot = _Bot(reg)
    bot.fill()
    bot.fill()
    (fam,) = reg.snapshot().families
    assert [(p.attributes, p.value) for p in fam.points] == [({"side": "buy"}, 2)]


@pytest.mark.parametrize(
    ("first", "then"),
    [
        ({"unit": "{fill}"}, {"unit": "1"}),
        ({"unit": "{fill}"}, {}),
        ({"description": "fills"}, {"description": "fills of the day"}),
        ({"aggregation": "sum"}, {}),
    ],
    ids=["unit", "no-unit", "description", "aggregation"],
)
def test_a_declaration_unlike_what_only_garbage_held_gets_a_new_instrument_as_in_a_new_registry(
    no_auto_gc: None, first: dict[str, Any], then: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """The test before declared ``bot.fills`` one way and left it to garbage; this one declares it another way:
    it gets what a new registry would give it, with no warning and nothing counted as redeclared."""
    reg = Registry()
    _Bot(reg, **first)
    reg.restart()
    with caplog.at_level(logging.WARNING, logger="tradeobs"):
        inst = reg.counter("bot.fills", **then)
    fresh = Registry().counter("bot.fills", **then)
    assert (inst.unit, inst.description, inst.aggregation, inst.declared) == (
        fresh.unit,
        fresh.description,
        fresh.aggregation,
        fresh.declared,
    )
    assert not [r for r in caplog.records if "declared before" in r.getMessage()]
    assert reg.self_metrics.invalid.bind(instrument="bot.fills", reason="redeclared").value == 0


def test_another_kind_or_histogram_bounds_than_garbage_held_is_not_refused(no_auto_gc: None) -> None:
    reg = Registry()
    _Bot(reg)
    reg.histogram("bot.latency", unit="s").bind().record(0.1)
    held_by_garbage = [reg.histogram("bot.latency")]
    held_by_garbage.append(held_by_garbage)  # type: ignore[arg-type]
    del held_by_garbage
    reg.restart()
    assert reg.gauge("bot.fills").kind == "gauge"  # was a counter: ValueError before a collection
    assert reg.histogram("bot.latency", unit="s", bounds=[0.5, 1.0]).bounds == (0.5, 1.0)


def test_a_declaration_unlike_an_instrument_still_held_is_what_it_was_before(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Held by a live module (a test's ``mybot.fills = counter(...)``): the same object stays, and another kind
    is refused and another unit said and counted, as without a restart."""
    reg = Registry()
    fills = reg.counter("mybot.fills", unit="{fill}")
    reg.restart()
    with pytest.raises(ValueError, match="already exists as a counter"):
        reg.gauge("mybot.fills")
    with caplog.at_level(logging.WARNING, logger="tradeobs"):
        assert reg.counter("mybot.fills", unit="1") is fills
    assert fills.unit == "{fill}"
    assert reg.self_metrics.invalid.bind(instrument="mybot.fills", reason="redeclared").value == 1
