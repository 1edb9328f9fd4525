"""logs.links: a correlation id or an exception puts a log line on a trace, resolved on the worker."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.trace import INVALID_SPAN_CONTEXT, SpanContext, TraceFlags

from tests.unit.logs._logs_helpers import Env
from tradeobs_agent import _errors
from tradeobs_agent.logs import correlate, get_logger, links

JOB = SpanContext(0x1234, 0x99, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED))


class _Jobs:
    """A resolver for ``job_id``: records where and with what it was called."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, SpanContext | None, str]] = []

    def __call__(self, value: Any, current: SpanContext | None) -> SpanContext | None:
        self.calls.append((value, current, threading.current_thread().name))
        return JOB if value == "j-1" else None


@pytest.fixture
def jobs() -> Iterator[_Jobs]:
    r = _Jobs()
    links.register_trace_resolver("job_id", r)
    yield r
    links.unregister_trace_resolver("job_id", r)


def test_a_resolved_id_puts_the_line_on_its_trace_in_file_and_otlp(env: Env, jobs: _Jobs) -> None:
    log = get_logger("strategy")
    with correlate(job_id="j-1"):
        log.info("inside the job")
        logging.getLogger("lib").warning("a stdlib logger too")  # the root handler's path
    with correlate(job_id="j-2"):
        log.info("an id the resolver does not know")
    log.info("no id")
    env.flush()
    by_msg = {r["message"]: r for r in env.lines("strategy") + env.lines("service")}
    for msg in ("inside the job", "a stdlib logger too"):
        assert by_msg[msg]["trace_id"] == f"{0x1234:032x}" and by_msg[msg]["span_id"] == f"{0x99:016x}"
        assert by_msg[msg]["job_id"] == "j-1"
    assert "trace_id" not in by_msg["an id the resolver does not know"]
    assert "trace_id" not in by_msg["no id"]
    otlp = {r.body: r for r in env.otlp_records()}
    assert (otlp["inside the job"].trace_id, otlp["inside the job"].span_id) == (0x1234, 0x99)
    assert otlp["a stdlib logger too"].trace_id == 0x1234
    assert otlp["no id"].trace_id == 0
    # Resolved on the worker, never on the thread that logged; a line without the key costs no call.
    assert {c[0] for c in jobs.calls} == {"j-1", "j-2"}
    assert {c[2] for c in jobs.calls} == {"tradeobs-logs"}


def test_the_resolver_sees_the_current_span_and_none_keeps_it(env: Env, jobs: _Jobs) -> None:
    tracer = env.agent.tracer("test")
    with tracer.start_as_current_span("request") as span, correlate(job_id="j-2"):
        get_logger("strategy").info("in a request")
    env.flush()
    [rec] = env.lines("strategy")
    sc = span.get_span_context()
    assert rec["trace_id"] == f"{sc.trace_id:032x}"  # the resolver said None: unchanged
    assert jobs.calls[0][1] == sc


