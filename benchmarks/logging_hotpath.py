"""Hot-path cost of one log call: tradeobs vs the usual Python logging set-ups, in one run.

    python benchmarks/logging_hotpath.py [--n 100000] [--only-secrets]

Each set-up times ``info("order %s filled", oid, extra={...})`` (or its
equivalent) with perf_counter_ns around every call, after a warm-up, and then
checks that every record reached its destinations (file lines and OTLP
records counted), so speed is not bought by losing records. tradeobs is also
timed inside an order (``correlate(order_id=...)`` of an order a
``TradingTelemetry`` knows, and ``order.scope()``): the call is the same, the
worker puts each line on the order's trace, and that is checked too.

OTLP: tradeobs and the raw OTel LoggingHandler both feed a real
``BatchLogRecordProcessor`` whose exporter counts records instead of sending
them (no collector in the loop, which would only add noise to both).

Then: tradeobs' sustained throughput (the worker's drain rate with the queue
saturated, i.e. the rate above which drops begin) and the worker's CPU at a
paced 10k records/s, outside any order and inside one.

Last: the cost of masking known secret values (``secret_values_cost``): no value known vs 10, alternated.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import logging.handlers
import os
import queue
import sys
import tempfile
import time
import warnings
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _logbench import CountingLogExporter, count_lines, count_lines_with, pct, print_table, time_calls

EXTRA = {"symbol": "AAPL", "side": "buy", "qty": 100, "px": 187.25}


def _reset_stdlib() -> None:
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
        h.close()
    root.setLevel(logging.WARNING)


def bench_tradeobs(tmp: str, n: int, warmup: int, where: str = "") -> dict:
    """``where``: "" (no order), "correlate" (inside ``correlate(order_id=...)`` of a known order) or "scope"
    (inside ``order.scope()``); in an order, every line must also carry the order's trace id."""
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

    import tradeobs_agent
    from tradeobs_agent.testing import reset as _reset_for_tests

    exp = CountingLogExporter()
    agent = tradeobs_agent.init(
        service_name="bench",
        otlp=False,
        prometheus=False,
        live=False,
        logs=tradeobs_agent.LogOptions(dir=tmp, queue_size=n + warmup + 10),
    )
    agent.logger_provider.add_log_record_processor(
        BatchLogRecordProcessor(exp, max_queue_size=n + warmup + 10, max_export_batch_size=512)
    )
    log = tradeobs_agent.get_logger("execution")
    block, order = _order_block(where)
    with block:
        samples = time_calls(lambda i: log.info("order %s filled", i, extra=EXTRA), n, warmup)
    agent.logs.flush(60)
    agent.logger_provider.force_flush(60_000)
    path = os.path.join(tmp, "execution.jsonl")
    lines = count_lines(path)
    total = n + warmup
    delivered = f"file {lines}/{total}, otlp {exp.count}/{total}"
    name = "tradeobs (file + OTLP via BatchLogRecordProcessor)"
    if order is not None:
        on_trace = count_lines_with(path, f'"trace_id":"{order.trace_id}"')
        delivered += f", on the order's trace {on_trace}/{total}"
        name = f"tradeobs, same, inside {'correlate(order_id=...)' if where == 'correlate' else 'order.scope()'}"
    _reset_for_tests()
    return _row(name, samples, delivered)


def _order_block(where: str) -> tuple[Any, Any]:
    """The block a benchmark logs in, and its order (None: no order). ``where``: see :func:`bench_tradeobs`, and
    "unknown": ``correlate(order_id=...)`` with an id no ``TradingTelemetry`` knows."""
    import tradeobs_agent

    if not where:
        return contextlib.nullcontext(), None
    if where == "unknown":  # the same correlation field, for an id no TradingTelemetry knows: nothing to resolve
        return tradeobs_agent.correlate(order_id="no-such-order"), None

    tt = tradeobs_agent.TradingTelemetry(strategy="bench", venue="bench")
    order = tt.order_signal("bench-1", "AAPL", "buy", 100, 187.25)
    return (tradeobs_agent.correlate(order_id="bench-1") if where == "correlate" else order.scope()), order


