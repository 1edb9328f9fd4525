"""The registry: every instrument of a process, the hooks that run before a read, and the one snapshot."""

from __future__ import annotations

import contextlib
import gc
import math
import os
import re
import sys
import threading
import weakref
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from .. import _errors, secret_values
from .._errors import internal_error, warn_once
from .._text import as_utf8, is_utf8
from ..redaction import default_redactor
from ..types import AttrKey
from . import _clock
from ._clock import points_ns
from ._instruments import Counter, Gauge, Histogram, Instrument, UpDownCounter
from ._self import SelfMetrics
from .snapshot import Aggregation, Family, HistogramPoint, Snapshot

__all__ = ["MAX_ATTR_LEN", "Registry", "get_registry"]

MAX_ATTR_LEN = 256
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_./\-]{0,254}$")
InstrumentT = TypeVar("InstrumentT", bound=Instrument[Any])


_OVERFLOW = (
    "instrument %r passed its limit of %d attribute sets; further sets go to the otel.metric.overflow series%s "
    "(raise %s or use a symbol allowlist)"
)
_GAUGE_LOSES = ", which keeps only the last value set through it: the values of those sets are lost"


def _valid_unit(unit: Any) -> bool:
    """A unit an instrument takes: ASCII text of at most 63 characters (else it gets none, counted)."""
    return isinstance(unit, str) and len(unit) <= 63 and unit.isascii()


