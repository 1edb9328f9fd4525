"""Pre-trade risk checks and a kill switch."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class RiskLimits:
    max_order_qty: float = 1_000
    max_position: float = 5_000
    max_gross_notional: float = 5_000_000
    max_drawdown: float = 0.20


@dataclass
class RiskResult:
    passed: bool
    reason: str | None
    checks: dict[str, float]


class RiskManager:
    def __init__(self, limits: RiskLimits) -> None:
        self.limits = limits
        self.kill_switch = False

    def check(self, side: str, qty: float, position: float, gross_notional: float, price: float) -> RiskResult:
        lim = self.limits
        new_pos = position + (qty if side == "buy" else -qty)
        checks = {
            "order_qty": qty / lim.max_order_qty,
            "position": abs(new_pos) / lim.max_position,
            # gross after the order: a reducing order lowers it (counting qty * price whatever the side, the
            # demo of 1,000 symbols reached the limit within a minute and then refused every order, for good)
            "gross_notional": (gross_notional + (abs(new_pos) - abs(position)) * price) / lim.max_gross_notional,
        }
        if self.kill_switch:
            return RiskResult(False, "kill_switch", checks)
        for name, used in checks.items():
            if used > 1.0:
                return RiskResult(False, f"limit_{name}", checks)
        return RiskResult(True, None, checks)
