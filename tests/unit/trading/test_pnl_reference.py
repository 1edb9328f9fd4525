"""A risk manager's books against what tradeobs shows: positions, exposure and P&L, on every reader.

tradeobs computes no position or P&L from fills: the bot reports them (``tt.position``, ``tt.pnl``; docs/metrics.md,
"Positions and P&L"). What tradeobs computes is the notional (qty x mark), gross and net exposure, the live view's
desk totals, and what the symbol allowlist folds into ``other``. So the bot here books its fills with an independent
average-cost model written plainly below (exact: ``Fraction`` from ``Decimal`` prices, fees in the quote currency
taken off realized P&L), reports what the docs say to report, and every figure tradeobs then shows (the in-memory
OTel reader, the embedded Prometheus endpoint, the live view's ``/snapshot``, the series' own values) is compared
with the books.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

import orjson
import pytest

from tests._util import prom_samples
from tests.unit.live.test_app import Server
from tradeobs_agent import MetricsOptions, PrometheusOptions, events, live, trading
from tradeobs_agent.testing import Capture, capture
from tradeobs_agent.testing import reset as testing_reset
from tradeobs_agent.trading import contracts


@dataclass
class Book:
    """One symbol of one strategy, average cost: buys and sells on the same side add at their weighted average
    price; a fill against the position realizes (fill - average) on the closed quantity; a fill through zero opens
    the rest at its own price; flat has no average. Fees are paid in the quote currency, off realized P&L."""

    qty: Fraction = Fraction(0)
    avg: Fraction | None = None
    realized: Fraction = Fraction(0)

    def fill(self, side: str, qty: Fraction, price: Fraction, fee: Fraction = Fraction(0)) -> None:
        signed = qty if side == "buy" else -qty
        self.realized -= fee
        if self.qty == 0 or (self.qty > 0) == (signed > 0):
            held = abs(self.qty)
            self.avg = ((self.avg or Fraction(0)) * held + price * qty) / (held + qty)
            self.qty += signed
            return
        assert self.avg is not None
        closed = min(qty, abs(self.qty))
        direction = 1 if self.qty > 0 else -1
        self.realized += closed * (price - self.avg) * direction
        was_long = self.qty > 0
        self.qty += signed
        if self.qty == 0:
            self.avg = None
        elif (self.qty > 0) != was_long:  # through zero: the rest is a new position at this fill's price
            self.avg = price

    def unrealized(self, mark: Fraction | None) -> Fraction:
        """Marked at ``mark``; with no mark yet, at the average entry (no unrealized P&L claimed)."""
        if self.avg is None:
            return Fraction(0)
        return self.qty * ((self.avg if mark is None else mark) - self.avg)


class Bot:
    """A strategy that trades through the public API and reports what docs/metrics.md asks: after each fill its
    position at the mark, the average entry, and its realized and unrealized P&L."""

    def __init__(self, strategy: str, venue: str = "paper", contracts: dict[str, int] | None = None) -> None:
        self.tt = trading.TradingTelemetry(strategy=strategy, venue=venue)
        self.strategy = strategy
        self.books: dict[str, Book] = {}
        self.marks: dict[str, Fraction] = {}
        self.n = 0
        self.slippage: dict[str, list[float]] = {}  # order id -> each fill's slippage, bp, adverse positive
        # A futures and options desk: qty in contracts, prices per point; one point of one contract is worth
        # ``multiplier`` in money (ES 50, CL 1,000, an equity option 100). The books' P&L is money; declared once.
        self.mult = dict(contracts or {})
        for sym, m in self.mult.items():
            self.tt.instrument(sym, multiplier=m)
        self.turnover: dict[str, Fraction] = {}  # symbol -> money filled: qty * |price| * multiplier

    def mark(self, symbol: str, price: str) -> None:
        self.marks[symbol] = Fraction(Decimal(price))
        self.tt.tick(symbol, Decimal(price))
        if symbol in self.books:
            self.report(symbol)

    def order(self, symbol: str, side: str, fills: list[tuple[str, str]], fee: str = "0") -> None:
        """One order, filled by ``fills`` (qty, price) in turn; ``fee`` per fill, in the quote currency."""
        self.n += 1
        qty = sum(Decimal(q) for q, _ in fills)
        o = self.tt.order_signal(f"{self.strategy}-{self.n}", symbol, side, qty, price=Decimal(fills[0][1]))
        o.submitted()
        book = self.books.setdefault(symbol, Book())
        expected = Fraction(Decimal(fills[0][1]))
        sign = 1 if side == "buy" else -1
        self.slippage[f"{self.strategy}-{self.n}"] = [
            round(float(sign * (Fraction(Decimal(p)) - expected) / abs(expected) * 10_000), 6) + 0.0 for _, p in fills
        ]
        for q, p in fills:
            o.fill(Decimal(q), Decimal(p))
            money = Fraction(Decimal(q)) * abs(Fraction(Decimal(p))) * self.mult.get(symbol, 1)
            self.turnover[symbol] = self.turnover.get(symbol, Fraction(0)) + money
            book.fill(side, Fraction(Decimal(q)), Fraction(Decimal(p)), Fraction(Decimal(fee)))
            self.report(symbol)

    def report(self, symbol: str) -> None:
        book, mark = self.books[symbol], self.marks.get(symbol)
        shown = mark if mark is not None else book.avg if book.avg is not None else Fraction(0)
        avg = None if book.avg is None else float(book.avg)
        self.tt.position(symbol, float(book.qty), float(shown), avg)
        self.tt.pnl(symbol, self.realized(symbol), self.unrealized(symbol))

    def realized(self, symbol: str) -> float:
        return float(self.books[symbol].realized * self.mult.get(symbol, 1))

    def unrealized(self, symbol: str) -> float:
        return float(self.books[symbol].unrealized(self.marks.get(symbol)) * self.mult.get(symbol, 1))

    def notional(self, symbol: str) -> float:
        book, mark = self.books[symbol], self.marks.get(symbol)
        shown = mark if mark is not None else book.avg if book.avg is not None else Fraction(0)
        # what the bot reported, multiplied as tradeobs does: qty * price * the contract's multiplier
        return float(book.qty) * float(shown) * self.mult.get(symbol, 1) + 0.0


@pytest.fixture
def cap() -> Iterator[Capture]:
    with capture(prometheus=PrometheusOptions(host="127.0.0.1", port=0)) as c:
        yield c


def _by(points: list[Any], label: str = "symbol") -> dict[tuple[Any, Any], float]:
    return {(p.attributes.get(label), p.attributes.get("strategy")): p.value for p in points}


def _prom(samples: dict[str, list[Any]], name: str) -> dict[tuple[Any, Any], float]:
    return {(s.labels.get("symbol"), s.labels.get("strategy")): s.value for s in samples.get(name, [])}


def _books_vs_tradeobs(cap: Capture, bots: list[Bot], other: frozenset[str] = frozenset()) -> None:
    """Every figure of every reader equals the books. Symbols in ``other`` are shown folded into ``other``."""
    want: dict[str, dict[tuple[Any, Any], float]] = {
        "trading.position.quantity": {},
        "trading.position.notional": {},
        "trading.position.avg_price": {},
        "trading.pnl.realized": {},
        "trading.pnl.unrealized": {},
    }
    exact: dict[str, dict[tuple[Any, Any], list[Fraction]]] = {k: {} for k in want}
    for bot in bots:
        for sym, book in bot.books.items():
            key = ("other" if sym in other else sym, bot.strategy)
            exact["trading.position.quantity"].setdefault(key, []).append(book.qty)
            exact["trading.position.notional"].setdefault(key, []).append(Fraction(bot.notional(sym)))
            exact["trading.pnl.realized"].setdefault(key, []).append(Fraction(bot.realized(sym)))
            exact["trading.pnl.unrealized"].setdefault(key, []).append(Fraction(bot.unrealized(sym)))
            if book.avg is not None and sym not in other:  # flat: no average; "other": several symbols, none
                want["trading.position.avg_price"][key] = float(book.avg)
    for name, rows in exact.items():
        for key, values in rows.items():
            want[name][key] = float(sum(values))  # the sum of what was reported, rounded once
    metrics = cap.metrics()
    for name, w in want.items():
        assert _by(metrics.get(name, [])) == w, name
    url = cap.agent.prometheus_url
    assert url is not None
    samples = prom_samples(url)
    for name, w in want.items():
        prom_name = name.replace(".", "_")
        assert _prom(samples, prom_name) == w, prom_name
    # The value filled: qty * |price| * multiplier of every fill, by symbol (both sides added) and strategy
    turnover: dict[tuple[Any, Any], float] = {}
    for b in bots:
        for sym, v in b.turnover.items():
            key = ("other" if sym in other else sym, b.strategy)
            turnover[key] = turnover.get(key, 0.0) + float(v)
    for got in (
        [((p.attributes["symbol"], p.attributes["strategy"]), p.value) for p in metrics["trading.fills.notional"]],
        [((x.labels["symbol"], x.labels["strategy"]), x.value) for x in samples["trading_fills_notional_total"]],
    ):
        summed: dict[tuple[Any, Any], float] = {}
        for key, v in got:
            summed[key] = summed.get(key, 0.0) + v
        assert summed == pytest.approx(turnover, rel=1e-12), "trading.fills.notional"
    # Exposure: one series per bot (strategy, venue); gross and net of what each bot reported
    gross = {(None, b.strategy): math.fsum(abs(b.notional(s)) for s in b.books) for b in bots}
    net = {(None, b.strategy): math.fsum(b.notional(s) for s in b.books) for b in bots}
    assert _by(metrics["trading.exposure.gross"]) == gross
    assert _by(metrics["trading.exposure.net"]) == net
    assert _prom(samples, "trading_exposure_gross") == gross
    # The live view: per symbol summed over strategies; the desk's P&L over every symbol
    with Server(live.create_app(hz=20)) as srv:
        snap = orjson.loads(srv.conn_get("/snapshot"))
    rows, account = snap["symbols"], snap["account"]
    for name, field in (
        ("trading.position.quantity", "pos"),
        ("trading.position.notional", "ntl"),
        ("trading.pnl.realized", "rpnl"),
        ("trading.pnl.unrealized", "upnl"),
    ):
        per_symbol: dict[str, float] = {}
        for (sym, _), v in want[name].items():
            per_symbol[sym] = per_symbol.get(sym, 0.0) + v
        assert {s: rows[s].get(field) for s in per_symbol} == pytest.approx(per_symbol, rel=1e-12, abs=1e-9), field
    total = sum(Fraction(b.realized(s)) + Fraction(b.unrealized(s)) for b in bots for s in b.books)
    assert account["pnl"] == pytest.approx(float(total), rel=1e-12, abs=1e-9)
    assert account["gross"] == pytest.approx(math.fsum(gross.values()), rel=1e-12)
    assert account["net"] == pytest.approx(math.fsum(net.values()), rel=1e-12, abs=1e-9)


def _desk(a: Bot, b: Bot) -> None:
    """The sequences a desk gets wrong: flips, partial fills, shorts, flat exactly, decimals, fees, marks."""
    a.mark("FLIP", "100")
    a.order("FLIP", "buy", [("10", "100")])
    a.order("FLIP", "sell", [("25", "104.5")], fee="1.25")  # long 10 -> short 15 in one fill
    a.mark("FLIP", "103")
    a.order("PART", "buy", [("3", "50.01"), ("2", "50.02"), ("0.5", "50.015")])  # partial fills of one order
    a.order("SHORT", "sell", [("7", "19.99")], fee="0.07")  # a short from flat; no mark: marked at its entry
    a.order("ZERO", "buy", [("0.1", "0.3"), ("0.2", "0.3")])
    a.order("ZERO", "sell", [("0.3", "0.31")])  # closed exactly to zero: no average entry any more
    a.mark("EARLY", "12.5")  # a mark before any fill: no position yet
    a.order("EARLY", "buy", [("4", "12.4")])
    a.order("DEC", "buy", [("1.123456789", "0.000123456789123")])  # prices and quantities with many decimals
    a.mark("DEC", "0.000123456789999")
    # another strategy on the same symbols: its own series, added up by the desk's totals
    b.mark("FLIP", "103")
    b.order("FLIP", "buy", [("5", "101")])
    b.order("PART", "sell", [("1", "50.5")])
    b.mark("PART", "50.4")
    a.mark("PART", "50.4")


def test_every_reader_shows_the_books_for_flips_partials_shorts_flat_decimals_fees_and_marks(cap: Capture) -> None:
    a, b = Bot("alpha"), Bot("beta")
    _desk(a, b)
    assert a.books["FLIP"].qty == -15 and a.books["FLIP"].avg == Fraction("104.5")
    assert a.books["ZERO"].qty == 0 and a.books["ZERO"].avg is None
    _books_vs_tradeobs(cap, [a, b])
    assert "trading.exposure.gross" not in {p.attributes.get("instrument") for p in _invalid(cap)}
    # each fill's slippage against the order's price (the first fill's here), in bp, adverse positive
    got: dict[str, list[float]] = {}
    for e in events.get_bus().since(0):
        if e.kind == "fill":
            got.setdefault(e.data["order_id"], []).append(e.data["slippage_bps"])
    assert got == {**a.slippage, **b.slippage}
    assert got["alpha-3"] == [0.0, 1.999600, 0.999800]  # 50.02 and 50.015 against 50.01, bought


FUTURES = {"ESZ6": 50, "NQZ6": 20, "CLK0": 1000, "AAPL  261218P00200000": 100}
"""E-mini S&P 500 (50 USD a point), E-mini Nasdaq-100 (20), crude oil (1,000 barrels), an AAPL put (100 shares)."""


def test_the_contract_multipliers_setting_declares_them_at_init(monkeypatch: pytest.MonkeyPatch) -> None:
    """TRADEOBS_CONTRACT_MULTIPLIERS (one variable for every process of a deployment) declares the multipliers at
    init(); /metrics then shows 2 ES at 5,000 as 500,000. A bad value in the environment is warned about and
    ignored, as any setting's; given to init() it raises, naming the setting; so does one conflicting with a
    multiplier the code declared, before anything is built."""
    from tradeobs_agent import get_agent, init
    from tradeobs_agent.exceptions import TradeObsConfigError

    monkeypatch.setenv("TRADEOBS_CONTRACT_MULTIPLIERS", "ESZ6=50, CLF7=1000")
    with capture(prometheus=PrometheusOptions(host="127.0.0.1", port=0)) as c:
        assert trading.multipliers() == {"ESZ6": 50.0, "CLF7": 1000.0}
        tt = trading.TradingTelemetry(strategy="s", venue="v")
        tt.position("ESZ6", 2, 5000.0)
        tt.position("CLF7", -1, 60.0)
        notional = {
            x.labels["symbol"]: x.value for x in prom_samples(c.agent.prometheus_url or "")["trading_position_notional"]
        }
        assert notional == {"ESZ6": 500_000.0, "CLF7": -60_000.0}
    monkeypatch.setenv("TRADEOBS_CONTRACT_MULTIPLIERS", "ESZ6=0")
    contracts.reset()  # capture()'s reset keeps declarations (a bot's, made at import)
    with capture() as c:
        assert trading.multipliers() == {}
        assert any(p.setting == "contract_multipliers" for p in c.agent.report.problems)
    monkeypatch.delenv("TRADEOBS_CONTRACT_MULTIPLIERS")
    testing_reset()
    for bad in ({"ESZ6": 0}, {"ESZ6": float("nan")}, {"ESZ6": "fifty"}, {"": 50}):
        with pytest.raises(TradeObsConfigError, match="contract_multipliers"):
            init(otlp=False, prometheus=False, live=False, logs=False, metrics=MetricsOptions(contract_multipliers=bad))
        assert get_agent() is None
    trading.instrument("ESZ6", multiplier=50)
    with pytest.raises(TradeObsConfigError, match=r"contract_multipliers.*ESZ6=50, as declared before"):
        init(
            otlp=False,
            prometheus=False,
            live=False,
            logs=False,
            metrics=MetricsOptions(contract_multipliers={"ESZ6": 5}),
        )
    assert get_agent() is None and trading.multipliers() == {"ESZ6": 50.0}
    testing_reset()


def _futures_desk(a: Bot, b: Bot) -> None:
    """A futures and options desk's day: contracts, long and short, a flip, crude below zero, an option sold short
    that expires worthless, shares beside them. ``a`` is long 2 ES at 5,000 already."""
    a.order("ESZ6", "sell", [("3", "5010.25"), ("2", "5010.5")])  # long 2 -> short 3, in one order
    a.mark("ESZ6", "5004.75")
    a.order("NQZ6", "sell", [("1", "18000.5")])  # a short from flat, marked at its entry
    a.mark("CLK0", "18.27")
    a.order("CLK0", "buy", [("3", "18.27")])
    a.mark("CLK0", "-37.63")  # 20 April 2020: long crude below zero, a negative notional
    a.order("CLK0", "buy", [("1", "-36.5")])  # bought below zero: paid 1.13 more than the order's price
    a.order("AAPL  261218P00200000", "sell", [("10", "2.45")])  # a short put
    a.mark("AAPL  261218P00200000", "0")  # worth 0: notional 0, the premium all unrealized profit
    a.order("AAPL", "buy", [("100", "190.5")])  # shares: no contract declared, multiplier 1
    b.mark("ESZ6", "5004.75")
    b.order("ESZ6", "buy", [("1", "5004")])  # another strategy long the contract the first is short


def test_a_futures_and_options_desk_reads_its_books_with_contract_multipliers(cap: Capture) -> None:
    """qty in contracts, prices per point: every money figure tradeobs derives is qty * price * the contract's
    multiplier. Without one, 2 ES at 5,000 read a notional of 10,000 (the desk's books: 500,000), and gross
    exposure, the live view's desk totals and trading.fills.notional were off 50x for ES, 1,000x for crude."""
    a, b = Bot("spreads", contracts=FUTURES), Bot("trend", contracts={"ESZ6": 50})
    a.mark("ESZ6", "5000")
    a.order("ESZ6", "buy", [("2", "5000")])  # 2 ES at 5,000: 500,000 USD of index
    assert cap.metric_value("trading.position.notional", symbol="ESZ6", strategy="spreads") == 500_000.0
    assert cap.metric_value("trading.exposure.gross", strategy="spreads") == 500_000.0
    _futures_desk(a, b)
    assert a.books["ESZ6"].qty == -3 and a.books["CLK0"].qty == 4
    assert a.notional("CLK0") == 4 * -37.63 * 1000
    assert a.notional("AAPL  261218P00200000") == 0.0 and a.unrealized("AAPL  261218P00200000") == 2450.0
    _books_vs_tradeobs(cap, [a, b])
    assert not _invalid(cap)
    # Slippage is in basis points of the price's magnitude, whatever the contract's size; a buy at -36.5 for an
    # order priced at -36.5 is 0, and one for 1.13 more than a reference of -37.63 is adverse (positive)
    got = {e.data["order_id"]: e.data["slippage_bps"] for e in events.get_bus().since(0) if e.kind == "fill"}
    assert got["spreads-5"] == 0.0
    o = a.tt.order_signal("cl-x", "CLK0", "buy", 1, price=-37.63)
    o.fill(1, -36.5)
    o2 = a.tt.order_signal("cl-y", "CLK0", "sell", 1, price=-37.63)
    o2.fill(1, -36.5)  # sold for 1.13 more: favourable, negative
    got = {e.data["order_id"]: e.data["slippage_bps"] for e in events.get_bus().since(0) if e.kind == "fill"}
    assert got["cl-x"] == round(1.13 / 37.63 * 1e4, 6) and got["cl-y"] == -got["cl-x"]


def test_a_contract_multiplier_is_declared_once_and_a_bad_or_conflicting_one_is_refused() -> None:
    """A multiplier of 0, below zero, NaN, infinite, a bool or text, or a second declaration with another value
    raises TradeObsConfigError naming the symbol, the value and what is allowed; the same value again is fine, on
    any object (the table is the process's: a contract's size is the contract's)."""
    from tradeobs_agent.exceptions import TradeObsConfigError

    with capture():
        tt = trading.TradingTelemetry(strategy="s", venue="v")
        for bad in (0, -50, float("nan"), float("inf"), True, "50", None, Decimal("NaN")):
            with pytest.raises(TradeObsConfigError) as err:
                tt.instrument("ESZ6", multiplier=bad)  # type: ignore[arg-type]
            assert "multiplier of ESZ6" in str(err.value) and "a finite number > 0" in str(err.value)
        for bad_symbol in ("", 42, None):
            with pytest.raises(TradeObsConfigError, match="instrument symbol"):
                trading.instrument(bad_symbol, multiplier=50)  # type: ignore[arg-type]
        assert trading.multipliers() == {}
        tt.instrument("ESZ6", multiplier=50)
        trading.instrument("ESZ6", multiplier=Decimal("50"))  # the same, another object or type: no change
        trading.TradingTelemetry(strategy="t", venue="v").instrument("ESZ6", multiplier=50.0)
        with pytest.raises(TradeObsConfigError) as err:
            trading.instrument("ESZ6", multiplier=5)
        assert "50, as declared before" in str(err.value)
        assert trading.multipliers() == {"ESZ6": 50.0} and trading.multiplier("NQZ6") == 1.0
        tt.position("ESZ6", 2, 5000.0)
        tt.position("NQZ6", 1, 18000.0)  # not declared: 1
        assert trading.multiplier(["unhashable"]) == 1.0
        tt.position(["unhashable"], 1, 2.0)  # its own series, multiplier 1, as before
        tt.flush()


def test_an_option_bought_back_worthless_at_0_has_0_slippage_and_is_no_bad_input(cap: Capture) -> None:
    """An options desk closes a short put that expired worthless: buy 10 at 0.00, ordered at 0.00. The fill is at
    its reference: 0 bp. Before, any reference of 0 was bad input (reason="slippage_reference_zero", said on stderr
    as a mistake in the calling code, and TradeobsAgentInvalidInput paged after 10 minutes of expiry-day closes);
    a reference of 0 filled elsewhere (a market order's placeholder price 0) is still counted."""
    put = "AAPL  261218P00200000"
    tt = trading.TradingTelemetry(strategy="opts", venue="cboe")
    o = tt.order_signal("close-1", put, "buy", 10, price=0.0, order_type="limit")
    o.submitted()
    o.fill(10, 0.0)
    tt.position(put, 0, 0.0)
    samples = prom_samples(cap.agent.prometheus_url or "")
    buckets = {
        float(x.labels["le"]): x.value for x in samples["trading_order_slippage_bucket"] if x.labels["symbol"] == put
    }
    assert buckets[math.inf] == 1.0 and buckets[0.0] == 1.0 and buckets[-0.5] == 0.0  # one fill, at 0 bp
    assert [x.value for x in samples["trading_fills_notional_total"] if x.labels["symbol"] == put] == [0.0]
    assert not _invalid(cap)
    m = tt.order_signal("mkt-1", put, "buy", 1, price=0.0)  # a market order's placeholder 0, filled at 0.05
    m.submitted()
    m.fill(1, 0.05)
    assert cap.metric_value("tradeobs.agent.measurements.invalid", reason="slippage_reference_zero") == 1


def _symbols_of(samples: dict[str, list[Any]], name: str) -> set[str]:
    return {x.labels["symbol"] for x in samples.get(name, []) if "symbol" in x.labels}


def test_a_roll_retires_the_expired_contract_and_keeps_its_pnl(cap: Capture) -> None:
    """ESZ6 rolled to ESH7: the old contract never ticks again. Before, its staleness grew for ever on /metrics
    (TradingMarketDataStale paged at every roll, per instance) and the live view counted it stale.
    ``tt.retire("ESZ6")`` takes its market data series out; its flat position reads 0 and its realized P&L stays in
    the desk's P&L; the new contract's exposure is the desk's."""
    bot = Bot("roll", contracts={"ESZ6": 50, "ESH7": 50})
    tt = bot.tt
    tt.market_session("ESZ6", "ESH7", open=True)
    bot.mark("ESZ6", "5000")
    bot.order("ESZ6", "buy", [("2", "5000")])
    bot.mark("ESH7", "5040")
    bot.mark("ESZ6", "5002.5")
    bot.order("ESZ6", "sell", [("2", "5002.5")])  # the roll: out of December (250 of realized P&L)...
    bot.order("ESH7", "buy", [("2", "5040")])  # ...into March
    tt.retire("ESZ6")
    samples = prom_samples(cap.agent.prometheus_url or "")
    for name in (
        "trading_marketdata_staleness_seconds",
        "trading_marketdata_price",
        "trading_marketdata_last_tick_seconds",
        "trading_marketdata_session_open",
    ):
        assert name in samples, name
        assert _symbols_of(samples, name) == {"ESH7"}, name
    assert {x.labels["symbol"]: x.value for x in samples["trading_position_notional"]} == {"ESZ6": 0, "ESH7": 504_000}
    assert {x.labels["symbol"]: x.value for x in samples["trading_pnl_realized"]} == {"ESZ6": 250.0, "ESH7": 0.0}
    assert [x.value for x in samples["trading_exposure_gross"]] == [2 * 5040 * 50]
    with Server(live.create_app(hz=20)) as srv:
        snap = orjson.loads(srv.conn_get("/snapshot"))
    rows = snap["symbols"]
    assert "age" not in rows["ESZ6"] and rows["ESZ6"]["pos"] == 0 and rows["ESZ6"]["rpnl"] == 250.0
    assert rows["ESH7"]["ntl"] == 504_000.0 and snap["account"]["gross"] == 504_000.0
    assert snap["account"]["pnl"] == 250.0
    assert not _invalid(cap)
    # a later tick brings the symbol back
    tt.tick("ESZ6", 5001.0)
    assert _symbols_of(prom_samples(cap.agent.prometheus_url or ""), "trading_marketdata_price") == {"ESZ6", "ESH7"}


def test_retiring_a_symbol_with_an_open_position_keeps_the_position_and_counts_it(cap: Capture) -> None:
    """An expired contract still held (delivery, a book not reported flat): its market data goes, its position
    stays and in the exposure, counted as reason="retire_open_position"."""
    tt = trading.TradingTelemetry(strategy="s", venue="v")
    tt.instrument("CLZ6", multiplier=1000)
    tt.tick("CLZ6", 60.0)
    tt.position("CLZ6", 3, 60.0, 59.0)
    tt.retire("CLZ6")
    tt.retire(["unhashable"])  # nothing kept by it: nothing to retire
    assert cap.metric_value("trading.position.notional", symbol="CLZ6") == 180_000.0
    assert cap.metric_value("trading.exposure.gross") == 180_000.0
    assert "trading.marketdata.staleness" not in cap.metrics()
    assert cap.metric_value("tradeobs.agent.measurements.invalid", reason="retire_open_position") == 1


def _invalid(cap: Capture) -> list[Any]:
    return cap.metrics().get("tradeobs.agent.measurements.invalid", [])


def test_symbols_off_the_allowlist_add_up_in_other(monkeypatch: pytest.MonkeyPatch) -> None:
    """With ``symbol_allowlist`` the symbols off it share the ``other`` series. Each set it in turn, so ``other``
    showed the last one's position and P&L: with FLIP and PART folded (P&L 14.5 and 2.465 for alpha),
    ``other`` said 2.465 and the desk's total P&L on /metrics and in the live view left FLIP's out."""
    with capture(
        prometheus=PrometheusOptions(host="127.0.0.1", port=0),
        metrics=MetricsOptions(symbol_allowlist=["ZERO", "EARLY", "DEC", "SHORT"]),
    ) as c:
        a, b = Bot("alpha"), Bot("beta")
        _desk(a, b)
        _books_vs_tradeobs(c, [a, b], other=frozenset({"FLIP", "PART"}))
        # the next collection recomputes the sums exactly and says the same
        _books_vs_tradeobs(c, [a, b], other=frozenset({"FLIP", "PART"}))


def test_100k_fills_at_prices_with_many_decimals_keep_exposure_within_float_rounding(cap: Capture) -> None:
    """100,000 fills over 50 symbols at prices of 7 decimals, positions flipping sides: gross and net exposure
    (what tradeobs adds up itself) stay within one rounding of the exact sum of what the bot reported, and are 0
    exactly when every position is flat."""
    rnd = random.Random(7)
    bot = Bot("walk")
    tt = bot.tt
    syms = [f"W{i:02d}" for i in range(50)]
    reported: dict[str, float] = {}
    for _ in range(100_000):
        s = rnd.choice(syms)
        q = float(rnd.randint(-1_000_000, 1_000_000)) / 100
        p = float(Decimal(rnd.randint(1, 5_000_0000000)) / Decimal(10**7))
        tt.position(s, q, p)
        reported[s] = q * p
    metrics = cap.metrics()
    gross = metrics["trading.exposure.gross"][0].value
    net = metrics["trading.exposure.net"][0].value
    assert gross == math.fsum(abs(v) for v in reported.values())
    assert net == math.fsum(reported.values())
    for s in syms:
        tt.position(s, 0.0, 1.0)
    metrics = cap.metrics()
    assert metrics["trading.exposure.gross"][0].value == 0.0
    assert metrics["trading.exposure.net"][0].value == 0.0


def test_net_exposure_is_the_exact_sum_even_across_magnitudes(cap: Capture) -> None:
    """Net exposure with a large long and a large short of one size and a small position between them: a plain
    float sum in report order lost the small one (1e17 + 0.3 - 1e17 is 0.0 in floats); the exact sum is 0.3."""
    tt = trading.TradingTelemetry(strategy="s", venue="v")
    tt.position("LONG", 1e9, 1e8)
    tt.position("SMALL", 3.0, 0.1)
    tt.position("SHORT", -1e9, 1e8)
    assert cap.metric_value("trading.exposure.net") == math.fsum([1e17, 3.0 * 0.1, -1e17])


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), "x", None])
def test_bad_prices_and_pnl_are_dropped_counted_and_the_books_stay(cap: Capture, bad: Any) -> None:
    """A mark of NaN, inf or text, a NaN P&L: dropped, counted, the last good figure stays; nothing raises."""
    bot = Bot("alpha")
    bot.mark("A", "10")
    bot.order("A", "buy", [("2", "10")])
    bot.tt.position("A", 2.0, bad, 10.0)
    bot.tt.pnl("A", bad, bad)
    bot.tt.position("A", bad, 10.0)
    _books_vs_tradeobs(cap, [bot])
    counted = {p.attributes["reason"] for p in _invalid(cap)}
    assert counted >= {"position", "value"}