class Registry:
    """Holds every instrument. One per process (see :func:`get_registry`); tests may make their own.

    Readers call :meth:`snapshot`; nothing else reads instruments.
    """

    def __init__(self, max_series: int = 2000, max_gauge_series: int = 20_000) -> None:
        self.max_series = max_series  # per counter, up-down counter and histogram
        self.max_gauge_series = max_gauge_series  # per gauge (see Gauge.limit)
        # The settings whose first instrument past its limit was said on the console (a gauge's is said even after a
        # counter's: past max_gauge_series values are lost, not only labels).
        self._overflow_told: set[str] = set()
        self._instruments: dict[str, Instrument[Any]] = {}
        self._lock = threading.Lock()
        self.start_ns = points_ns()
        self._selfm: SelfMetrics | None = None
        self._hooks: list[Callable[[], None]] = []
        self._flush_hooks: list[Callable[[], object]] = []
        # In a forked child: what the parent had counted at the fork (a worker group counts the child's own part).
        self.fork_baseline: Snapshot | None = None
        # The instruments a restart kept because something referred to them, maybe only garbage (see restart).
        self._kept: set[str] = set()

    # -- reading
    def add_flush_hook(self, hook: Callable[[], object]) -> None:
        """Call ``hook`` before anything reads this registry: it applies writes still pending
        (``TradingTelemetry`` records through a journal, see ``trading/_journal.py``). Added once."""
        if hook not in self._flush_hooks:
            self._flush_hooks.append(hook)

    def flush(self) -> None:
        """Apply every pending write, so a read now sees every value recorded before it."""
        for hook in list(self._flush_hooks):
            try:
                hook()
            except Exception as exc:  # a flush hook never raises by contract: this is a bug
                internal_error("registry.flush_hook", exc)

    def restart(self) -> None:
        """Back to no measurement (tests: ``tradeobs_agent.testing.reset``), pending writes applied first.

        An instrument or series nothing else holds any more goes, as in a new registry. One still held (a module's
        ``fills = counter(...)`` or ``fills.bind(...)``, or a ``TradingTelemetry`` made once at import) stays the
        same object, its series zeroed (counters 0, gauges unset, histograms empty), so what it records next is in
        what the next reader reads.

        "Held" is told by reference counting alone, with no garbage collection: one full collection per test took
        a tenth of a second in a test worker that had run a thousand tests (the collection walks every object of
        the process), and made the suite half as slow again. So an instrument held only by garbage in a reference
        cycle (a test's ``TradingTelemetry``, not collected yet) stays too, zeroed, invisible to every reader as
        nothing records into it. A declaration that differs from it (another kind, unit, description, bounds or
        aggregation) collects garbage then, once, and gets a new instrument when it went
        (:meth:`_forget_if_unheld`): as in a new registry, with no warning and nothing counted as redeclared."""
        self.flush()
        with self._lock:
            instruments = self._instruments
            self._instruments = {}
        held = [(name, weakref.ref(inst), inst.let_go()) for name, inst in instruments.items()]
        del instruments
        kept = set()
        for name, inst_ref, series in held:
            inst = inst_ref()
            if inst is None:
                continue
            self._take_back(inst, series)
            with self._lock:
                self._instruments.setdefault(name, inst)
            kept.add(name)
        self._kept = kept
        self.start_ns = points_ns()
        self.fork_baseline = None
        self._overflow_told.clear()

    @staticmethod
    def _take_back(inst: Instrument[Any], series: list[tuple[AttrKey, weakref.ref[Any]]]) -> None:
        for key, ref in series:
            s = ref()
            if s is not None:
                inst.take_back(key, s)

    def _forget_if_unheld(self, name: str) -> Instrument[Any] | None:
        """The instrument ``name``, kept by the last :meth:`restart`, is declared otherwise: None if it went once
        garbage was collected (nothing but garbage held it; the registry no longer has it), else the instrument,
        still held, which stays (the declaration is a redeclaration of it). The caller holds no reference to it."""
        self._kept.discard(name)
        with self._lock:
            inst = self._instruments.pop(name, None)
        if inst is None:
            return None
        ref = weakref.ref(inst)
        series = inst.let_go()
        del inst
        gc.collect()
        inst = ref()
        if inst is None:
            return None
        self._take_back(inst, series)
        with self._lock:
            return self._instruments.setdefault(name, inst)

    @staticmethod
    def _differs(
        inst: Instrument[Any],
        cls: type[Instrument[Any]],
        unit: Any,
        description: Any,
        bounds: Any,
        aggregation: Aggregation | None,
    ) -> bool:
        """``inst`` is not what this declaration would make in a new registry (kind, unit, description, histogram
        bounds, aggregation): the test before declared it otherwise."""
        if type(inst) is not cls:
            return True
        if not _valid_unit(unit):
            unit = ""
        if unit != inst.unit or (description or "") != inst.description:
            return True
        if (aggregation is not None) != inst.declared or (aggregation or cls.default_aggregation) != inst.aggregation:
            return True
        old_bounds: tuple[float, ...] | None = getattr(inst, "bounds", None)
        if old_bounds is None:
            return False
        if bounds is None:
            bounds = Histogram.default_bounds(unit)
        try:
            return tuple(float(x) for x in bounds) != old_bounds
        except (TypeError, ValueError):
            return True

    def add_collect_hook(self, hook: Callable[[], None]) -> None:
        """Call ``hook`` before every full read (e.g. to set queue-size gauges)."""
        self._hooks.append(hook)

    def remove_collect_hook(self, hook: Callable[[], None]) -> None:
        if hook in self._hooks:
            self._hooks.remove(hook)

    def run_collect_hooks(self) -> None:
        """Before a collection: apply pending writes, then the collect hooks (e.g. queue-size gauges)."""
        self.flush()
        for hook in list(self._hooks):
            try:
                hook()
            except Exception as exc:
                internal_error("registry.collect_hook", exc)

    def snapshot(
        self,
        names: Collection[str] | None = None,
        *,
        prepare: bool = True,
        reuse: dict[str, dict[AttrKey, HistogramPoint]] | None = None,
        offer: Callable[[], None] | None = None,
    ) -> Snapshot:
        """Every family with at least one series (only ``names`` when given), copied consistently per series.

        ``prepare`` first applies pending writes and the collect hooks (:meth:`run_collect_hooks`); a reader on
        the trading event loop (the live stream) passes ``False`` and reads what the applier thread applied.
        ``reuse``, a dict the reader keeps between calls, lets histogram series that did not change since its
        last snapshot give the same point again instead of a new copy (:meth:`Histogram.family`).
        ``offer``, called after each family, lets a reader on a background thread give the GIL back to the
        trading thread between families (``_internal.gil.Slices.offer``).
        """
        if prepare:
            self.run_collect_hooks()
        now = points_ns()
        if names is None:
            instruments: Sequence[Instrument[Any]] = list(self._instruments.values())
        else:
            get = self._instruments.get
            instruments = [i for i in (get(n) for n in names) if i is not None]
        families: list[Family] = []
        for inst in instruments:
            if reuse is not None and type(inst) is Histogram:
                fam: Family | None = inst.family(reuse.setdefault(inst.name, {}))
            else:
                fam = inst.family()
            if fam is not None:
                families.append(fam)
            if offer is not None:
                offer()
        return Snapshot(now, families)

    # -- creation
    def _get_or_create(
        self,
        cls: type[InstrumentT],
        name: str,
        unit: str,
        description: str,
        *extra: Any,
        aggregation: Aggregation | None = None,
    ) -> InstrumentT:
        existing = self._instruments.get(name)
        if existing is None:
            if not isinstance(name, str) or not _NAME_RE.match(name):
                raise ValueError(
                    f"invalid instrument name {name!r}: expected a letter, then up to 254 of [A-Za-z0-9_./-]"
                )
            # Instrument names are case-insensitive in OpenTelemetry; the SDK keeps them in lower case.
            name = name.lower()
            existing = self._instruments.get(name)
        if (
            existing is not None
            and existing.name in self._kept
            and self._differs(existing, cls, unit, description, extra[0] if extra else None, aggregation)
        ):
            kept_name, existing = existing.name, None  # no reference left here: it may go
            existing = self._forget_if_unheld(kept_name)
        if existing is not None:
            if type(existing) is not cls:
                raise ValueError(f"instrument {name!r} already exists as a {existing.kind}, not a {cls.kind}")
            if aggregation is not None and aggregation != existing.aggregation:
                self._reaggregate(existing, aggregation)
            self._redeclared(existing, unit, extra[0] if extra else None)
            return existing  # type: ignore[return-value]
        if not _valid_unit(unit):
            warn_once(
                f"unit:{name}", "instrument %r: unit %r is not ASCII of at most 63 chars; using no unit", name, unit
            )
            self.self_metrics.invalid.add(1, {"instrument": name, "reason": "unit"})
            unit = ""
        cls.check_aggregation(name, aggregation)  # a bad value raises before anything is created
        with self._lock:
            existing = self._instruments.get(name)
            if existing is None:
                existing = cls(self, name, unit, description or "", *extra, aggregation=aggregation)
                self._instruments[name] = existing
        return existing  # type: ignore[return-value]

    def _redeclared(self, inst: Instrument[Any], unit: Any, bounds: Sequence[float] | None) -> None:
        """Another declaration of ``inst`` naming another unit or other histogram bounds: the first declaration stays
        (the series exist, and Prometheus names them by the unit). Said once per instrument, on stderr too, and counted
        (``reason="redeclared"``): before, the second declaration was silently ignored (a histogram's new buckets, a
        notebook cell re-run with ``ms`` for ``s``). An omitted unit or bounds asks for nothing: no warning."""
        differs = []
        if unit and _valid_unit(unit) and unit != inst.unit:
            differs.append(f"unit {unit!r} (it has {inst.unit!r})")
        old_bounds = getattr(inst, "bounds", None)
        if bounds is not None and old_bounds is not None:
            try:
                new_bounds = tuple(float(x) for x in bounds)
            except (TypeError, ValueError):  # not numbers: not what it has either
                new_bounds = ()
            if new_bounds != old_bounds:
                differs.append(f"bounds {list(bounds)!r} (it has {list(old_bounds)!r})")
        if not differs:
            return
        self.self_metrics.invalid.add(1, {"instrument": inst.name, "reason": "redeclared"})
        warn_once(
            f"redeclared:{inst.name}",
            "instrument %r was declared before; this declaration's %s is not applied: the first declaration of a "
            "name wins (give the new one another name, or restart the process, a notebook's kernel, to change it)",
            inst.name,
            " and ".join(differs),
            console=True,
        )

    def _reaggregate(self, inst: Instrument[Any], aggregation: Aggregation) -> None:
        """Another declaration of ``inst`` names another aggregation: the first explicit one stays (said once)."""
        checked = inst.check_aggregation(inst.name, aggregation)
        if not inst.declared:  # created with the kind's default, declared now: the declaration wins
            inst.aggregation, inst.declared = checked, True
            return
        warn_once(
            f"aggregation:{inst.name}",
            "instrument %r was declared with aggregation=%r; ignoring aggregation=%r",
            inst.name,
            inst.aggregation,
            aggregation,
        )

    def counter(
        self, name: str, unit: str = "", description: str = "", *, aggregation: Aggregation | None = None
    ) -> Counter:
        return self._get_or_create(Counter, name, unit, description, aggregation=aggregation)

    def updown_counter(
        self, name: str, unit: str = "", description: str = "", *, aggregation: Aggregation | None = None
    ) -> UpDownCounter:
        return self._get_or_create(UpDownCounter, name, unit, description, aggregation=aggregation)

    def gauge(
        self, name: str, unit: str = "", description: str = "", *, aggregation: Aggregation | None = None
    ) -> Gauge:
        return self._get_or_create(Gauge, name, unit, description, aggregation=aggregation)

    def histogram(
        self,
        name: str,
        unit: str = "",
        description: str = "",
        bounds: Sequence[float] | None = None,
        *,
        aggregation: Aggregation | None = None,
    ) -> Histogram:
        return self._get_or_create(Histogram, name, unit, description, bounds, aggregation=aggregation)

    def instruments(self) -> list[Instrument[Any]]:
        return list(self._instruments.values())

    def get(self, name: str) -> Instrument[Any] | None:
        return self._instruments.get(name) or self._instruments.get(name.lower())

    def __iter__(self) -> Iterator[Instrument[Any]]:
        return iter(self.instruments())

    # -- attributes
    def normalize(self, instrument: Instrument[Any], attributes: Mapping[str, Any]) -> AttrKey:
        """A sorted, hashable attribute set: keys as strings, values str/bool/int/float, long strings cut,
        secrets masked (a secret-named key's value, secret text, known secret values). Runs once per attribute
        set (instruments cache the result), never per measurement.

        Bad input is fixed and counted (``tradeobs.agent.measurements.invalid``), never raised: an attribute
        mapping that cannot be read becomes no attributes, a key that is not a string its text, a value that is
        not str/bool/int/float (or an int outside 64 bits) its text, NaN and infinities their text.
        """
        try:
            pairs = list(attributes.items())
        except Exception:  # not a mapping, or one whose items() raises: bad input
            self.on_invalid(instrument, "attributes_unreadable", type(attributes).__name__)
            return ()
        red = default_redactor()
        seen: dict[str, str | bool | int | float] = {}
        for k, v in pairs:
            if type(k) is not str:
                k = str.__str__(k) if isinstance(k, str) else safe_str(k)
                self.on_invalid(instrument, "attribute_key_coerced", k)
            if len(k) > MAX_ATTR_LEN:
                self.on_invalid(instrument, "attribute_key_truncated", k)
                k = k[:MAX_ATTR_LEN]
            if not k.isascii() and not is_utf8(k):
                self.on_invalid(instrument, "attribute_key_not_utf8", k)
                k = as_utf8(k)
            t = type(v)
            if t is str or t is bool or t is int or t is float:
                pass
            elif isinstance(v, bool):
                v = bool(v)
            elif isinstance(v, int):
                v = int(v)
            elif isinstance(v, float):
                v = float(v)
            elif isinstance(v, str):
                v = str.__str__(v)
            else:
                self.on_invalid(instrument, "attribute_coerced", k)
                v = safe_str(v)
            if isinstance(v, float) and not math.isfinite(v):
                v = str(v)
            elif type(v) is int and not _INT64_MIN <= v <= _INT64_MAX:
                self.on_invalid(instrument, "attribute_coerced", k)
                v = str(v)
            v = red.value(k, v)  # masked, or scrubbed text
            if isinstance(v, str) and len(v) > MAX_ATTR_LEN:
                self.on_invalid(instrument, "attribute_truncated", k)
                v = v[:MAX_ATTR_LEN]
            if type(v) is str and not v.isascii() and not is_utf8(v):
                # A lone surrogate (text decoded with surrogateescape): no output format can carry it, and one
                # such label made every scrape fail.
                self.on_invalid(instrument, "attribute_not_utf8", k)
                v = as_utf8(v)
            seen[k] = v  # a key given twice (two keys with the same text): the last wins
        return tuple(sorted(seen.items(), key=lambda kv: kv[0]))

    # -- self-observation
    @property
    def self_metrics(self) -> SelfMetrics:
        """The agent's own ``tradeobs.agent.*`` instruments in this registry."""
        selfm = self._selfm
        if selfm is None:
            selfm = self._selfm = SelfMetrics(self)
        return selfm

    def count_internal_error(self, site: str) -> None:
        """``_errors.internal_error`` counts here for the process registry."""
        self.self_metrics.internal_errors.add(1, {"site": site})

    def on_overflow(self, instrument: Instrument[Any]) -> None:
        overflow = self.self_metrics.metric_overflow
        # Past max_series overflowing instruments this counter overflows too; it is called with its own lock held
        # then, and adding to it here would wait for that lock for ever. The add that overflowed it is counted all
        # the same, in its overflow series.
        if instrument is not overflow:
            overflow.add(1, {"instrument": instrument.name})
        gauge = isinstance(instrument, Gauge)
        setting = "TRADEOBS_MAX_GAUGE_SERIES" if gauge else "TRADEOBS_MAX_SERIES"
        args = (instrument.name, instrument.limit(), _GAUGE_LOSES if gauge else "", setting)
        if warn_once(f"overflow:{instrument.name}", _OVERFLOW, *args) and setting not in self._overflow_told:
            # The agent's own records go to the system log only: the first instrument past each limit is said on the
            # console too (the others are in the log, all of them counted in tradeobs.agent.metric.overflow).
            self._overflow_told.add(setting)
            if not _errors.on_console():
                text = secret_values.mask(_OVERFLOW % args)
                with contextlib.suppress(OSError, ValueError):  # stderr closed or gone: the log has it
                    print(f"tradeobs: {text}; any others past it are in the system log", file=sys.stderr, flush=True)

    def on_invalid(self, instrument: Instrument[Any], what: str, value: object) -> None:
        self.self_metrics.invalid.add(1, {"instrument": instrument.name, "reason": what})
        if what == "value":  # the value as given, its type, and what a measurement of this instrument may be
            warn_once(
                f"invalid:{instrument.name}:{what}",
                "instrument %r: dropped value %s (%s): a measurement is a finite %snumber (int, float, Decimal, numpy)",
                instrument.name,
                safe_str(value)[:80],
                type(value).__name__,
                "non-negative " if getattr(instrument, "monotonic", False) else "",
            )
            return
        warn_once(
            f"invalid:{instrument.name}:{what}",
            "instrument %r: dropped or fixed %s %s",
            instrument.name,
            what,
            safe_str(value)[:80],
        )


