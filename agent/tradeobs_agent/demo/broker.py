"""A paper broker: latency, acks, partial fills, slippage and rejects, all randomised but seeded."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

REJECT_REASONS = ("insufficient_buying_power", "price_out_of_band", "venue_throttled")


@dataclass
class BrokerConfig:
    ack_latency_ms: float = 3.0
    fill_latency_ms: float = 8.0
    reject_rate: float = 0.02
    partial_fill_rate: float = 0.3
    slippage_bps: float = 2.0


@dataclass
class Fill:
    qty: float
    price: float


class PaperBroker:
    """``await execute(...)`` simulates one order's life at the venue, calling back on each step."""

    def __init__(self, config: BrokerConfig, seed: int | None = None) -> None:
        self.config = config
        self._rng = random.Random(seed)
        self._venue_seq = 0

    def _latency(self, mean_ms: float) -> float:
        return self._rng.lognormvariate(0.0, 0.5) * mean_ms / 1000.0

    async def execute(
        self,
        side: str,
        qty: float,
        mark: Callable[[], float],
        on_ack: Callable[[str], None],
        on_reject: Callable[[str], None],
        on_fill: Callable[[Fill], Awaitable[None] | None],
    ) -> None:
        cfg, rng = self.config, self._rng
        await asyncio.sleep(self._latency(cfg.ack_latency_ms))
        if rng.random() < cfg.reject_rate:
            on_reject(rng.choice(REJECT_REASONS))
            return
        self._venue_seq += 1
        on_ack(f"V{self._venue_seq:08d}")
        parts = rng.choice((2, 3)) if rng.random() < cfg.partial_fill_rate and qty >= 3 else 1
        remaining = qty
        for i in range(parts):
            await asyncio.sleep(self._latency(cfg.fill_latency_ms / parts))
            part = remaining if i == parts - 1 else max(1.0, round(qty / parts))
            remaining -= part
            # Slippage is mostly adverse: buys pay up, sells receive less.
            bps = abs(rng.gauss(cfg.slippage_bps / 2, cfg.slippage_bps)) * (1 if rng.random() < 0.8 else -1)
            sign = 1.0 if side == "buy" else -1.0
            result = on_fill(Fill(part, mark() * (1.0 + sign * bps / 10_000.0)))
            if result is not None:
                await result
