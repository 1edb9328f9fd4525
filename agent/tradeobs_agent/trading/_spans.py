"""Already-ended child spans for order steps, without the SDK's start/end machinery when that is exact.

>>> steps = StepSpans.for_tracer(tracer)                              # doctest: +SKIP
>>> ctx = steps.emit(root_ctx, "submit", start_ns, end_ns, None)     # doctest: +SKIP

Intentional divergence from the OTel SDK, and why: an order step (``risk_check``,
``submit``, ``ack``, ``fill``) is a child span that is created and ended at the
same instant with known start and end times. Through ``Tracer.start_span`` +
``Span.end`` that costs a context lookup, a sampling decision, a mutable
``Span`` with its own lock, bounded attribute and event containers,
``on_start``/``_on_ending`` calls and a copy into a ``ReadableSpan`` at
``end()``; about 25 us per step, several steps per order, on the trading
thread. :class:`StepSpans` builds the ``ReadableSpan`` that ``end()`` would
have handed to the span processors and calls their ``on_end`` directly.

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

import os
from typing import Any

from opentelemetry.sdk.environment_variables import OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED
from opentelemetry.sdk.trace import ReadableSpan, SynchronousMultiSpanProcessor, Tracer
from opentelemetry.sdk.trace import sampling as _s
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode

__all__ = ["StepSpans"]

_PROCESSORS = (BatchSpanProcessor, SimpleSpanProcessor)
_INTERNAL = SpanKind.INTERNAL
_UNSET = Status(StatusCode.UNSET)


def _exact_sampler(sampler: Any) -> bool:
    if sampler is _s.ALWAYS_ON or type(sampler) is _s.TraceIdRatioBased:
        return True
    if type(sampler) in (_s.ParentBased, _s.ParentBasedTraceIdRatio):
        # children of a sampled local root take local_parent_sampled: the default is ALWAYS_ON
        return sampler._local_parent_sampled is _s.ALWAYS_ON  # type: ignore[no-any-return]
    return False


class StepSpans:
    """Emits ended child spans straight to a tracer's span processors (see the module docstring)."""

    __slots__ = ("_gen", "_limits", "_max_attrs", "_multi", "_on_end", "_procs", "_resource", "_scope", "_scope_info")

    def __init__(self, tracer: Any) -> None:
        self._multi = multi = tracer.span_processor
        self._procs = multi._span_processors  # replaced (a new tuple) when a processor is added
        self._on_end = multi.on_end
        self._gen = tracer.id_generator.generate_span_id
        self._resource = tracer.resource
        self._scope = tracer._instrumentation_scope
        self._scope_info = tracer.instrumentation_info
        self._limits = limits = tracer._span_limits
        # None: bound every attribute dict as the SDK does; else the count a plain dict may have.
        self._max_attrs: int | None = (
            limits.max_span_attributes
            if limits.max_span_attribute_length is None and limits.max_span_attributes is not None
            else None
        )

    @classmethod
    def for_tracer(cls, tracer: Any) -> StepSpans | None:
        """A :class:`StepSpans` for ``tracer`` when the fast path is exact, else ``None``."""
        try:
            if type(tracer) is not Tracer or not tracer._is_enabled():
                return None
            if os.environ.get(OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED, "").strip().lower() == "true":
                return None
            multi = tracer.span_processor
            if type(multi) is not SynchronousMultiSpanProcessor:
                return None
            if not all(type(p) in _PROCESSORS for p in multi._span_processors):
                return None
            if not _exact_sampler(tracer.sampler):
                return None
            return cls(tracer)
        except Exception:  # an SDK without these internals: use the normal path
            return None

    def current(self) -> bool:
        """False once a span processor was added to the provider: check again with :meth:`for_tracer`."""
        return self._multi._span_processors is self._procs  # type: ignore[no-any-return]

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
        ctx = SpanContext(
            parent.trace_id,
            self._gen(),
            is_remote=False,
            trace_flags=parent.trace_flags,
            trace_state=parent.trace_state,
        )
        attrs: Any = attributes
        if attrs is not None:
            n = self._max_attrs
            if n is None or len(attrs) > n:
                attrs = self._bounded(attrs)
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
        from opentelemetry.attributes import BoundedAttributes

        limits = self._limits
        return BoundedAttributes(
            limits.max_span_attributes, attrs, immutable=True, max_value_len=limits.max_span_attribute_length
        )