def safe_str(value: object) -> str:
    """``str(value)``, or a marker when its ``__str__`` raises or returns something else (hostile input never
    raises into the caller); at most ``4 * MAX_ATTR_LEN`` characters are kept before scrubbing."""
    try:
        s = str(value)
    except Exception:  # any exception from a user's __str__ is bad input, not our error
        return f"<unprintable {type(value).__name__}>"
    if type(s) is not str:  # a str subclass returned by a __str__
        s = str.__str__(s)
    return s[: 4 * MAX_ATTR_LEN]


def _new_process_registry() -> Registry:
    reg = Registry()
    _errors.set_counter(reg.count_internal_error)
    return reg


_REGISTRY = _new_process_registry()


def _after_fork_in_child() -> None:
    reg = _REGISTRY
    if reg._instruments:
        reg.fork_baseline = reg.snapshot(prepare=False)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def get_registry() -> Registry:
    """The process-wide registry that ``init()`` connects to the exporters."""
    return _REGISTRY


def reset_registry() -> None:
    """The process registry back to no measurement (tests: ``tradeobs_agent.testing.reset``), its points' stamps from
    the wall clock: the same :class:`Registry`, restarted (:meth:`Registry.restart`). Before (2026-12-07) a new
    registry replaced it, and the instruments and ``TradingTelemetry`` objects a module made at import went on
    recording into the old one, which nothing read any more: a test of a bot that binds its instruments once saw none
    of its metrics."""
    _clock.reset()
    _REGISTRY.restart()
    _errors.set_counter(_REGISTRY.count_internal_error)
