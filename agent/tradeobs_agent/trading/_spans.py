"""Already-ended child spans for order steps, without the SDK's start/end machinery when that is exact.

>>> steps = StepSpans.for_tracer(tracer)                              # doctest: +SKIP
>>> root = steps.start_root("order", attrs, time.time_ns())          # doctest: +SKIP
>>> ctx = steps.emit(root.get_span_context(), "submit", start_ns, end_ns, None)  # doctest: +SKIP
>>> root.end()                                                        # doctest: +SKIP

Intentional divergence from the OTel SDK, and why: an order step (``risk_check``,
``submit``, ``ack``, ``fill``) is a child span that is created and ended at the
same instant with known start and end times. Through ``Tracer.start_span`` +
``Span.end`` that costs a context lookup, a sampling decision, a mutable
``Span`` with its own lock, bounded attribute and event containers,
``on_start``/``_on_ending`` calls and a copy into a ``ReadableSpan`` at
``end()``; about 25 us per step, several steps per order, on the trading
thread. :class:`StepSpans` builds the ``ReadableSpan`` that ``end()`` would
have handed to the span processors and calls their ``on_end`` directly.

The order's root span gets the same treatment (:meth:`StepSpans.start_root`): its
span context (ids from the tracer's id generator, the tracer's sampler asked with
the inputs ``Tracer.start_span`` gives it) is made at the signal, and at ``end()``
the ``ReadableSpan`` is built with the recorded start time and handed to the
processors. In between, :class:`RootSpan` keeps only a dict of attributes and a
status; any other ``Span`` call on it (``add_event``, ``record_exception``, a
value that the SDK would clean, an attribute past the limit, ...) first turns it
into the SDK's own span, started at the same time with the same context and
attributes, and then delegates, so what is exported is what the SDK exports.

When every span processor is a ``BatchSpanProcessor`` whose exporter has the
fast OTLP encoder (the agent's own pipeline), an ended span is not even a
``ReadableSpan``: it is written straight to its OTLP entry
(``otlp_encode.encode_step_span``, an ``Encoded`` item in the processor's
queue), the bytes that encoder would write for it on the export thread (tests
hold the two together), so the export thread only joins bytes.

It does so only when the result is exactly what the SDK would have produced,
and otherwise (``StepSpans.for_tracer`` returns ``None``) the caller uses the
SDK path:

* the tracer is the SDK's ``Tracer``, enabled, with the SDK's internal span
  metrics off (``OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED``);
* every span processor is the SDK's ``BatchSpanProcessor`` or
  ``SimpleSpanProcessor`` (their ``on_start`` and ``_on_ending`` do nothing), so a
  processor of your own still sees every step through the normal path;
* the sampler is ``ALWAYS_ON``, ``TraceIdRatioBased`` or ``ParentBased`` with the
  default local-parent delegates: for a child of a sampled local root these
  sample, with the sampler's attributes being the step's own and the root's
  trace state, exactly as emitted here;
* span limits: attributes are bounded as the SDK bounds them
  (``BoundedAttributes``) unless there are fewer than the attribute count limit
  and no value length limit is set, the default, where a plain dict is equal.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

from opentelemetry import trace as trace_api
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.trace import ReadableSpan, sampling
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState
from opentelemetry.trace.span import DEFAULT_TRACE_STATE

from .._internal import fastpath, gil
from .._internal import otel_private as otp
from .._internal.otlp_encode import UNSET_STATUS, Encoded, encode_step_span

__all__ = ["RootSpan", "StepSpans"]

_INTERNAL = SpanKind.INTERNAL
_UNSET = UNSET_STATUS  # the status encode_step_span writes without looking at it
_OK = StatusCode.OK
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_SIMPLE_VALUES = (str, bool, int, float)
_time_ns = time.time_ns
_sdk_logger = logging.getLogger("opentelemetry.sdk.trace")  # the SDK's own warnings, the same text
_RECORD_AND_SAMPLE = sampling.Decision.RECORD_AND_SAMPLE
_DROP = sampling.Decision.DROP
_SPAN_ID_MAX = 2**64 - 1
_TRACE_ID_MAX = 2**128 - 1
_new_tuple = tuple.__new__


def _context(trace_id: int, span_id: int, flags: TraceFlags, state: TraceState | None) -> SpanContext:
    """``SpanContext(trace_id, span_id, is_remote=False, trace_flags=flags, trace_state=state)`` without its
    Python ``__new__``: a SpanContext is a tuple whose last field is ``is_valid`` (a test checks equality)."""
    valid = 0 < trace_id <= _TRACE_ID_MAX and 0 < span_id <= _SPAN_ID_MAX
    ctx: SpanContext = _new_tuple(
        SpanContext, (trace_id, span_id, False, flags, state if state is not None else DEFAULT_TRACE_STATE, valid)
    )
    return ctx


_room = gil.QueueRoom()  # shared by every batch queue the steps go to: one stuck worker quiets the waits for all


def _dropped_span() -> None:
    from ..metrics import get_registry

    get_registry().self_metrics.items_dropped.add(1, {"signal": "traces", "reason": "queue_full"})


def _batch_put(p: BatchSpanProcessor) -> Any:
    """``BatchSpanProcessor.on_end`` for a sampled span, but a full queue gets a moment to make room off the trading
    thread (``otel_private.batch_put``), and a span dropped all the same is counted. The SDK's own emit dropped
    the oldest span of a burst larger than the queue (2,048 by default: 700 orders' steps, or a shutdown's last
    journal flush) with a single "Queue full" log line, so one drop was counted for hundreds lost."""
    bp = otp.batch_processor(p)
    room_put, put = _room.put, otp.batch_put

    def emit(span: ReadableSpan) -> None:
        if not room_put(put, bp, span):
            _dropped_span()

    return emit


def _on_end_for(processors: tuple[Any, ...]) -> Any:
    """What ``SynchronousMultiSpanProcessor.on_end`` does for a span that is sampled (ours always are): each
    ``BatchSpanProcessor.on_end`` checks the sampled flag, then emits into its batch queue (:func:`_batch_put`)."""
    emits = tuple(_batch_put(p) if type(p) is BatchSpanProcessor else p.on_end for p in processors)
    if len(emits) == 1:
        return emits[0]

    def on_end(span: ReadableSpan) -> None:
        for emit in emits:
            emit(span)

    return on_end


class StepSpans:
    """Emits ended child spans straight to a tracer's span processors (see the module docstring)."""

    __slots__ = (
        "_always_on",
        "_encoded",
        "_flags",
        "_gen",
        "_gen_trace",
        "_limits",
        "_max_attrs",
        "_multi",
        "_on_end",
        "_procs",
        "_resource",
        "_sampler",
        "_scope",
        "_scope_info",
    )

    def __init__(self, tracer: Any, encoded: bool) -> None:
        self._multi = multi = tracer.span_processor
        self._procs = procs = otp.span_processors(multi)  # replaced (a new tuple) when a processor is added
        self._on_end = _on_end_for(procs)
        self._encoded = encoded
        ids = tracer.id_generator
        self._gen = ids.generate_span_id
        self._gen_trace = ids.generate_trace_id
        random_flag = getattr(TraceFlags, "RANDOM_TRACE_ID", 0)
        random_ids = random_flag and getattr(ids, "is_trace_id_random", lambda: False)()
        self._flags = TraceFlags(TraceFlags.SAMPLED | random_flag) if random_ids else _SAMPLED
        self._sampler = sampler = tracer.sampler
        self._always_on = sampler is sampling.ALWAYS_ON or (
            type(sampler) is sampling.ParentBased and otp.parent_based_delegates(sampler)[0] is sampling.ALWAYS_ON
        )
        self._resource = tracer.resource
        self._scope = otp.tracer_scope(tracer)
        self._scope_info = tracer.instrumentation_info
        self._limits = limits = otp.tracer_limits(tracer)
        # None: bound every attribute dict as the SDK does; else the count a plain dict may have.
        self._max_attrs: int | None = (
            limits.max_span_attributes
            if limits.max_span_attribute_length is None and limits.max_span_attributes is not None
            else None
        )

    @classmethod
    def for_tracer(cls, tracer: Any) -> StepSpans | None:
        """A :class:`StepSpans` for ``tracer`` when the fast path is exact (``fastpath.decide``), else ``None``."""
        plan = fastpath.decide("traces", tracer)
        return cls(tracer, plan.encoded) if plan.exact else None

    def current(self) -> bool:
        """False once a span processor was added to the provider: check again with :meth:`for_tracer`."""
        return otp.span_processors(self._multi) is self._procs

    def start_root(
        self, name: str, attributes: dict[str, Any], start_ns: int, context: Any, simple: bool = False
    ) -> Any:
        """A new root span (no parent, no links, kind INTERNAL) started at ``start_ns``; see the module docstring.

        ``context`` is what ``Tracer.start_span`` would pass to the sampler (the caller's
        explicit context). Returns a :class:`RootSpan` when sampled, the SDK's own span when
        the sampler records without sampling, a ``NonRecordingSpan`` when it drops.
        ``simple=True`` promises that every attribute value is a str, bool, int or float, and
        hands ``attributes`` over (the span keeps the dict).
        """
        trace_id = self._gen_trace()
        if self._always_on and context is not None and not context:  # an explicit, empty Context
            # ALWAYS_ON (or ParentBased with it as root, and no parent in the empty context): the sampler's
            # answer is RECORD_AND_SAMPLE, the attributes as given, no trace state; not asked, it is the same.
            ctx = _context(trace_id, self._gen(), self._flags, None)
            attrs = attributes if simple else dict(attributes)
        else:
            result = self._sampler.should_sample(context, trace_id, name, _INTERNAL, attributes, ())
            if result.decision is not _RECORD_AND_SAMPLE:
                return self._unsampled(name, trace_id, result, start_ns)
            ctx = _context(trace_id, self._gen(), self._flags, result.trace_state)
            attrs = dict(result.attributes)
            simple = False
        root = RootSpan(self, name, ctx, start_ns, attrs)
        limit = self._max_attrs
        if (
            limit is None
            or len(attrs) > limit
            or not (simple or all(type(v) in _SIMPLE_VALUES for v in attrs.values()))
        ):
            root._materialize()  # the SDK would bound or clean these: let it
        return root

    def _unsampled(self, name: str, trace_id: int, result: Any, start_ns: int) -> Any:
        flags = TraceFlags(self._flags & ~TraceFlags.SAMPLED)
        ctx = SpanContext(trace_id, self._gen(), is_remote=False, trace_flags=flags, trace_state=result.trace_state)
        if result.decision is _DROP:
            return NonRecordingSpan(ctx)
        root = RootSpan(self, name, ctx, start_ns, dict(result.attributes))
        root._materialize()  # recorded but not sampled: rare, the SDK's span
        return root

    def emit(
        self,
        parent: SpanContext,
        name: str,
        start_ns: int,
        end_ns: int,
        attributes: dict[str, Any] | None,
        error: str | None = None,
    ) -> SpanContext:
        """Hand an ended child of ``parent`` (a sampled, local span context) to the processors; its context."""
        trace_id, parent_id, _, flags, state, _ = parent
        span_id = self._gen()
        ctx = _context(trace_id, span_id, flags, state)
        attrs: Any = attributes
        if attrs is not None:
            n = self._max_attrs
            if n is None or len(attrs) > n:
                attrs = self._bounded(attrs)
        if self._encoded and type(attrs) is not BoundedAttributes:
            # Written straight to its OTLP entry: what the exporter's fast encoder would write for the
            # ReadableSpan below (otlp_encode.encode_step_span; a test holds the two together).
            status = _UNSET if error is None else Status(StatusCode.ERROR, error)
            data = encode_step_span(trace_id, span_id, state, parent_id, name, start_ns, end_ns, attrs, status)
            self._on_end(Encoded(data, self._resource, self._scope))
            return ctx
        self._on_end(
            ReadableSpan(
                name=name,
                context=ctx,
                parent=parent,
                resource=self._resource,
                attributes=attrs if attrs is not None else {},
                kind=_INTERNAL,
                instrumentation_info=self._scope_info,
                status=_UNSET if error is None else Status(StatusCode.ERROR, error),
                start_time=start_ns,
                end_time=end_ns,
                instrumentation_scope=self._scope,
            )
        )
        return ctx

    def _bounded(self, attrs: dict[str, Any]) -> Any:
        limits = self._limits
        return BoundedAttributes(
            limits.max_span_attributes, attrs, immutable=True, max_value_len=limits.max_span_attribute_length
        )


