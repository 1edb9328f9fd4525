"""The collector killed, slow and refusing, while the demo trades at a steady load (``harness.LOAD``).

Every test runs the real service (``demo_service.py``: the demo under uvicorn, the agent from the environment)
against real processes, measures the trading loop before the fault (no fault, same process) and under it, and
records its row in docs/reliability.md (``report.py``). What is asserted: liveness (steps and orders in every 5 s),
bounds (the agent's queues within their capacities, the service's RSS within ``RSS_BOUND``, ``shutdown()``
within its timeout), counts (Prometheus equals the service's own counters; what the service recorded equals what
arrived plus what the agent counted as dropped) and no traceback in the service's output. Latencies are reported,
never asserted.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.integration.procs import http_ok

from .harness import (
    LOAD,
    MB,
    ORDERS_HZ,
    Account,
    DemoService,
    Phase,
    Pipeline,
    counted,
    counters_relayed,
    dropped_logs,
    dropped_spans,
    logs_account,
    loop_figures,
    recorded_log_bodies,
    recorded_span_ids,
    settle,
    spans_account,
)
from .otlp_refuser import RefusingOtlpServer
from .report import Row, record
from .slow_proxy import DelayingProxy

pytestmark = [pytest.mark.faults]

WARMUP_S = 5.0
NO_FAULT_S = 20.0
KILL_S = 60.0  # the outage; the benchmark (benchmarks/collector_outage.py) also runs 300 s
AFTER_S = 10.0
DELIVERY_S = 90.0  # a failure deadline for delivery after the restart, not a measurement
# The service's RSS may grow this much under a fault and no more: the agent keeps at most
# TRADEOBS_OTLP_RETRY_ITEMS (50,000) spans and as many log records; a minute at this load keeps ~23,000.
RSS_BOUND = 256 * MB


def _no_traceback(svc: DemoService) -> str:
    out = svc.output()
    assert "Traceback" not in out, f"a traceback in the service's output:\n{out[-4000:]}"
    return out


def _shutdown_kept_its_bound(final: dict[str, Any], out: str) -> None:
    """``shutdown()`` returned (the service exited after SIGTERM and wrote ``final.json``: ``DemoService.stop``'s
    limit only bounds a hung one) and by its own account: either everything finished within its bound, or it gave up
    at the bound and said so on stderr. Its duration is a figure in the reliability table, not asserted: a loaded
    machine adds seconds to any wall-clock reading (docs/reliability.md)."""
    gave_up = "tradeobs shutdown did not finish within its bound" in out
    assert final["shutdown_ok"] != gave_up, (
        f"shutdown_ok={final['shutdown_ok']} but the output {'says' if gave_up else 'does not say'} it gave up: "
        f"{out[-2000:]}"
    )


def _queues_bounded(*phases: Phase) -> dict[str, float]:
    """Peak of every agent queue over the phases; each within its capacity."""
    peaks: dict[str, float] = {}
    for ph in phases:
        for p in ph.polls:
            sizes = p["self_metrics"].get("tradeobs.agent.queue.size", {})
            caps = p["self_metrics"].get("tradeobs.agent.queue.capacity", {})
            for q, n in sizes.items():
                assert n <= caps.get(q, float("inf")), f"agent queue {q} holds {n:g}, above its capacity {caps.get(q)}"
                peaks[q] = max(peaks.get(q, 0.0), n)
    return peaks


def _balanced(account: Account) -> str:
    assert account.balanced, f"recorded != arrived + counted dropped: {account}"
    text = f"recorded {account.recorded} = arrived {account.arrived} + counted dropped {account.dropped:g}"
    return text + (f" + lost in the collector at its SIGKILL {account.at_kill}" if account.at_kill else "")


def _orders_in_prometheus(pipe: Pipeline, svc: DemoService) -> str:
    """Once no order is placed any more, Prometheus has exactly the service's own order counters."""
    assert pipe.prometheus is not None
    own = counters_relayed(svc.state()["prometheus_url"], pipe.prometheus.url, svc.service_name)
    return f"{own['trading_orders_submitted_total']:g} submitted, {own['trading_orders_filled_total']:g} filled"