def test_a_price_of_zero_is_a_price() -> None:
    """A mark of 0 (a worthless option) is a price: notional 0, the position stays."""
    with capture() as c:
        tt = trading.TradingTelemetry(strategy="s", venue="v")
        tt.position("OPT", 10.0, 0.0, 1.5)
        tt.pnl("OPT", 0.0, -15.0)
        assert c.metric_value("trading.position.quantity", symbol="OPT") == 10.0
        assert c.metric_value("trading.position.notional", symbol="OPT") == 0.0
        assert c.metric_value("trading.position.avg_price", symbol="OPT") == 1.5
        assert c.metric_value("trading.pnl.unrealized", symbol="OPT") == -15.0
        assert not c.metrics().get("tradeobs.agent.measurements.invalid")


def test_a_flat_book_is_0_not_minus_0_on_every_reader(cap: Capture) -> None:
    """A book closed to zero the way bots compute it (``-qty`` of a flat book, ``round(-0.004, 2)`` as the P&L, a
    flat position marked at a spread's price below zero) is 0: the endpoint served ``-0.0`` (Grafana: "-0"), and
    OTLP exported -0.0."""
    tt = trading.TradingTelemetry(strategy="s", venue="v")
    tt.position("FLAT", -0.0, 5.0, 4.0)
    tt.position("SPREAD", 0.0, -1.25)
    tt.pnl("FLAT", round(-0.004, 2), -0.0)
    samples = prom_samples(cap.agent.prometheus_url or "")
    for name in ("trading_position_quantity", "trading_position_notional", "trading_pnl_realized"):
        for s in samples[name]:
            assert math.copysign(1.0, s.value) == 1.0, (name, s.labels, s.value)
    for name in ("trading.position.quantity", "trading.position.notional", "trading.pnl.unrealized"):
        for p in cap.metrics()[name]:
            assert math.copysign(1.0, p.value) == 1.0, (name, p.attributes, p.value)


def test_a_notional_past_any_float_is_bad_input_and_exposure_follows_the_other_symbols(cap: Capture) -> None:
    """qty x price past any float (1e200 x 1e200) set the quantity without its notional, and the infinite notional
    made every later gross and net exposure infinite, dropped at each collection: both stayed at their last value
    while the other positions moved. Now the position is bad input (counted, not recorded)."""
    tt = trading.TradingTelemetry(strategy="s", venue="v")
    tt.position("A", 10.0, 5.0)
    tt.position("HUGE", 1e200, 1e200)
    tt.position("A", 20.0, 5.0)
    assert cap.metric_value("trading.exposure.gross") == 100.0
    assert cap.metric_value("trading.exposure.net") == 100.0
    assert [p.attributes["symbol"] for p in cap.metrics()["trading.position.quantity"]] == ["A"]
    assert cap.metric_value("tradeobs.agent.measurements.invalid", instrument="trading", reason="position") == 1
