"""The pipeline end to end: structure, correlation, trace ids, policies, shutdown, coexistence."""

from __future__ import annotations

import asyncio
import logging
import re
import threading

import tradeobs_agent
from tests.unit.logs._logs_helpers import BlockingStream, Env, hold_worker
from tradeobs_agent.logs import StreamLogger, correlate, get_logger

TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def test_record_structure_in_file_and_otlp(env: Env) -> None:
    log = get_logger("execution")
    assert isinstance(log, StreamLogger) and isinstance(log, logging.Logger)
    log.info("order %s filled", "o-1", extra={"symbol": "AAPL", "qty": 100})
    env.flush()
    [rec] = env.lines("execution")
    assert TS.match(rec["timestamp"])
    assert rec["level"] == "INFO"
    assert rec["stream"] == "execution"
    assert rec["logger"] == "tradeobs.execution"
    assert rec["message"] == "order o-1 filled"
    assert rec["service.name"] == "test-svc"
    assert rec["service.instance.id"] == env.agent.instance_id
    assert rec["symbol"] == "AAPL" and rec["qty"] == 100
    assert "trace_id" not in rec  # no span active
    [otel] = env.otlp_records()
    assert otel.body == "order o-1 filled"
    assert otel.severity_text == "INFO"
    assert otel.attributes["stream"] == "execution"
    assert otel.attributes["symbol"] == "AAPL"


def test_each_stream_has_its_own_file_and_level(env: Env) -> None:
    get_logger("market_data").setLevel(logging.WARNING)
    get_logger("market_data").info("tick")  # below the stream's level
    get_logger("market_data").warning("gap")
    get_logger("risk").info("limit ok")
    logging.getLogger("thirdparty.lib").warning("plain stdlib logger")
    env.flush()
    assert [r["message"] for r in env.lines("market_data")] == ["gap"]
    assert [r["message"] for r in env.lines("risk")] == ["limit ok"]
    [svc] = env.lines("service")
    assert svc["stream"] == "service" and svc["logger"] == "thirdparty.lib"


def test_trace_and_span_ids_inside_a_span(env: Env) -> None:
    tracer = env.agent.tracer("test")
    with tracer.start_as_current_span("submit") as span:
        get_logger("execution").info("inside")
        logging.getLogger("other").warning("inside too")
    env.flush()
    ctx = span.get_span_context()
    for rec in env.lines("execution") + env.lines("service"):
        assert rec["trace_id"] == f"{ctx.trace_id:032x}"
        assert rec["span_id"] == f"{ctx.span_id:016x}"
    for otel in env.otlp_records():
        assert otel.trace_id == ctx.trace_id and otel.span_id == ctx.span_id


def test_correlation_ids_nest_and_stay_per_thread(env: Env) -> None:
    log = get_logger("execution")

    def worker(n: int) -> None:
        with correlate(order_id=f"o-{n}"):
            log.info("from thread %d", n)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    with correlate(request_id="r-1"):
        with correlate(order_id="o-main"):
            log.info("nested")
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    log.info("outside")
    env.flush()
    by_msg = {r["message"]: r for r in env.lines("execution")}
    assert by_msg["nested"]["order_id"] == "o-main" and by_msg["nested"]["request_id"] == "r-1"
    for n in range(4):
        rec = by_msg[f"from thread {n}"]
        assert rec["order_id"] == f"o-{n}" and "request_id" not in rec  # threads do not inherit contextvars
    assert "order_id" not in by_msg["outside"] and "request_id" not in by_msg["outside"]
    otel = {r.body: r for r in env.otlp_records()}
    assert otel["nested"].attributes["order_id"] == "o-main"


async def test_correlation_follows_asyncio_tasks(env: Env) -> None:
    log = get_logger("strategy")

    async def handle(n: int) -> None:
        with correlate(order_id=f"o-{n}"):
            await asyncio.sleep(0)
            log.info("task %d", n)

    with correlate(request_id="r-async"):
        await asyncio.gather(*(asyncio.create_task(handle(n)) for n in range(5)))
    env.flush()
    for rec in env.lines("strategy"):
        n = rec["message"].split()[-1]
        assert rec["order_id"] == f"o-{n}" and rec["request_id"] == "r-async"


def test_correlate_as_decorator(env: Env) -> None:
    @tradeobs_agent.correlate(order_id="o-dec")
    def place() -> None:
        get_logger("execution").info("placed")

    place()
    env.flush()
    assert env.lines("execution")[0]["order_id"] == "o-dec"


def test_exception_is_structured(env: Env) -> None:
    try:
        raise ValueError("bad px")
    except ValueError:
        get_logger("risk").exception("check failed")
    env.flush()
    [rec] = env.lines("risk")
    assert rec["level"] == "ERROR"
    assert rec["exception.type"] == "ValueError" and rec["exception.message"] == "bad px"
    assert "Traceback" in rec["exception.stacktrace"]


def test_user_root_handler_is_kept_and_sees_records(env: Env) -> None:
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    h = Keep()
    logging.getLogger().addHandler(h)
    get_logger("execution").info("to both %s", "sinks")  # slow path: another handler must see it
    env.flush()
    assert [r.getMessage() for r in seen] == ["to both sinks"]
    assert seen[0].pathname == __file__  # the caller, not our logger subclass
    assert [r["message"] for r in env.lines("execution")] == ["to both sinks"]
    assert len(env.otlp_records()) == 1  # captured once


