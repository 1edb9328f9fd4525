"""Is a fast path exact here? One decision for order spans, log records and the OTLP encoder.

>>> plan = decide("traces", tracer)            # doctest: +SKIP
>>> plan.exact, plan.encoded, plan.reason      # doctest: +SKIP
(True, True, '')

Each fast path produces exactly what the SDK's own path would (the tests hold
the two together). That is only true in a pipeline the agent knows: the SDK
version the assumptions were verified on (``otel_private``), the SDK's own
tracer/logger, the SDK's batch (and, for spans, simple) processors, samplers
whose decision for an order step is known, and, for ``encoded``, exporters that
take our pre-encoded items. Anything else (another SDK version, a span processor
or exporter of your own, a custom sampler, ``OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED``)
and that signal takes the SDK's path: :func:`decide` says why, once per signal and
reason (a warning when the SDK itself is not the tested one, else an info line),
and counts it in ``tradeobs.agent.fast_path.fallbacks{signal, reason}``.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Literal, NamedTuple

from opentelemetry.sdk.environment_variables import OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED
from opentelemetry.sdk.trace import SynchronousMultiSpanProcessor, Tracer, sampling
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

from .._errors import warn_once
from . import otel_private as otp

__all__ = ["Plan", "Signal", "decide"]

Signal = Literal["traces", "logs", "encoder"]


class Plan(NamedTuple):
    """What a fast path may do for one tracer, logger or exporter."""

    exact: bool  # the fast path produces what the SDK path would
    encoded: bool  # items may be queued already OTLP-encoded (every exporter behind the batch queues takes them)
    reason: str  # why not, when not exact ("" when exact)


def _no(reason: str) -> Plan:
    return Plan(False, False, reason)


def decide(signal: Signal, target: Any) -> Plan:
    """The one place that decides whether ``signal``'s fast path is exact for ``target``; reports a fallback.

    A tracer or logger that is not the SDK's (the API's no-op or proxy one: ``TradingTelemetry`` with the agent off,
    no ``init()``) has no fast path whatever the SDK is, and is said so before :func:`_common_reason`, whose first
    call evaluates the SDK assumptions (the OTLP and Prometheus exporters imported, SDK sources parsed: a second and
    more of CPU on a loaded machine, on the journal's applier at the first order, holding the GIL through imports).
    """
    reason = _not_the_sdks(signal, target) or _common_reason()
    plan: Plan
    if reason:
        plan = _no(reason)
    elif signal == "traces":
        plan = _traces(target)
    elif signal == "logs":
        plan = _logs(target)
    else:
        plan = _encoder(target)
    if not plan.exact:
        _report(signal, plan.reason)
    return plan


def _not_the_sdks(signal: Signal, target: Any) -> str:
    """The reason :func:`_traces` or :func:`_logs` gives first for a tracer or logger that is not the SDK's, or ""."""
    if signal == "traces" and type(target) is not Tracer:
        return "tracer_type"
    if signal == "logs" and type(target) is not otp.Logger:
        return "logger_type"
    return ""


def _common_reason() -> str:
    if otp.broken_assumptions():
        return "sdk_assumptions"
    if os.environ.get(OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED, "").strip().lower() == "true":
        return "sdk_internal_metrics"  # the SDK's own span/log metrics would miss our items
    return ""


def _encoded(batch_processors: list[Any]) -> bool:
    """Every batch queue's exporter takes pre-encoded items (our counting exporter around an OTLP one whose
    encoder is the agent's)."""
    return bool(batch_processors) and all(
        getattr(otp.batch_exporter(bp), "fast_encoding", False) is True for bp in batch_processors
    )


def _exact_sampler(sampler: Any) -> bool:
    """For a child of a sampled local root these sample with the step's own attributes and the root's state."""
    if sampler is sampling.ALWAYS_ON or type(sampler) is sampling.TraceIdRatioBased:
        return True
    if type(sampler) in (sampling.ParentBased, sampling.ParentBasedTraceIdRatio):
        return otp.parent_based_delegates(sampler)[1] is sampling.ALWAYS_ON
    return False


def _traces(tracer: Any) -> Plan:
    if type(tracer) is not Tracer:
        return _no("tracer_type")
    if not otp.tracer_enabled(tracer):
        return _no("tracer_disabled")
    multi = tracer.span_processor
    if type(multi) is not SynchronousMultiSpanProcessor:
        return _no("processor_type")
    procs = otp.span_processors(multi)
    if not all(type(p) in (BatchSpanProcessor, SimpleSpanProcessor) for p in procs):
        return _no("processor_type")
    if not _exact_sampler(tracer.sampler):
        return _no("sampler")
    batch = all(type(p) is BatchSpanProcessor for p in procs)
    return Plan(True, batch and _encoded([otp.batch_processor(p) for p in procs]), "")


def _logs(logger: Any) -> Plan:
    if type(logger) is not otp.Logger:
        return _no("logger_type")
    if not otp.logger_enabled(logger):
        return _no("logger_disabled")
    multi, procs = otp.log_processors(logger)
    if type(multi) is not otp.SynchronousMultiLogRecordProcessor:
        return _no("processor_type")
    if not procs or not all(type(p) is otp.BatchLogRecordProcessor for p in procs):
        return _no("processor_type")
    return Plan(True, _encoded([otp.batch_processor(p) for p in procs]), "")


def _encoder(exporter: Any) -> Plan:
    """The agent's encoder for an OTLP exporter of spans, log records or metrics, over gRPC or HTTP."""
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter

    known = (
        OTLPSpanExporter,
        OTLPMetricExporter,
        otp.otlp_log_exporter_class("grpc"),
        HttpSpanExporter,
        HttpMetricExporter,
        otp.otlp_log_exporter_class("http/protobuf"),
    )
    if type(exporter) not in known:
        return _no("exporter_type")
    return Plan(True, True, "")


_EXPECTED = {"processor_type", "exporter_type", "logger_type", "tracer_type"}  # a pipeline of yours: normal


def _report(signal: Signal, reason: str) -> None:
    from ..metrics import get_registry

    get_registry().self_metrics.fast_path_fallbacks.add(1, {"signal": signal, "reason": reason})
    if reason == "sdk_assumptions":
        warn_once(
            f"fastpath:{signal}:{reason}",
            "tradeobs: the OpenTelemetry SDK here (%s) is not the one the agent's fast paths were verified on "
            "(%s.x: %s); %s take the SDK's own path, which is correct but slower",
            otp.sdk_version(),
            otp.TESTED_SDK,
            "; ".join(otp.broken_assumptions()),
            signal,
        )
    else:
        warn_once(
            f"fastpath:{signal}:{reason}",
            "tradeobs: %s take the OpenTelemetry SDK's own path here (%s)%s",
            signal,
            reason,
            "" if reason in _EXPECTED else "; counted in tradeobs.agent.fast_path.fallbacks",
            level=logging.INFO,
        )