class RootSpan(trace_api.Span):
    """A sampled root span that becomes a ``ReadableSpan`` only at ``end()`` (see the module docstring).

    >>> steps = StepSpans.for_tracer(tracer)                                       # doctest: +SKIP
    >>> root = steps.start_root("order", {"symbol": "AAPL"}, time.time_ns(), None)  # doctest: +SKIP
    >>> root.set_attribute("order.outcome", "filled"); root.end()                   # doctest: +SKIP

    Thread-safe like the SDK's span. Any call not handled cheaply here turns it into the SDK's span.
    """

    __slots__ = ("_attrs", "_ctx", "_end_ns", "_lock", "_name", "_real", "_start_ns", "_status", "_steps")

    def __init__(self, steps: StepSpans, name: str, ctx: SpanContext, start_ns: int, attributes: Any) -> None:
        self._steps = steps
        self._name = name
        self._ctx = ctx
        self._start_ns = start_ns
        self._attrs: Any = attributes if attributes is not None else {}
        self._status = _UNSET
        self._end_ns: int | None = None
        self._real: otp.SdkSpan | None = None
        self._lock = threading.Lock()

    def _materialize(self) -> otp.SdkSpan:
        """The SDK's span for this root, made on first need (call with the lock held, or before sharing)."""
        real = self._real
        if real is None:
            st = self._steps
            real = otp.new_sdk_span(
                name=self._name,
                context=self._ctx,
                sampler=st._sampler,
                resource=st._resource,
                attributes=self._attrs,
                span_processor=st._multi,
                kind=_INTERNAL,
                instrumentation_info=st._scope_info,
                limits=st._limits,
                instrumentation_scope=st._scope,
                start_ns=self._start_ns,
                status=self._status if self._status is not _UNSET else None,
            )
            self._real = real
        return real

    def _real_span(self) -> otp.SdkSpan:
        with self._lock:
            return self._materialize()

    # -- the calls OrderTrace makes: cheap while the values are ones the SDK keeps unchanged
    def get_span_context(self) -> SpanContext:
        return self._ctx

    def is_recording(self) -> bool:
        real = self._real
        return real.is_recording() if real is not None else self._end_ns is None

    def set_attribute(self, key: str, value: Any) -> None:
        self.set_attributes({key: value})

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        with self._lock:
            real = self._real
            if real is None and self._end_ns is None:
                attrs, limit = self._attrs, self._steps._max_attrs
                for k, v in attributes.items():
                    if type(k) is not str or not k or type(v) not in _SIMPLE_VALUES:
                        break
                    if k in attrs:
                        del attrs[k]  # the SDK's OrderedDict moves a re-set key to the end
                    elif limit is None or len(attrs) >= limit:
                        break
                    attrs[k] = v
                else:
                    return
                real = self._materialize()  # from the first value the SDK would treat specially
                attributes = {k: v for k, v in attributes.items() if k not in attrs or attrs[k] is not v}
        if real is None:
            _sdk_logger.warning("Setting attribute on ended span.")
            return
        real.set_attributes(attributes)

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        with self._lock:
            real = self._real
            if real is None and self._end_ns is None and isinstance(status, Status) and description is None:
                if self._status.status_code is not _OK and status.status_code is not StatusCode.UNSET:
                    self._status = status
                return
            if real is None and self._end_ns is None:
                real = self._materialize()
        if real is None:
            _sdk_logger.warning("Tried calling %s on an ended span.", "set_status")
            return
        real.set_status(status, description)

    def end(self, end_time: int | None = None) -> None:
        st = self._steps
        with self._lock:
            real = self._real
            if real is None:
                if self._end_ns is not None:
                    _sdk_logger.warning("Calling end() on an ended span.")
                    return
                if not st.current():  # a processor was added since: its _on_ending must run, the SDK's end does
                    real = self._materialize()
                else:
                    self._end_ns = end = end_time if end_time is not None else _time_ns()
        if real is not None:
            real.end(end_time)
            return
        if st._encoded:
            trace_id, span_id, _, _, state, _ = self._ctx
            data = encode_step_span(
                trace_id, span_id, state, None, self._name, self._start_ns, end, self._attrs, self._status
            )
            st._on_end(Encoded(data, st._resource, st._scope))
            return
        st._on_end(
            ReadableSpan(
                name=self._name,
                context=self._ctx,
                parent=None,
                resource=st._resource,
                attributes=self._attrs,
                kind=_INTERNAL,
                instrumentation_info=st._scope_info,
                status=self._status,
                start_time=self._start_ns,
                end_time=end,
                instrumentation_scope=st._scope,
            )
        )

    # -- everything else: the SDK's span does it
    def add_event(self, name: str, attributes: Any = None, timestamp: int | None = None) -> None:
        self._delegate().add_event(name, attributes, timestamp)

    def add_link(self, context: SpanContext, attributes: Any = None) -> None:
        self._delegate().add_link(context, attributes)

    def update_name(self, name: str) -> None:
        self._delegate().update_name(name)

    def record_exception(
        self,
        exception: BaseException,
        attributes: Any = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        self._delegate().record_exception(exception, attributes, timestamp, escaped)

    def _delegate(self) -> Any:
        with self._lock:
            if self._real is None and self._end_ns is not None:
                return _ENDED  # ended fast: like the SDK, later calls do nothing (it logs a warning)
            return self._materialize()

    def __repr__(self) -> str:
        return f'RootSpan(name="{self._name}", context={self._ctx})'


_ENDED = NonRecordingSpan(trace_api.INVALID_SPAN_CONTEXT)