def bench_stdlib_file(tmp: str, n: int, warmup: int) -> dict:
    _reset_stdlib()
    path = os.path.join(tmp, "stdlib.log")
    h = logging.FileHandler(path)
    h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(h)
    root.setLevel(logging.INFO)
    log = logging.getLogger("bench.stdlib")
    samples = time_calls(lambda i: log.info("order %s filled", i, extra=EXTRA), n, warmup)
    h.flush()
    _reset_stdlib()
    return _row("stdlib FileHandler", samples, f"file {count_lines(path)}/{n + warmup}")


def bench_stdlib_queue(tmp: str, n: int, warmup: int) -> dict:
    _reset_stdlib()
    path = os.path.join(tmp, "queue.log")
    fh = logging.FileHandler(path)
    fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    q: queue.Queue = queue.Queue(-1)
    qh = logging.handlers.QueueHandler(q)
    listener = logging.handlers.QueueListener(q, fh)
    listener.start()
    root = logging.getLogger()
    root.addHandler(qh)
    root.setLevel(logging.INFO)
    log = logging.getLogger("bench.queue")
    samples = time_calls(lambda i: log.info("order %s filled", i, extra=EXTRA), n, warmup)
    listener.stop()
    fh.close()
    _reset_stdlib()
    return _row("stdlib QueueHandler + QueueListener(FileHandler)", samples, f"file {count_lines(path)}/{n + warmup}")


def bench_loguru(tmp: str, n: int, warmup: int, enqueue: bool) -> dict:
    from loguru import logger

    logger.remove()
    path = os.path.join(tmp, f"loguru_{enqueue}.jsonl")
    logger.add(path, serialize=True, enqueue=enqueue, level="INFO")
    samples = time_calls(lambda i: logger.info("order {} filled", i, **EXTRA), n, warmup)
    logger.complete()
    logger.remove()
    name = "loguru serialize=True, enqueue=True" if enqueue else "loguru serialize=True (synchronous)"
    return _row(name, samples, f"file {count_lines(path)}/{n + warmup}")


def bench_otel_handler(tmp: str, n: int, warmup: int) -> dict:
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

    _reset_stdlib()
    exp = CountingLogExporter()
    provider = LoggerProvider(shutdown_on_exit=False)
    provider.add_log_record_processor(BatchLogRecordProcessor(exp, max_queue_size=n + warmup + 10))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        h = LoggingHandler(logger_provider=provider)
    root = logging.getLogger()
    root.addHandler(h)
    root.setLevel(logging.INFO)
    log = logging.getLogger("bench.otel")
    samples = time_calls(lambda i: log.info("order %s filled", i, extra=EXTRA), n, warmup)
    provider.force_flush(60_000)
    provider.shutdown()
    _reset_stdlib()
    return _row("OTel LoggingHandler + BatchLogRecordProcessor", samples, f"otlp {exp.count}/{n + warmup}")


def _row(name: str, samples: list[int], delivered: str) -> dict:
    return {"name": name, "median": pct(samples, 0.5), "p99": pct(samples, 0.99), "delivered": delivered}


