"""Positions, average cost, realized/unrealized P&L, equity and drawdown."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Position:
    qty: float = 0.0
    avg_price: float = 0.0
    realized: float = 0.0

    def apply_fill(self, side: str, qty: float, price: float) -> None:
        signed = qty if side == "buy" else -qty
        if self.qty == 0 or (self.qty > 0) == (signed > 0):
            total = self.qty + signed
            self.avg_price = (self.avg_price * abs(self.qty) + price * qty) / abs(total)
            self.qty = total
            return
        closing = min(abs(signed), abs(self.qty))
        direction = 1.0 if self.qty > 0 else -1.0
        self.realized += closing * (price - self.avg_price) * direction
        self.qty += signed
        if abs(self.qty) < 1e-12:
            self.qty, self.avg_price = 0.0, 0.0
        elif (self.qty > 0) != (direction > 0):  # flipped through zero
            self.avg_price = price

    def unrealized(self, mark: float) -> float:
        return self.qty * (mark - self.avg_price)


class Portfolio:
    """>>> p = Portfolio(100_000.0); p.fill("AAPL", "buy", 10, 100.0); p.equity({"AAPL": 101.0})
    100010.0
    """

    def __init__(self, cash: float) -> None:
        self.start_cash = cash
        self.positions: dict[str, Position] = {}
        self.peak_equity = cash

    def fill(self, symbol: str, side: str, qty: float, price: float) -> Position:
        pos = self.positions.setdefault(symbol, Position())
        pos.apply_fill(side, qty, price)
        return pos

    def equity(self, marks: dict[str, float]) -> float:
        pnl = sum(p.realized + p.unrealized(marks.get(s, p.avg_price)) for s, p in self.positions.items())
        return self.start_cash + pnl

    def drawdown(self, equity: float) -> float:
        self.peak_equity = max(self.peak_equity, equity)
        return 0.0 if self.peak_equity <= 0 else (self.peak_equity - equity) / self.peak_equity