def test_collector_killed_for_a_minute_then_restarted(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """SIGKILL the collector for 60 s while the demo trades, start it again on the same ports and disk queue.

    The service keeps trading; its queues and memory stay bounded; it prints one warning per signal and no
    traceback; after the restart Prometheus has exactly the service's counters, and every span and log record the
    service recorded arrives (nothing was dropped: a minute at this load fits the agent's retry buffer), none lost
    in the collector at its kill: what it acknowledged was in its disk queue (logs go to a log store over OTLP/HTTP
    through that queue, as in compose, not to the file exporter, which buffers 200 ms in memory).
    """
    with Pipeline(tmp_path, log_store=True) as pipe, DemoService(pipe.otlp_endpoint, tmp_path / "svc") as svc:
        time.sleep(WARMUP_S)
        before = Phase(svc, "no fault").run(NO_FAULT_S)
        pipe.kill_collector()
        mark = len(svc.output())
        during = Phase(svc, "collector dead").run(KILL_S)
        assert http_ok(f"{svc.base_url}/readyz"), "the service stopped answering while the collector was dead"
        fault_output = svc.output()[mark:]
        pipe.start_collector()
        after = Phase(svc, "after").run(AFTER_S)
        svc.set_orders(0)
        flush = svc.flush(DELIVERY_S)
        assert flush["ok"], f"what the agent kept was not delivered within {DELIVERY_S:.0f}s of the restart"
        orders = _orders_in_prometheus(pipe, svc)
        final = svc.stop()

        stalls = during.stalls() + after.stalls()
        assert not stalls, f"the trading loop stalled: {stalls}"
        peaks = _queues_bounded(before, during, after)
        rss0, rss_peak = before.last("rss"), max(during.peak("rss"), after.peak("rss"))
        assert rss_peak - rss0 <= RSS_BOUND, f"RSS grew {(rss_peak - rss0) / MB:.0f} MiB during the outage"
        _no_traceback(svc)
        warnings = [ln for ln in fault_output.splitlines() if ln.strip()]
        assert len(warnings) <= 10, "more than 10 lines of output during the outage:\n" + "\n".join(warnings[:40])
        assert final["shutdown_ok"], f"shutdown did not finish within its bound: {final}"
        assert pipe.jaeger is not None
        spans = settle(lambda: spans_account(svc.workdir, pipe.jaeger.query_url, svc.service_name, final, pipe.kills))
        logs = settle(lambda: logs_account(svc.workdir, pipe.log_files, svc.service_name, final, pipe.kills))
        figures = {
            **loop_figures(before, during),
            "RSS": f"{rss0 / MB:.0f} MiB before, peak {rss_peak / MB:.0f} MiB, {after.last('rss') / MB:.0f} MiB "
            f"after the restart",
            "kept at the end of the outage": f"{during.last('queue=otlp_traces'):g} spans, "
            f"{during.last('queue=otlp_logs'):g} log records (peaks {peaks.get('queue=otlp_traces', 0):g} / "
            f"{peaks.get('queue=otlp_logs', 0):g})",
            "delivered": f"flush {flush['seconds']:.1f} s after the orders stopped ({AFTER_S:g} s after the restart)",
            "output during the outage": f"{len(warnings)} lines",
            "spans": _balanced(spans),
            "logs": _balanced(logs),
            "orders (Prometheus = service)": orders,
        }
    assert spans.dropped == 0 and logs.dropped == 0, f"drops were counted: {spans}; {logs}"
    assert spans.at_kill == 0 and logs.at_kill == 0, f"lost in the collector at its SIGKILL: {spans}; {logs}"
    record(
        request.node.nodeid,
        Row(
            section="Faults",
            order=10,
            case=f"collector killed (SIGKILL) for {KILL_S:g} s, then restarted (same ports, same disk queue)",
            load=f"{LOAD}; {NO_FAULT_S:g} s no fault, {KILL_S:g} s dead, {AFTER_S:g} s after",
            outcome="kept trading (a step and an order in every 5 s); agent queues within capacity; RSS within "
            "256 MiB of before; at most 10 lines of output, no traceback; after the restart Prometheus has exactly "
            "the service's order counters and every kept span and log record is delivered; shutdown within its bound",
            lost="nothing: every span and log record recorded arrived, none counted as dropped, none lost in the "
            "collector at its SIGKILL (what it acknowledged was already in its disk queue: no batch processor before "
            "it)",
            figures=figures,
        ),
    )


PROMPT_S = 5.0


def test_a_prompt_shutdown_after_a_long_outage_counts_what_it_did_not_deliver(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The collector dead for a minute, back, and the service stopped 5 s later (a deploy right after an incident).

    Whatever the bounded shutdown could not deliver must be counted: recorded == arrived + counted dropped.
    """
    with Pipeline(tmp_path, prometheus=False) as pipe, DemoService(pipe.otlp_endpoint, tmp_path / "svc") as svc:
        time.sleep(WARMUP_S)
        pipe.kill_collector()
        during = Phase(svc, "collector dead").run(KILL_S, poll=5.0)
        pipe.start_collector()
        time.sleep(PROMPT_S)
        final = svc.stop()
        assert pipe.jaeger is not None
        spans = settle(
            lambda: spans_account(svc.workdir, pipe.jaeger.query_url, svc.service_name, final, pipe.kills), 30.0
        )
        logs = settle(lambda: logs_account(svc.workdir, pipe.log_files, svc.service_name, final, pipe.kills), 30.0)
        kept = f"{during.last('queue=otlp_traces'):g} spans, {during.last('queue=otlp_logs'):g} log records"
        balanced = {"spans": _balanced(spans), "logs": _balanced(logs)}
    record(
        request.node.nodeid,
        Row(
            section="Faults",
            order=11,
            case=f"collector killed for {KILL_S:g} s, restarted, the service stopped {PROMPT_S:g} s later",
            load=f"{LOAD}; {KILL_S:g} s dead",
            outcome="shutdown within its bound; whatever it could not deliver is counted as dropped",
            lost="nothing uncounted by the agent: recorded = arrived + counted dropped (+ what the collector held in "
            "memory when it was killed, at most the last 3 s before the kill, in the figures), for spans and logs",
            figures={
                "kept at the end of the outage": kept,
                "shutdown": f"{final['shutdown_seconds']:.2f} s",
                **balanced,
            },
        ),
    )


SLOW_DELAY_S = 3.0  # answers 3 s late: exports succeed (timeout 10 s), slowly
STALLED_DELAY_S = 15.0  # answers later than the export timeout: every export times out
SLOW_S = 30.0


def test_collector_slow_never_blocks_the_trading_loop(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """A delaying TCP proxy (``slow_proxy.py``) between the agent and a real collector answers 3 s late, then 15 s
    late (past the 10 s export timeout), and the service is stopped while it is still that slow.

    The trading loop keeps stepping and placing orders, the agent's queues stay within capacity, memory stays
    bounded, and ``shutdown()`` returns within its timeout although the collector still accepts connections.
    """
    with Pipeline(tmp_path, prometheus=False) as pipe:
        assert pipe.collector is not None
        host, port = pipe.collector.otlp_grpc_endpoint.rsplit(":", 1)
        with DelayingProxy(host, int(port)) as proxy, DemoService(proxy.endpoint, tmp_path / "svc") as svc:
            time.sleep(WARMUP_S)
            before = Phase(svc, "no fault").run(NO_FAULT_S)
            proxy.delay = SLOW_DELAY_S
            slow = Phase(svc, "slow").run(SLOW_S)
            proxy.delay = STALLED_DELAY_S
            stalled = Phase(svc, "stalled").run(SLOW_S)
            final = svc.stop()
            delayed = proxy.bytes_delayed
        assert pipe.jaeger is not None
        spans = spans_account(svc.workdir, pipe.jaeger.query_url, svc.service_name, final, pipe.kills)
        logs = logs_account(svc.workdir, pipe.log_files, svc.service_name, final, pipe.kills)

    stalls = slow.stalls() + stalled.stalls()
    assert not stalls, f"the trading loop stalled: {stalls}"
    peaks = _queues_bounded(before, slow, stalled)
    rss0, rss_peak = before.last("rss"), max(slow.peak("rss"), stalled.peak("rss"))
    assert rss_peak - rss0 <= RSS_BOUND, f"RSS grew {(rss_peak - rss0) / MB:.0f} MiB"
    out = _no_traceback(svc)
    bound = final["shutdown_timeout"]
    _shutdown_kept_its_bound(final, out)
    assert delayed > 0, "nothing went through the proxy"
    # A batch whose answer came too late was accepted by the collector and may still be counted as dropped when
    # the agent gives up on it: nothing may be lost uncounted (recorded <= arrived + counted dropped).
    for acc in (spans, logs):
        assert acc.unexpected == 0 and acc.uncounted <= 0, f"lost and not counted as dropped: {acc}"
    record(
        request.node.nodeid,
        Row(
            section="Faults",
            order=20,
            case=f"collector slow: a TCP proxy delays its answers {SLOW_DELAY_S:g} s, then {STALLED_DELAY_S:g} s "
            "(past the 10 s export timeout); the service stopped while it is that slow",
            load=f"{LOAD}; {NO_FAULT_S:g} s no fault, {SLOW_S:g} s at each delay",
            outcome="kept trading (a step and an order in every 5 s); agent queues within capacity; RSS within "
            "256 MiB of before; no traceback; shutdown() returned within its timeout",
            lost="nothing uncounted: what did not arrive by the stop is counted as dropped (recorded <= arrived + "
            "counted dropped; a batch answered too late may have arrived and be counted too, and a retried one may "
            "arrive twice); nothing unrecorded",
            figures={
                **loop_figures(before, stalled),
                "step p99 at 3 s": loop_figures(before, slow)["step p99"].split(",")[0],
                "kept at the stop": f"{stalled.last('queue=otlp_traces'):g} spans, "
                f"{stalled.last('queue=otlp_logs'):g} log records (peaks {peaks.get('queue=otlp_traces', 0):g} / "
                f"{peaks.get('queue=otlp_logs', 0):g})",
                "shutdown": f"{final['shutdown_seconds']:.2f} s (bound {bound:g} s)",
                "RSS": f"{rss0 / MB:.0f} MiB before, peak {rss_peak / MB:.0f} MiB",
                "spans": spans.summary(),
                "logs": logs.summary(),
            },
        ),
    )


REFUSE_S = 20.0
REFUSED_AGAIN_S = 5.0


def test_collector_refusing_unavailable_then_resource_exhausted(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """A tiny OTLP/gRPC server (``otlp_refuser.py``, the fault injector: our collector cannot be made to refuse on
    demand) answers every export ``UNAVAILABLE`` for 20 s, then ``RESOURCE_EXHAUSTED`` for 20 s, then accepts.

    The trading loop keeps going and the agent's queues stay bounded; once the server accepts again everything
    the service recorded until then arrives. Then the server refuses again, the service trades 5 s more and is
    stopped: ``shutdown()`` returns within its timeout and counts what it could not deliver, so over the whole
    run recorded == arrived + counted dropped, for spans and for log records.
    """
    with RefusingOtlpServer() as srv, DemoService(srv.endpoint, tmp_path / "svc") as svc:
        srv.mode = None
        time.sleep(WARMUP_S)
        before = Phase(svc, "no fault").run(NO_FAULT_S)
        srv.mode = grpc.StatusCode.UNAVAILABLE
        unavailable = Phase(svc, "UNAVAILABLE").run(REFUSE_S)
        srv.mode = grpc.StatusCode.RESOURCE_EXHAUSTED
        exhausted = Phase(svc, "RESOURCE_EXHAUSTED").run(REFUSE_S)
        srv.mode = None
        svc.set_orders(0)
        flush = svc.flush(DELIVERY_S)
        assert flush["ok"], f"kept batches not delivered within {DELIVERY_S:.0f}s once the server accepted again"
        # force_flush() delivers what was recorded before it was called: the agent's own "export recovered"
        # line, logged during the first flush, goes with a second one.
        cutoff = time.time()  # everything recorded until now must arrive
        assert svc.flush(DELIVERY_S)["ok"]
        srv.mode = grpc.StatusCode.UNAVAILABLE
        svc.set_orders(ORDERS_HZ)
        again = Phase(svc, "refused again").run(REFUSED_AGAIN_S, poll=1.0)
        final = svc.stop()
        refused = dict(srv.refused)
        spans = Account.of("spans", recorded_span_ids(svc.workdir), srv.span_ids, dropped_spans(final))
        logs = Account.of("logs", recorded_log_bodies(svc.workdir), srv.log_bodies, dropped_logs(final))
        # Nothing recorded before the server accepted again may be missing (and none of it counted as dropped).
        missing_spans = recorded_span_ids(svc.workdir, cutoff) - srv.span_ids
        missing_logs = recorded_log_bodies(svc.workdir, cutoff) - srv.log_bodies
        made_at_stop = (
            len(recorded_span_ids(svc.workdir) - recorded_span_ids(svc.workdir, cutoff)),
            (recorded_log_bodies(svc.workdir) - recorded_log_bodies(svc.workdir, cutoff)).total(),
        )

    stalls = unavailable.stalls() + exhausted.stalls() + again.stalls()
    assert not stalls, f"the trading loop stalled: {stalls}"
    peaks = _queues_bounded(before, unavailable, exhausted, again)
    out = _no_traceback(svc)
    assert any("UNAVAILABLE" in k for k in refused) and any("RESOURCE_EXHAUSTED" in k for k in refused), refused
    bound = final["shutdown_timeout"]
    _shutdown_kept_its_bound(final, out)
    assert not missing_spans and not missing_logs, (
        f"recorded before exports were accepted again, never arrived: {len(missing_spans)} spans "
        f"(e.g. {sorted(missing_spans)[:3]}), {missing_logs.total()} log records (e.g. {list(missing_logs)[:3]})"
    )
    assert made_at_stop[0] > 0, "no span was made while the server refused again: the stop tested nothing"
    fig_spans, fig_logs = _balanced(spans), _balanced(logs)
    record(
        request.node.nodeid,
        Row(
            section="Faults",
            order=30,
            case=f"collector refusing: every export answered UNAVAILABLE for {REFUSE_S:g} s, then RESOURCE_EXHAUSTED "
            f"for {REFUSE_S:g} s (an OTLP/gRPC fault-injecting server), then accepted; then refusing again "
            f"and the service stopped {REFUSED_AGAIN_S:g} s later",
            load=f"{LOAD}; {NO_FAULT_S:g} s no fault, {2 * REFUSE_S:g} s refused, {REFUSED_AGAIN_S:g} s refused "
            "before the stop",
            outcome="kept trading (a step and an order in every 5 s); agent queues within capacity; no traceback; "
            "everything recorded until exports were accepted again arrived; shutdown() within its timeout, "
            "counting what it could not deliver",
            lost="only what was made while refused at the stop, all of it counted as dropped: "
            "recorded = arrived + counted dropped, for spans and log records",
            figures={
                **loop_figures(before, unavailable),
                "step p99 under RESOURCE_EXHAUSTED": loop_figures(before, exhausted)["step p99"].split(",")[0],
                "refused export calls": ", ".join(f"{k} {v}" for k, v in sorted(refused.items())),
                "kept at peak": f"{peaks.get('queue=otlp_traces', 0):g} spans, {peaks.get('queue=otlp_logs', 0):g} "
                "log records",
                "delivered": f"flush {flush['seconds']:.1f} s after the server accepted again",
                "made while refused at the stop": f"{made_at_stop[0]} spans, {made_at_stop[1]} log records",
                "shutdown": f"{final['shutdown_seconds']:.2f} s (bound {bound:g} s)",
                "spans": fig_spans,
                "logs": fig_logs,
            },
        ),
    )


UNAUTHENTICATED_S = 20.0
REJECTED_S = 10.0


def test_collector_refusing_the_token_then_rejecting_the_data(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """The fault injector answers every export ``UNAUTHENTICATED`` for 20 s (a token rotated on the collector's side
    before the services), then accepts; then ``INVALID_ARGUMENT`` for 10 s (data the collector refuses as it is),
    then accepts.

    Through the first, spans and log records are kept and all arrive once the token is accepted again; the agent
    says once per signal that the credentials are refused, naming TRADEOBS_OTLP_HEADERS. Through the second, each
    refused batch is dropped at once and counted (``reason="rejected"``), so the batches after it are not held
    back: once the server accepts again nothing waits in the buffer. Over the run recorded == arrived + counted
    dropped. Before, both were outages said as "export failed"; the rejected batches sat at the head of the buffer
    until they expired, every later batch behind them.
    """
    with RefusingOtlpServer() as srv, DemoService(srv.endpoint, tmp_path / "svc") as svc:
        srv.mode = None
        time.sleep(WARMUP_S)
        before = Phase(svc, "no fault").run(NO_FAULT_S)
        srv.mode = grpc.StatusCode.UNAUTHENTICATED
        unauthenticated = Phase(svc, "UNAUTHENTICATED").run(UNAUTHENTICATED_S)
        srv.mode = None
        flush = svc.flush(DELIVERY_S)
        assert flush["ok"], f"kept batches not delivered within {DELIVERY_S:.0f}s once the token was accepted"
        cutoff = time.time()
        assert svc.flush(DELIVERY_S)["ok"]
        srv.mode = grpc.StatusCode.INVALID_ARGUMENT
        rejected = Phase(svc, "INVALID_ARGUMENT").run(REJECTED_S)
        kept_while_rejected = max(
            p["self_metrics"].get("tradeobs.agent.queue.size", {}).get("queue=otlp_traces", 0) for p in rejected.polls
        )
        srv.mode = None
        svc.set_orders(0)
        assert svc.flush(DELIVERY_S)["ok"]
        final = svc.stop()
        refused = dict(srv.refused)
        spans = Account.of("spans", recorded_span_ids(svc.workdir), srv.span_ids, dropped_spans(final))
        logs = Account.of("logs", recorded_log_bodies(svc.workdir), srv.log_bodies, dropped_logs(final))
        missing_spans = recorded_span_ids(svc.workdir, cutoff) - srv.span_ids
        missing_logs = recorded_log_bodies(svc.workdir, cutoff) - srv.log_bodies
    out = _no_traceback(svc)
    stalls = unauthenticated.stalls() + rejected.stalls()
    assert not stalls, f"the trading loop stalled: {stalls}"
    _queues_bounded(before, unauthenticated, rejected)
    assert not missing_spans and not missing_logs, (
        f"recorded while the token was refused, never arrived: {len(missing_spans)} spans, "
        f"{missing_logs.total()} log records"
    )
    by_reason = {
        (sig, reason): counted(final, "tradeobs.agent.items.dropped", signal=sig, reason=reason)
        for sig in ("traces", "logs")
        for reason in ("rejected", "unauthorized", "expired", "retry_buffer_full", "shutdown")
    }
    assert by_reason[("traces", "rejected")] > 0 and by_reason[("logs", "rejected")] > 0, by_reason
    assert not [k for k, v in by_reason.items() if v and k[1] != "rejected"], by_reason
    for signal in ("traces", "logs"):
        lines = out.splitlines()
        said = [ln for ln in lines if f"export {signal} to" in ln and "refused the credentials" in ln]
        assert len(said) == 1 and "TRADEOBS_OTLP_HEADERS" in said[0], said
    assert sum(1 for line in out.splitlines() if "rejected traces" in line) == 1, out[-3000:]
    record(
        request.node.nodeid,
        Row(
            section="Faults",
            order=31,
            case=f"collector refusing for good: every export answered UNAUTHENTICATED for {UNAUTHENTICATED_S:g} s "
            f"(a token rotated on the collector's side), then accepted; then INVALID_ARGUMENT for {REJECTED_S:g} s, "
            "then accepted (an OTLP/gRPC fault-injecting server; tests/integration/test_collector_refusals.py runs "
            "each refusal against the real collector)",
            load=f"{LOAD}; {NO_FAULT_S:g} s no fault, {UNAUTHENTICATED_S:g} s unauthenticated, {REJECTED_S:g} s "
            "rejected",
            outcome="kept trading; agent queues within capacity; no traceback; while unauthenticated the batches are "
            "kept and all arrive once accepted, said once per signal naming TRADEOBS_OTLP_HEADERS; while rejected "
            'each batch is dropped at once, counted as reason="rejected" and said once, later batches not held back',
            lost='only the batches the collector rejected, each counted (reason="rejected"): recorded = arrived + '
            "counted dropped, for spans and log records",
            figures={
                **loop_figures(before, unauthenticated),
                "refused export calls": ", ".join(f"{k} {v}" for k, v in sorted(refused.items())),
                "delivered": f"flush {flush['seconds']:.1f} s after the token was accepted",
                "kept while rejected (peak)": f"{kept_while_rejected:g} spans",
                "dropped as rejected": f"{by_reason[('traces', 'rejected')]:g} spans, "
                f"{by_reason[('logs', 'rejected')]:g} log records",
                "spans": _balanced(spans),
                "logs": _balanced(logs),
            },
        ),
    )
