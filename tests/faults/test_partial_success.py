"""A backend that accepts exports but rejects part of each (OTLP ``partial_success``), seen from the service.

The real service (``demo_service.py``: the demo under uvicorn, the agent from the environment, as deployed) sends
straight to an OTLP server, over OTLP/gRPC and over OTLP/HTTP (protobuf, ``OTEL_EXPORTER_OTLP_PROTOCOL``), that
answers every export of spans, log records and metric points with success and ``partial_success``: its last item
rejected, with an ``error_message`` that echoes the request's ``authorization`` header (a backend's answer is
remote input). What the service shows: on its own ``/metrics``, ``tradeobs_agent_items_dropped_total{reason=
"rejected_by_server"}`` per signal equals what the server rejected; its log says it once per signal, with the
server's message and without the token. Before, nothing counted them and nothing said it (the SDK's exporters do not
read the answer's ``partial_success``): the items vanished.
"""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path

import pytest

from tests._util import prom_samples, wait_for

from .harness import DemoService
from .otlp_refuser import RefusingOtlpServer

pytestmark = pytest.mark.faults

SIGNALS = ("traces", "logs", "metrics")


def _rejected_on_metrics_page(url: str) -> dict[str, float]:
    out = dict.fromkeys(SIGNALS, 0.0)
    for s in prom_samples(url).get("tradeobs_agent_items_dropped_total", []):
        if s.labels.get("reason") == "rejected_by_server":
            out[s.labels["signal"]] += s.value
    return out


def _log_lines(workdir: Path, text: str) -> list[str]:
    """Messages of the service's JSON log files that contain ``text``."""
    out: list[str] = []
    for f in sorted((workdir / "logs").glob("*.jsonl")):
        for line in f.read_text(errors="replace").splitlines():
            if text in line:
                out.append(str(json.loads(line).get("message", line)))
    return out


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_what_the_backend_rejects_is_on_the_services_metrics_page_and_said_once_per_signal(
    tmp_path: Path, protocol: str
) -> None:
    token = secrets.token_urlsafe(24)
    env = {"OTEL_EXPORTER_OTLP_PROTOCOL": protocol, "TRADEOBS_OTLP_HEADERS": f"authorization=Bearer {token}"}
    with RefusingOtlpServer(protocol) as srv:
        srv.mode = None
        srv.partial = (1, f"fault injector: item rejected (request had authorization=Bearer {token})")
        with DemoService(srv.endpoint, tmp_path / "svc", orders_hz=5.0, extra_env=env) as svc:
            wait_for(lambda: all(srv.rejected[s] >= 2 for s in SIGNALS), "rejections of every signal", limit=60)
            srv.partial = None  # accepted whole from now on: the counts settle
            assert svc.flush(30)["ok"]
            url = svc.state()["prometheus_url"]
            wait_for(
                lambda: _rejected_on_metrics_page(url) == {s: float(srv.rejected[s]) for s in SIGNALS},
                "the service's /metrics to count what the server rejected",
                limit=30,
            )
            time.sleep(1.5)  # one more metrics export (1 s interval), accepted whole: nothing more counted
            page = _rejected_on_metrics_page(url)
            rejected = {s: float(srv.rejected[s]) for s in SIGNALS}
            svc.stop()
            output = svc.output()
    assert page == rejected
    assert "Traceback" not in output, output[-3000:]
    for signal in SIGNALS:
        said = _log_lines(svc.workdir, f"accepted {signal} but rejected")
        assert len(said) == 1, (signal, said)  # once, however many exports were answered so
        assert "fault injector: item rejected" in said[0] and 'reason="rejected_by_server"' in said[0], said
    assert token not in output
    for f in (svc.workdir / "logs").glob("*.jsonl"):
        assert token not in f.read_text(errors="replace"), f"the token is in {f.name}"