def throughput(tmp: str, seconds: float) -> None:
    """Saturate the default-size queue from one thread; the worker's drain rate is the sustained throughput."""
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

    import tradeobs_agent
    from tradeobs_agent.testing import reset as _reset_for_tests

    exp = CountingLogExporter()
    agent = tradeobs_agent.init(service_name="bench", otlp=False, prometheus=False, live=False,
                                logs=tradeobs_agent.LogOptions(dir=tmp))  # fmt: skip
    agent.logger_provider.add_log_record_processor(BatchLogRecordProcessor(exp, max_queue_size=1 << 20))
    log = tradeobs_agent.get_logger("execution")
    p = agent.logs
    start_processed, cpu0 = p.processed, p.worker_cpu
    t0 = time.perf_counter()
    sent = 0
    first_drop_at = None
    while time.perf_counter() - t0 < seconds:
        for _ in range(1000):
            log.info("order %s filled", sent, extra=EXTRA)
            sent += 1
        if first_drop_at is None and p.queue.total_dropped:
            first_drop_at = sent
    elapsed = time.perf_counter() - t0
    processed = p.processed - start_processed
    cpu = p.worker_cpu - cpu0
    print(f"\nsaturated for {elapsed:.1f}s: producer {sent / elapsed:,.0f} calls/s; worker wrote "
          f"{processed / elapsed:,.0f} records/s (sustained throughput), dropped {p.queue.total_dropped:,} "
          f"(first drop after {first_drop_at or 0:,} calls, queue capacity {p.queue.capacity:,}); "
          f"worker CPU {cpu / elapsed * 100:.0f}% of a core, "
          f"{cpu / max(processed, 1) * 1e6:.1f} us/record")  # fmt: skip
    p.flush(30)
    _reset_for_tests()

    # Paced: 10k records/s for 2 s; what the worker costs at a realistic rate (and with every line in an order,
    # which the worker resolves to the order's trace).
    for where in ("", "unknown", "correlate"):
        agent = tradeobs_agent.init(service_name="bench", otlp=False, prometheus=False, live=False,
                                    logs=tradeobs_agent.LogOptions(dir=f"{tmp}/paced{where}"))  # fmt: skip
        agent.logger_provider.add_log_record_processor(BatchLogRecordProcessor(exp, max_queue_size=1 << 20))
        log = tradeobs_agent.get_logger("execution")
        p = agent.logs
        block, _ = _order_block(where)
        cpu0 = p.worker_cpu
        t0 = time.perf_counter()
        with block:
            for i in range(20_000):
                log.info("order %s filled", i, extra=EXTRA)
                if i % 100 == 99:
                    delay = t0 + (i + 1) / 10_000 - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
        p.flush(30)
        elapsed = time.perf_counter() - t0
        cpu = p.worker_cpu - cpu0
        inside = {"": "", "unknown": " in correlate(order_id=<unknown id>)", "correlate": " inside an order"}[where]
        print(f"paced 10,000 records/s for {elapsed:.1f}s{inside}: "
              f"worker CPU {cpu / elapsed * 100:.1f}% of a core ({cpu / 20_000 * 1e6:.1f} us/record), "
              f"dropped {p.queue.total_dropped}")  # fmt: skip
        _reset_for_tests()


def _busy(seconds: float, rate: int, log: Any) -> tuple[int, int]:
    """A trading thread that never sleeps (pure Python work, so it wants the GIL all the time) and logs ``rate``
    records a second when due; returns (work units done, records logged)."""
    t0 = time.perf_counter()
    end = t0 + seconds
    period = 1.0 / rate if rate else float("inf")
    work = logged = 0
    due = t0
    x = 0
    while True:
        for i in range(200):  # one unit of work, ~10 us
            x += i * i
        work += 1
        now = time.perf_counter()
        if now >= end:
            return work, logged
        while log is not None and now >= due:
            log.info("order %s filled", logged, extra=EXTRA)
            logged += 1
            due += period


def busy_producer(tmp: str, seconds: float, rate: int) -> None:
    """A trading thread that keeps the GIL busy (it never sleeps) and logs ``rate`` records/s: how many records the
    log worker has written by the end of the run, how many were dropped, and how much of its work the trading
    thread still did, against the same loop without logging and with the stdlib's QueueHandler + QueueListener
    (whose listener thread never hands the GIL back early)."""
    import tradeobs_agent
    from tradeobs_agent.testing import reset as _reset_for_tests

    base, _ = _busy(seconds, 0, None)
    rows = [("no logging", base, 0, "", "")]
    agent = tradeobs_agent.init(service_name="bench", otlp=False, prometheus=False, live=False,
                                logs=tradeobs_agent.LogOptions(dir=os.path.join(tmp, "busy")))  # fmt: skip
    p = agent.logs
    log = tradeobs_agent.get_logger("execution")
    p0, d0 = p.processed, p.queue.total_dropped
    work, logged = _busy(seconds, rate, log)
    written, dropped = p.processed - p0, p.queue.total_dropped - d0
    p.flush(60)
    rows.append(("tradeobs", work, logged, f"{written:,}", f"{dropped:,}"))
    _reset_for_tests()

    _reset_stdlib()
    path = os.path.join(tmp, "busy-queue.log")
    fh = logging.FileHandler(path)
    fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    q: queue.Queue = queue.Queue(-1)
    listener = logging.handlers.QueueListener(q, fh)
    listener.start()
    root = logging.getLogger()
    root.addHandler(logging.handlers.QueueHandler(q))
    root.setLevel(logging.INFO)
    work, logged = _busy(seconds, rate, logging.getLogger("bench.queue"))
    fh.flush()
    written = count_lines(path)  # what the listener wrote by the end of the run (its queue is unbounded)
    listener.stop()
    fh.close()
    _reset_stdlib()
    peer = "stdlib QueueHandler + QueueListener(FileHandler)"
    rows.append((peer, work, logged, f"{written:,}", "0 (unbounded queue)"))

    print(f"\na busy trading thread (never sleeps) logging {rate:,} records/s for {seconds:g}s")
    print(f"{'logger':52s} {'work done':>10s} {'logged':>8s} {'written by the end':>19s} {'dropped':>20s}")
    for name, w, n, wr, dr in rows:
        print(f"{name:52s} {w / base:>9.0%} {n:>8,} {wr:>19s} {dr:>20s}")


