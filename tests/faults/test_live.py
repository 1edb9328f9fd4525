"""The live stream (``/telemetry/stream`` of the demo) under faults: the service restarted under 500 connected
clients, and clients that stop reading.

The clients are ``sse_clients.py`` (raw asyncio connections that speak SSE the way a browser's ``EventSource``
does: they keep the last ``id:`` and reconnect with ``Last-Event-ID`` after the server's ``retry:``), in their own
processes; the service is the demo (``demo_service.py``) exporting to our collector, at the steady load.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from .harness import (
    LOAD,
    MB,
    SSE_PROCESSES,
    DemoService,
    Phase,
    Pipeline,
    SseClients,
    counted,
    distribution,
    fmt_ms,
    settle,
)
from .report import UPDATE, Row, record
from .test_collector import WARMUP_S, _no_traceback

pytestmark = [pytest.mark.faults]

CLIENTS = 500
STEADY_S = 10.0
DOWN_S = 3.0  # the service is down this long between its exit and its restart
RECONNECT_S = 60.0  # a failure deadline for every client to be back, not a measurement


def _readers_back(stats: dict[str, Any]) -> list[int]:
    """Indexes of readers whose latest connection did not start with ``reset`` and a full frame."""
    firsts = stats["readers"]["first_events"]
    return [i for i, ev in enumerate(firsts) if ev[:2] != ["reset", "frame:full"]]


def test_live_stream_service_restarted_under_500_clients(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """SIGTERM the service while 500 clients stream, start it again on the same port 3 s later.

    Every client reconnects by itself with its ``Last-Event-ID``, which the new process does not know: its new
    connection starts with ``event: reset`` and a full frame, and then it keeps receiving frames (none hangs).
    """
    with Pipeline(tmp_path, prometheus=False) as pipe, DemoService(pipe.otlp_endpoint, tmp_path / "svc") as svc:
        time.sleep(WARMUP_S)
        with SseClients(svc.port, tmp_path / "clients", CLIENTS) as clients:
            ready = clients.ready
            t0 = time.time()
            time.sleep(STEADY_S)
            before = clients.stats(t0, time.time())
            final = svc.stop()
            time.sleep(DOWN_S)
            svc.start()
            t_up = time.monotonic()
            back = settle(lambda: not _readers_back(clients.stats(time.time(), time.time())), RECONNECT_S, 0.5)
            reconnect_s = time.monotonic() - t_up
            mid = clients.stats(time.time(), time.time())
            t1 = time.time()
            time.sleep(STEADY_S)
            after = clients.stats(t1, time.time())
            out = _no_traceback(svc)

    assert ready == CLIENTS, f"only {ready} of {CLIENTS} clients got a first frame"
    assert back, f"clients whose new connection did not start with reset + a full frame: {_readers_back(mid)[:10]}"
    r0, r1 = mid["readers"], after["readers"]
    assert r1["connected"] == CLIENTS, f"only {r1['connected']} of {CLIENTS} clients connected after the restart"
    assert min(r1["connects"]) >= 2, "a client did not reconnect"
    hung = [
        i
        for i, (a, b) in enumerate(zip(r0["frames_this_connection"], r1["frames_this_connection"], strict=True))
        if b <= a
    ]
    assert not hung, f"{len(hung)} clients received no frame in the {STEADY_S:g} s after reconnecting: {hung[:10]}"
    assert not after["bad_status"], f"HTTP errors on reconnect: {after['bad_status']}"
    assert final["shutdown_ok"], f"the agent's shutdown did not finish within its bound: {final}"
    lat0, lat1 = distribution(before["latencies"]), distribution(after["latencies"])
    record(
        request.node.nodeid,
        Row(
            section="Faults",
            order=50,
            case=f"live stream: the service stopped (SIGTERM) under {CLIENTS} connected clients and started again "
            f"on the same port {DOWN_S:g} s later",
            load=f"{LOAD}; {CLIENTS} SSE clients (EventSource-like, {SSE_PROCESSES} processes)",
            outcome="every client reconnected by itself with Last-Event-ID and got event: reset then a full frame, "
            "then kept receiving frames (none hung); no HTTP error; no traceback",
            lost="nothing beyond the frames of the 3 s the service was down (the reset + full frame replaces them)",
            figures={
                "all clients back": f"{reconnect_s:.1f} s after the service was started again",
                "connection attempts refused while it was down": str(after["connect_errors"]),
                "frame latency p99": f"{fmt_ms(lat1)} after the restart, {fmt_ms(lat0)} before "
                f"(p50 {fmt_ms(lat1, 'p50')} / {fmt_ms(lat0, 'p50')}; {lat1.get('n', 0)} / {lat0.get('n', 0)} frames)",
                "service stop with the clients connected": f"agent shutdown {final['shutdown_seconds']:.2f} s",
                "service output lines": str(len(out.splitlines())),
            },
        ),
    )


STALLED = 100
# The stall is 5 minutes; CI runs 60 s (6 send timeouts of 10 s). The full length, as a benchmark:
#   TRADEOBS_STALL_SECONDS=300 TRADEOBS_RELIABILITY_UPDATE=1 python -m pytest tests/faults/test_live.py -k stalled
# writes its own row in "Full-length runs (benchmarks)"; the CI row is for the default.
STALL_DEFAULT_S = 60.0
STALL_S = float(os.environ.get("TRADEOBS_STALL_SECONDS") or STALL_DEFAULT_S)
STALL_RSS_BOUND = 64 * MB


def test_live_stream_100_stalled_clients_are_timed_out_while_400_keep_reading(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """100 clients stop reading after their first frame (a 4 KB receive buffer, reading paused) while 400 read.

    The stalled ones are closed by the server's send timeout and counted (``tradeobs.live.clients.timed_out``),
    none of the 400 readers is dropped or stops receiving, the service keeps trading and its memory stays within
    ``STALL_RSS_BOUND`` of where it was when the stall began. The readers' frame latency is reported.
    """
    with Pipeline(tmp_path, prometheus=False) as pipe, DemoService(pipe.otlp_endpoint, tmp_path / "svc") as svc:
        time.sleep(WARMUP_S)
        with SseClients(svc.port, tmp_path / "clients", CLIENTS, stall=STALLED) as clients:
            ready = clients.ready
            stall = Phase(svc, "stalled clients").run(STALL_S, poll=5.0)
            stats = clients.stats(stall.t0, stall.t1)

            # The server times a client out once its socket buffers are full and a send has waited 10 s; how
            # long 60 s of frames take to fill them depends on the kernel's buffer sizing, so the stall goes on
            # (the clients still not reading) until all are counted, within a deadline, not a measurement.
            def all_timed_out() -> float:
                n = counted(svc.state(), "tradeobs.live.clients.timed_out")
                return n if n >= STALLED else 0.0

            timed_out = settle(all_timed_out, 90.0) or counted(svc.state(), "tradeobs.live.clients.timed_out")
            clients.resume()  # the stalled ones drain what the kernel held and see the close
            closed = settle(
                lambda: clients.stats(time.time(), time.time())["stalled"]["closed_by_server"] == STALLED, 30.0, 0.5
            )
            end = clients.stats(time.time(), time.time())
            _no_traceback(svc)

    assert ready == CLIENTS, f"only {ready} of {CLIENTS} clients got a first frame"
    readers = end["readers"]
    assert timed_out == STALLED, f"{timed_out:g} clients counted as timed out, {STALLED} stalled"
    assert end["stalled"]["closed_by_server"] == STALLED and closed, f"stalled clients not closed: {end['stalled']}"
    assert readers["connected"] == CLIENTS - STALLED and max(readers["connects"]) == 1, "a reader was dropped"
    assert not stall.stalls(), f"the trading loop stalled: {stall.stalls()}"
    rss0, rss_peak, rss1 = stall.first("rss"), stall.peak("rss"), stall.last("rss")
    assert rss_peak - rss0 <= STALL_RSS_BOUND, f"the service's RSS grew {(rss_peak - rss0) / MB:.0f} MiB"
    lat = distribution(stats["latencies"])
    nodeid, section = request.node.nodeid, "Faults"
    if STALL_S != STALL_DEFAULT_S:
        if not UPDATE:
            print(f"(not recorded: the committed row is for TRADEOBS_STALL_SECONDS={STALL_DEFAULT_S:g})")
            return
        nodeid, section = f"{nodeid}[{STALL_S:g}s]", "Full-length runs (benchmarks)"
    record(
        nodeid,
        Row(
            section=section,
            order=51,
            case=f"live stream: {STALLED} clients stop reading (4 KB receive buffer, reading paused) for {STALL_S:g} s "
            f"while {CLIENTS - STALLED} read",
            load=f"{LOAD}; {CLIENTS} SSE clients ({SSE_PROCESSES} processes)",
            outcome=f"the {STALLED} stalled clients were closed by the send timeout and counted in "
            f"tradeobs.live.clients.timed_out; no reader dropped; kept trading; RSS within "
            f"{STALL_RSS_BOUND // MB} MiB of before; no traceback",
            lost="nothing for the readers; the stalled clients lose the stream (closed, as designed)",
            figures={
                "readers' frame latency": f"p50 {fmt_ms(lat, 'p50')}, p99 {fmt_ms(lat)}, p99.9 "
                f"{fmt_ms(lat, 'p99.9')} ({lat.get('n', 0)} frames)",
                "service RSS": f"{rss0 / MB:.0f} MiB when the stall began, peak {rss_peak / MB:.0f} MiB, "
                f"{rss1 / MB:.0f} MiB after {STALL_S:g} s",
                "timed out": f"{timed_out:g}",
            },
        ),
    )
