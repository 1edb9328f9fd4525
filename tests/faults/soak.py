"""The soak: the demo at 10x its default load through the whole pipeline, the RSS of every process sampled.

>>> with Pipeline(tmp) as pipe, DemoService(pipe.otlp_endpoint, tmp / "svc", **SOAK_DEMO) as svc:  # doctest: +SKIP
...     run = soak([Target("tradeobs", pipe, svc)], warmup=60, after_full=120)[0]
...     run.rss["service"].growth_pct        # RSS growth once the warm-up is over and the buffers are full, in %
...     svc.set_orders(0); final = svc.stop(); spans = soak_spans_account(run, final)

Used by ``tests/faults/test_soak.py`` (a short soak, every CI run) and ``benchmarks/soak.py`` (the full length, with
a peer service on the raw OpenTelemetry SDK next to it).

The load is the demo's default (``DemoConfig()``: 10 symbols, 10 market-data steps/s, 2 orders/s) times
:data:`FACTOR`, in its rates: 20 orders/s and 100 steps/s of the same 10 symbols (1000 ticks/s). The symbols stay
10: ten times the series would measure cardinality, which ``benchmarks/cardinality.py`` does, not a longer run.

What is measured, for each process (the service, our collector, Prometheus, and the trace store for information):
its RSS from ``/proc/<pid>/status`` every ``interval`` seconds. :class:`RssFigures` reduces a series to the RSS at a
baseline and at the end (each the median of the samples in the :data:`WINDOW_S` seconds before it: one garbage
collection or allocation burst does not move it), the growth between them in percent, the peak, and the
least-squares slope after the baseline in MiB/min.

Two baselines: the end of the first minute (the issue's definition), and the moment the agent's bounded buffers
are full. The largest, the event bus's ring (``tradeobs_agent.events``, ``live_event_buffer`` = 2048 events: the
live stream, the multi-process group and the NATS publisher read it), fills in about 43 s at this load (~48
events/s), at the demo's default load in about 7 minutes. Until it is full the service's RSS grows by design
(about 0.7 KiB per event of the demo's, ~1.5 MiB), so a leak is judged after it as well: the ring is full once the
bus has evicted an event (``/state`` ``bus_evicted``). At this load both baselines are at the end of the first
minute. (The ring held 10,000 events, then 4,096, until the soak showed them filling as RSS growth after the first
minute: +7 MiB for 3.5 minutes, then ~1 MiB between 60 and 85 s.)
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tradeobs_agent.demo import DemoConfig

from .harness import (
    MB,
    TRADING_SCOPE,
    Account,
    DemoService,
    Pipeline,
    arrived_log_bodies,
    dropped_logs,
    dropped_spans,
    jaeger_search,
    recorded_log_bodies,
    recorded_span_ids,
    rss,
)

FACTOR = 10
_DEFAULT = DemoConfig()
SOAK_DEMO: dict[str, Any] = {
    "orders_hz": _DEFAULT.orders_hz * FACTOR,
    "symbols": _DEFAULT.symbols,
    "tick_hz": _DEFAULT.tick_hz * FACTOR,
    "keep_samples": 0,  # the harness's sample buffers would grow in the service's process
}
SOAK_LOAD = (
    f"demo at {FACTOR}x its default load: {SOAK_DEMO['orders_hz']:g} orders/s, {SOAK_DEMO['symbols']} symbols, "
    f"{SOAK_DEMO['tick_hz'] * SOAK_DEMO['symbols']:g} ticks/s"
)
WINDOW_S = 15.0
PROCESSES = ("service", "collector", "Prometheus", "trace store")


@dataclass
class RssFigures:
    """One process's RSS over a soak (bytes; the slope in MiB per minute)."""

    at_warmup: float
    at_end: float
    peak: float
    slope_mib_min: float
    samples: int

    @property
    def growth_pct(self) -> float:
        return (self.at_end - self.at_warmup) / self.at_warmup * 100 if self.at_warmup else 0.0

    def __str__(self) -> str:
        return (
            f"{self.at_warmup / MB:.1f} MiB at the baseline, {self.at_end / MB:.1f} MiB at the end "
            f"({self.growth_pct:+.1f}%), slope {self.slope_mib_min:+.3f} MiB/min, peak {self.peak / MB:.1f} MiB"
        )