def secret_values_cost(tmp: str, n: int, warmup: int) -> None:
    """The known-secret-value masking (``tradeobs_agent.secret_values``), measured both sides of the queue.

    The same tradeobs call with no secret value known and with 10 (broker keys, tokens, an account number, as
    ``register_secret`` or the environment would give them): the caller's median and p99 per call, and the worker's
    CPU per record (where the masking runs). Both set-ups run here, in this order, twice (A B A B), and the table
    shows each run, so drift between runs is visible.
    """
    import tradeobs_agent
    from tradeobs_agent import secret_values
    from tradeobs_agent.testing import reset as _reset_for_tests

    values = [f"PK{i:02d}SECRETVALUE{i * 7919:08d}" for i in range(9)] + ["123456789012"]
    rows = []
    for run, k in enumerate((0, 10, 0, 10)):
        agent = tradeobs_agent.init(service_name="bench", otlp=False, prometheus=False, live=False,
                                    logs=tradeobs_agent.LogOptions(dir=f"{tmp}/secrets{run}",
                                                                   queue_size=n + warmup + 10))  # fmt: skip
        for v in values[:k]:
            tradeobs_agent.register_secret(v)
        known = len(secret_values._values)
        log = tradeobs_agent.get_logger("execution")
        p = agent.logs
        cpu0, done0 = p.worker_cpu, p.processed
        samples = time_calls(lambda i, log=log: log.info("order %s filled", i, extra=EXTRA), n, warmup)
        p.flush(60)
        cpu, done = p.worker_cpu - cpu0, p.processed - done0
        lines = count_lines(os.path.join(f"{tmp}/secrets{run}", "execution.jsonl"))
        rows.append(
            {
                "name": f"run {run + 1}: {known} secret values known",
                "median": pct(samples, 0.5),
                "p99": pct(samples, 0.99),
                "delivered": f"file {lines}/{n + warmup}, worker {cpu / max(done, 1) * 1e6:.2f} us CPU/record",
            }
        )
        _reset_for_tests()
        gc.collect()
    print("\nknown secret values (tradeobs_agent.register_secret / the environment): caller vs worker")
    print_table(rows, rows[0]["name"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--warmup", type=int, default=5_000)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--busy-rate", type=int, default=5_000, help="records/s logged by a thread that never sleeps")
    ap.add_argument("--only-secrets", action="store_true", help="only the known-secret-values comparison")
    args = ap.parse_args()
    if args.only_secrets:
        with tempfile.TemporaryDirectory() as tmp:
            secret_values_cost(tmp, args.n, args.warmup)
        return
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, n={args.n} calls per logger (after {args.warmup} "
          f"warm-up); per-call perf_counter_ns, GC on\n")  # fmt: skip
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        rows.append(bench_tradeobs(os.path.join(tmp, "tradeobs"), args.n, args.warmup))
        gc.collect()
        for where in ("correlate", "scope"):  # the same call inside an order: the worker resolves the order
            rows.append(bench_tradeobs(os.path.join(tmp, f"tradeobs-{where}"), args.n, args.warmup, where))
            gc.collect()
        rows.append(bench_stdlib_file(tmp, args.n, args.warmup))
        rows.append(bench_stdlib_queue(tmp, args.n, args.warmup))
        rows.append(bench_loguru(tmp, args.n, args.warmup, enqueue=False))
        rows.append(bench_loguru(tmp, args.n, args.warmup, enqueue=True))
        rows.append(bench_otel_handler(tmp, args.n, args.warmup))
        print_table(rows, rows[0]["name"])
        throughput(os.path.join(tmp, "tp"), args.seconds)
        busy_producer(tmp, args.seconds, args.busy_rate)
        secret_values_cost(os.path.join(tmp, "sv"), args.n, args.warmup)


if __name__ == "__main__":
    main()