def test_a_resolver_that_raises_is_an_internal_error_and_the_line_is_written(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(_errors.ENV_STRICT)
    monkeypatch.setattr(_errors, "_strict", False)  # as in production: counted, never raised

    def broken(value: Any, current: SpanContext | None) -> SpanContext | None:
        raise KeyError(value)

    links.register_trace_resolver("job_id", broken)
    try:
        with correlate(job_id="j-1"):
            get_logger("strategy").info("still written")
        env.flush()
    finally:
        links.unregister_trace_resolver("job_id", broken)
    [rec] = env.lines("strategy")
    assert rec["message"] == "still written" and "trace_id" not in rec and "tradeobs.error" not in rec
    assert _errors.internal_error_counts() == {"logs.trace_resolver": 1}
    _errors.reset()  # seen and checked: not a failure of this test


def test_registration_is_idempotent_and_checked() -> None:
    r = _Jobs()
    before = links.resolvers
    links.register_trace_resolver("job_id", r)
    links.register_trace_resolver("job_id", r)
    assert links.resolvers == (*before, ("job_id", r))
    links.unregister_trace_resolver("job_id", r)
    assert links.resolvers == before
    with pytest.raises(ValueError, match="non-empty string"):
        links.register_trace_resolver("", r)
    with pytest.raises(ValueError, match="callable"):
        links.register_trace_resolver("job_id", "not a function")  # type: ignore[arg-type]


def test_record_ids_add_fields_and_the_records_own_ids_win(env: Env, jobs: _Jobs) -> None:
    """register_record_ids: more ids of what a correlation id names, on the record (file and OTLP), computed on the
    worker with the record's span context after the resolvers; its own correlation ids and extra win a clash."""
    calls: list[tuple[Any, SpanContext | None, str]] = []

    def ids_of(value: Any, span_context: SpanContext | None) -> dict[str, str] | None:
        calls.append((value, span_context, threading.current_thread().name))
        return {"job_run": f"{value}-run", "job_host": "h-1"} if value == "j-1" else None

    links.register_record_ids("job_id", ids_of)
    try:
        log = get_logger("strategy")
        with correlate(job_id="j-1"):
            log.info("in the job")
            with correlate(job_host="mine"):
                log.info("own id", extra={"job_run": "extra"})
        with correlate(job_id="j-2"):
            log.info("unknown job")
        env.flush()
    finally:
        links.unregister_record_ids("job_id", ids_of)
    by_msg = {r["message"]: r for r in env.lines("strategy")}
    assert (by_msg["in the job"]["job_run"], by_msg["in the job"]["job_host"]) == ("j-1-run", "h-1")
    assert (by_msg["own id"]["job_run"], by_msg["own id"]["job_host"]) == ("extra", "mine")
    assert "job_run" not in by_msg["unknown job"]
    otlp = {r.body: r for r in env.otlp_records()}
    assert otlp["in the job"].attributes["job_run"] == "j-1-run"
    assert {c[2] for c in calls} == {"tradeobs-logs"} and calls[0][1] == JOB  # after the resolver, on the worker


def test_record_ids_that_raise_are_an_internal_error_and_the_line_is_written(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(_errors.ENV_STRICT)
    monkeypatch.setattr(_errors, "_strict", False)  # as in production: counted, never raised

    def broken(value: Any, span_context: SpanContext | None) -> dict[str, str] | None:
        raise KeyError(value)

    links.register_record_ids("job_id", broken)
    try:
        with correlate(job_id="j-1"):
            get_logger("strategy").info("still written")
        env.flush()
    finally:
        links.unregister_record_ids("job_id", broken)
    [rec] = env.lines("strategy")
    assert rec["message"] == "still written" and rec["job_id"] == "j-1" and "tradeobs.error" not in rec
    assert _errors.internal_error_counts() == {"logs.record_ids": 1}
    _errors.reset()  # seen and checked: not a failure of this test


def test_record_ids_registration_is_idempotent_and_checked() -> None:
    def ids_of(value: Any, span_context: SpanContext | None) -> None:
        return None

    before = links.record_ids
    links.register_record_ids("job_id", ids_of)
    links.register_record_ids("job_id", ids_of)
    assert links.record_ids == (*before, ("job_id", ids_of))
    links.unregister_record_ids("job_id", ids_of)
    assert links.record_ids == before
    with pytest.raises(ValueError, match="non-empty string"):
        links.register_record_ids("", ids_of)
    with pytest.raises(ValueError, match="callable"):
        links.register_record_ids("job_id", "not a function")  # type: ignore[arg-type]


def test_an_exception_remembers_the_innermost_valid_span_and_its_chain_finds_it() -> None:
    other = SpanContext(0x5678, 0x1, is_remote=False)
    exc = ValueError("boom")
    links.remember_span(exc, INVALID_SPAN_CONTEXT)  # not noted
    assert links.exception_span((ValueError, exc, None)) is None
    links.remember_span(exc, JOB)
    links.remember_span(exc, other)  # an outer span: the inner one stays
    assert links.exception_span((ValueError, exc, None)) == JOB
    try:
        try:
            raise exc
        except ValueError as inner:
            raise RuntimeError("wrapped") from inner
    except RuntimeError as outer:
        assert links.exception_span((RuntimeError, outer, outer.__traceback__)) == JOB
    assert links.exception_span("Traceback (most recent call last): ...") is None  # exc_text: nothing to read
    assert links.exception_span(None) is None
    assert "__tradeobs_span_context__" not in str(exc) and repr(exc) == "ValueError('boom')"


def test_a_logged_exception_outside_any_span_carries_the_span_it_escaped_from(env: Env) -> None:
    tracer = env.agent.tracer("test")
    try:
        with tracer.start_as_current_span("request") as span:
            try:
                raise RuntimeError("escaped")
            except RuntimeError as exc:
                links.remember_span(exc, span.get_span_context())
                raise
    except RuntimeError as exc:
        logging.getLogger("server").error("Exception in application", exc_info=exc)
        get_logger("system").exception("the same, on a stream logger")
    env.flush()
    sc = span.get_span_context()
    recs = env.lines("service") + env.lines("system")
    assert len(recs) == 2
    for rec in recs:
        assert rec["trace_id"] == f"{sc.trace_id:032x}" and rec["span_id"] == f"{sc.span_id:016x}"
        assert "RuntimeError: escaped" in rec["exception.stacktrace"]
    assert {r.trace_id for r in env.otlp_records()} == {sc.trace_id}
