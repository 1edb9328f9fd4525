"""Random-walk market data for N symbols (geometric Brownian motion, seeded)."""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass

_BASE = ["AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META", "TSLA", "JPM", "V", "XOM"]


def symbols(n: int) -> list[str]:
    """``n`` ticker-like symbols: the ten large caps first, then ``SYM0010``..."""
    if n < 1:
        raise ValueError(f"need at least one symbol, got {n}")
    return (_BASE + [f"SYM{i:04d}" for i in range(len(_BASE), n)])[:n]


@dataclass
class Quote:
    symbol: str
    price: float
    exchange_ts: float


class RandomWalkMarket:
    """``step()`` moves every symbol one tick and returns the quotes.

    >>> m = RandomWalkMarket(["AAPL"], seed=1)
    >>> q = m.step()[0]; q.symbol
    'AAPL'
    """

    def __init__(self, syms: list[str], seed: int | None = None, vol_per_tick: float = 0.0005) -> None:
        self._rng = random.Random(seed)
        self.prices = {s: 50.0 + self._rng.random() * 450.0 for s in syms}
        self._vol = vol_per_tick

    def step(self) -> list[Quote]:
        now = time.time()
        out = []
        gauss = self._rng.gauss
        for sym, px in self.prices.items():
            px *= math.exp(gauss(0.0, self._vol))
            self.prices[sym] = px
            # The exchange stamped the quote a little before we received it.
            out.append(Quote(sym, px, now - abs(gauss(0.002, 0.001))))
        return out