def slope(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of ``(x, y)`` points (0 for fewer than two distinct x)."""
    if len(points) < 2:
        return 0.0
    mx = statistics.fmean(x for x, _ in points)
    my = statistics.fmean(y for _, y in points)
    sxx = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else 0.0


def rss_figures(series: Sequence[tuple[float, int]], warmup: float, end: float) -> RssFigures:
    """``series``: ``(seconds since the start, RSS bytes)``; ``warmup`` and ``end`` in the same seconds."""
    at_warm = [v for t, v in series if warmup - WINDOW_S <= t <= warmup] or [v for t, v in series if t <= warmup][-1:]
    at_end = [v for t, v in series if end - WINDOW_S <= t <= end] or [v for _, v in series][-1:]
    after = [(t / 60.0, v / MB) for t, v in series if t >= warmup]
    return RssFigures(
        at_warmup=statistics.median(at_warm) if at_warm else 0.0,
        at_end=statistics.median(at_end) if at_end else 0.0,
        peak=max((v for _, v in series), default=0),
        slope_mib_min=slope(after),
        samples=len(series),
    )


@dataclass
class Target:
    """A service trading through its own pipeline. ``svc`` answers ``state()`` (``orders``, ``ticks``) and has a
    ``pid`` (:class:`DemoService`, or the benchmark's raw-SDK peer)."""

    name: str
    pipe: Pipeline
    svc: Any
    scope: str = TRADING_SCOPE  # the instrumentation scope of its order spans (counted in Jaeger)

    def pids(self) -> dict[str, int]:
        parts = {"collector": self.pipe.collector, "Prometheus": self.pipe.prometheus, "trace store": self.pipe.jaeger}
        out = {"service": int(self.svc.pid)}
        out.update({k: p.proc.pid for k, p in parts.items() if p is not None})
        return out


@dataclass
class SoakRun:
    """What one target did over the soak: RSS series per process, its order and tick counts polled."""

    target: Target
    warmup: float
    seconds: float = 0.0  # how long it ran (set at the end)
    t0: float = 0.0  # epoch time of the start
    series: dict[str, list[tuple[float, int]]] = field(default_factory=dict)
    polls: list[tuple[float, int, int]] = field(default_factory=list)  # (seconds since start, orders, ticks)
    full_at: float | None = None  # seconds since the start when the event bus's ring was first seen full

    @property
    def baseline(self) -> float:
        """The later of the warm-up's end and the moment the bounded buffers were full (the warm-up without a bus)."""
        return max(self.warmup, self.full_at) if self.full_at is not None else self.warmup

    def rss_since(self, baseline: float) -> dict[str, RssFigures]:
        return {name: rss_figures(s, baseline, self.seconds) for name, s in self.series.items()}

    @property
    def rss(self) -> dict[str, RssFigures]:
        """Growth and slope after :attr:`baseline` (the warm-up over, the buffers full)."""
        return self.rss_since(self.baseline)

    @property
    def rss_after_warmup(self) -> dict[str, RssFigures]:
        """Growth and slope after the warm-up (the first minute: the issue's figure)."""
        return self.rss_since(self.warmup)

    def rate(self, index: int) -> float:
        """Per second after the warm-up: ``index`` 1 orders, 2 ticks."""
        after = [p for p in self.polls if p[0] >= self.warmup]
        if len(after) < 2 or after[-1][0] == after[0][0]:
            return 0.0
        return (after[-1][index] - after[0][index]) / (after[-1][0] - after[0][0])

    @property
    def orders_per_s(self) -> float:
        return self.rate(1)

    @property
    def ticks_per_s(self) -> float:
        return self.rate(2)

    def stalls(self) -> list[str]:
        """Consecutive polls between which the service placed no order or took no market-data step."""
        out = []
        for (t0, o0, k0), (t1, o1, k1) in zip(self.polls, self.polls[1:], strict=False):
            if o1 == o0 or k1 == k0:
                out.append(f"no {'order' if o1 == o0 else 'step'} between +{t0:.0f}s and +{t1:.0f}s")
        return out


def soak(targets: Sequence[Target], warmup: float, *, seconds: float | None = None, after_full: float | None = None,
         interval: float = 5.0, full_deadline: float = 900.0) -> list[SoakRun]:  # fmt: skip
    """Poll every target's service (``state()``: alive, orders, ticks, the event bus) and sample the RSS of its
    processes every ``interval`` seconds, the targets together in one loop, for ``seconds`` or, with
    ``after_full``, until ``after_full`` seconds past the first target's :attr:`SoakRun.baseline` (its warm-up
    over and its buffers full; a failure if they are not full within ``full_deadline`` seconds)."""
    if (seconds is None) == (after_full is None):
        raise ValueError("pass seconds or after_full")
    runs = [SoakRun(t, warmup) for t in targets]
    start = time.monotonic()
    epoch = time.time()
    for run in runs:
        run.t0 = epoch
    n = 0
    while True:
        for run in runs:
            st = run.target.svc.state()  # raises if the service died
            now = time.monotonic() - start
            run.polls.append((now, int(st["orders"]), int(st["ticks"])))
            if run.full_at is None and st.get("bus_evicted", 0) > 0:
                run.full_at = now
            for name, pid in run.target.pids().items():
                run.series.setdefault(name, []).append((now, rss(pid)))
        n += 1
        if seconds is not None:
            end = seconds
        elif runs[0].full_at is not None:
            end = runs[0].baseline + (after_full or 0.0)
        elif time.monotonic() - start > full_deadline:
            raise AssertionError(f"the event bus's ring was not full after {full_deadline:g} s")
        else:
            end = float("inf")
        if n * interval > end + 1e-6:
            break
        time.sleep(max(0.0, n * interval - (time.monotonic() - start)))
    for run in runs:
        run.seconds = run.series["service"][-1][0]
    return runs


# --------------------------------------------------------------------------- what arrived


def arrived_span_count(jaeger_query_url: str, service: str, since: float, until: float, scope: str | None = None,
                       window: float = 60.0) -> set[str]:  # fmt: skip
    """Span ids of ``service`` in the trace store (only ``scope``'s when given), searched a ``window`` of seconds
    at a time: a whole soak's traces in one answer would be hundreds of megabytes."""
    ids: set[str] = set()
    t = since
    while t < until:
        for tr in jaeger_search(jaeger_query_url, service, limit=99_999, start_s=t, end_s=min(until, t + window)):
            for s in tr["spans"]:
                tags = {x["key"]: x["value"] for x in s.get("tags", [])}
                if scope is None or tags.get("otel.scope.name") == scope:
                    ids.add(s["spanID"])
        t += window
    return ids


def soak_spans_account(run: SoakRun, svc: DemoService, final: dict[str, Any]) -> Account:
    """The trading layer's spans the service recorded (its trace file) against those the trace store holds."""
    jaeger = run.target.pipe.jaeger
    assert jaeger is not None
    arrived = arrived_span_count(jaeger.query_url, svc.service_name, run.t0 - 60, time.time() + 60, TRADING_SCOPE)
    return Account.of("spans", recorded_span_ids(svc.workdir), arrived, dropped_spans(final))


def soak_logs_account(run: SoakRun, svc: DemoService, final: dict[str, Any]) -> Account:
    return Account.of("logs", recorded_log_bodies(svc.workdir),
                      arrived_log_bodies(run.target.pipe.log_files, svc.service_name), dropped_logs(final))  # fmt: skip