def test_reinit_never_installs_two_capture_handlers(env: Env, make_env) -> None:
    from tradeobs_agent.logs._capture import CaptureHandler
    from tradeobs_agent.testing import reset as _reset_for_tests

    _reset_for_tests()
    env2 = make_env()
    ours = [h for h in logging.getLogger().handlers if isinstance(h, CaptureHandler)]
    assert ours == [env2.pipeline.handler]
    get_logger("execution").info("once")
    env2.flush()
    assert len(env2.lines("execution")) == 1


def test_bad_extra_key_does_not_raise_on_slow_path(env: Env) -> None:
    logging.getLogger().addHandler(logging.NullHandler())  # forces the standard path
    get_logger("execution").info("m", extra={"message": "clash", "asctime": 1})
    env.flush()
    [rec] = env.lines("execution")
    assert rec["message"] == "m" and rec["extra.message"] == "clash"


def test_shutdown_flushes_and_returns(env: Env) -> None:
    log = get_logger("execution")
    for i in range(2000):
        log.info("r %d", i)
    pipeline = env.pipeline
    assert tradeobs_agent.shutdown(timeout=10.0) is True
    assert len(env.lines("execution")) == 2000
    assert pipeline.stats()["queued"] == 0
    log.info("after shutdown")  # no pipeline: the standard path, nothing raises
    assert len(env.lines("execution")) == 2000


def test_queue_size_gauge_and_capacity(env: Env) -> None:
    from tradeobs_agent._internal import bridge

    names = {m.name for m in bridge.collect(env.agent.registry)}
    assert "tradeobs.agent.queue.size" in names and "tradeobs.agent.queue.capacity" in names
    assert env.counter("tradeobs.agent.queue.capacity", queue="logs") == 65536
    assert env.counter("tradeobs.agent.queue.size", queue="logs") == 0


# ---------------------------------------------------------------- full queue policies


def test_drop_newest_counts_and_warns_once_per_period(make_env, blocking_stream: BlockingStream) -> None:
    env = make_env(queue_size=16)
    hold_worker(env, blocking_stream)
    log = get_logger("execution")
    for i in range(50):
        log.info("r %d", i)
    assert env.counter("tradeobs.agent.logs.dropped", reason="queue_full") == 34
    env.pipeline.drop_warning_interval = 0.0
    blocking_stream.release.set()
    env.flush()
    kept = [r["message"] for r in env.lines("execution")]
    assert kept == [f"r {i}" for i in range(16)]  # the newest were dropped
    warnings = [r for r in env.lines("system") if "dropped" in r["message"]]
    assert len(warnings) == 1 and warnings[0]["message"].startswith("34 log records dropped in the last")


def test_drop_oldest_keeps_the_newest(make_env, blocking_stream: BlockingStream) -> None:
    env = make_env(queue_size=16, queue_policy="drop_oldest")
    hold_worker(env, blocking_stream)
    log = get_logger("execution")
    for i in range(50):
        log.info("r %d", i)
    assert env.counter("tradeobs.agent.logs.dropped", reason="queue_full_oldest") == 34
    blocking_stream.release.set()
    env.flush()
    assert [r["message"] for r in env.lines("execution")] == [f"r {i}" for i in range(34, 50)]


def test_block_policy_waits_for_space(make_env, blocking_stream: BlockingStream) -> None:
    env = make_env(queue_size=16, queue_policy="block", block_timeout=30.0)
    hold_worker(env, blocking_stream)
    log = get_logger("execution")
    for i in range(16):
        log.info("r %d", i)
    timer = threading.Timer(0.2, blocking_stream.release.set)
    timer.start()
    log.info("r 16")  # blocks until the worker frees space, then is kept
    timer.join()
    env.flush()
    assert len(env.lines("execution")) == 17
    assert env.counter("tradeobs.agent.logs.dropped") == 0


def test_block_policy_gives_up_after_timeout(make_env, blocking_stream: BlockingStream) -> None:
    env = make_env(queue_size=16, queue_policy="block", block_timeout=0.01)
    hold_worker(env, blocking_stream)
    log = get_logger("execution")
    for i in range(17):
        log.info("r %d", i)
    assert env.counter("tradeobs.agent.logs.dropped", reason="block_timeout") == 1


def test_internal_warnings_on_the_worker_never_block(make_env, blocking_stream: BlockingStream) -> None:
    """With policy block and a full queue, a warning logged by the worker itself is dropped, not waited on."""
    env = make_env(queue_size=16, queue_policy="block", block_timeout=30.0)
    q = env.pipeline.queue
    done = threading.Event()

    def as_worker() -> None:
        q.worker_ident = threading.get_ident()
        logging.getLogger("tradeobs").warning("from the worker")
        done.set()

    hold_worker(env, blocking_stream)
    for i in range(16):
        get_logger("execution").info("r %d", i)
    t = threading.Thread(target=as_worker)
    t.start()
    assert done.wait(10)
    t.join()
    assert env.counter("tradeobs.agent.logs.dropped", reason="queue_full") == 1


def test_fast_path_is_taken_when_ours_is_the_only_handler(env: Env) -> None:
    """Regression guard: records from stream loggers must not build a LogRecord when nothing else listens."""
    from tradeobs_agent.logs import _capture

    assert _capture._sole_route(get_logger("execution"), env.pipeline.handler)
    made: list[logging.LogRecord] = []
    old = logging.getLogRecordFactory()
    logging.setLogRecordFactory(lambda *a, **k: made.append(old(*a, **k)) or made[-1])
    try:
        get_logger("execution").info("fast")
    finally:
        logging.setLogRecordFactory(old)
    env.flush()
    assert made == [] and env.lines("execution")[0]["message"] == "fast"
