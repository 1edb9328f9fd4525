"""An export failure is said once, by the agent, with its cause: the OpenTelemetry SDK's own lines about it are debug
records, not more lines on the console.

Before (the old code, 2026-12-07): a script whose collector was down printed the SDK's "Transient error
StatusCode.UNAVAILABLE encountered while exporting traces to ..., retrying in 0.86s. Error details: ... Connection
refused" (OTLP/HTTP: "Transient error ('Connection aborted.', ...)"), and beside it the agent's "cannot export traces
to ... (export failed): an outage began": the same failure twice, in different words, and the clear one without its
cause. Now the agent's line carries the cause the exporter got (``gRPC UNAVAILABLE: ... Connection refused``,
``ConnectionError: Connection refused``), and the SDK's lines go on at debug level (in the agent's log when it keeps
debug records: nothing is hidden).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests._util import dead_endpoint

SCRIPT = """\
import logging, sys, time
import tradeobs_agent
sdk = []
class Keep(logging.Handler):  # keeps every SDK record, and prints what Python's last resort would print
    def emit(self, record):
        sdk.append((record.levelname, record.getMessage()))
        if record.levelno >= logging.WARNING:
            print(record.getMessage(), file=sys.stderr)
logging.getLogger("opentelemetry").addHandler(Keep(logging.DEBUG))
logging.getLogger("opentelemetry").setLevel(logging.DEBUG)
agent = tradeobs_agent.init(service_name="my-algo", trading_mode="paper")
tt = tradeobs_agent.TradingTelemetry(strategy="s", venue="v")
o = tt.order_signal("my-1", "MSFT", "buy", 50, 410.0)
o.submitted()
o.fill(50, 410.02)
from tradeobs_agent.agent import export_state
while export_state() != "failing":  # the first export failed, while the script runs (the collector is down)
    time.sleep(0.05)
failed = [m for lvl, m in sdk if "Transient error" in m or "Failed to export" in m]
print("SDK-LINES", len(failed), sorted({lvl for lvl, m in sdk if m in failed}), file=sys.stderr)
"""


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_a_failed_export_is_said_once_with_its_cause_and_the_sdk_lines_are_debug_records(
    protocol: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRADEOBS_", "OTEL_"))}
    env.update(
        TRADEOBS_OTLP_ENDPOINT=dead_endpoint(),
        TRADEOBS_OTLP_TIMEOUT="1",  # the SDK's own retries inside one export end sooner (its last says it gave up)
        TRADEOBS_OTLP_PROTOCOL=protocol,
        TRADEOBS_PROMETHEUS_ENABLED="false",
        TRADEOBS_LIVE_ENABLED="false",
        TRADEOBS_LOG_LEVEL="DEBUG",
        TRADEOBS_LOG_DIR=str(tmp_path / "logs"),
    )
    ran = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert ran.returncode == 0, ran.stderr
    err = ran.stderr
    for raw in ("Transient error", "Failed to export", "encountered while exporting"):
        assert raw not in err, err
    # The SDK said it (its lines are kept), at debug level only.
    counted = [line for line in err.splitlines() if line.startswith("SDK-LINES ")]
    assert counted and counted[0] != "SDK-LINES 0 []" and counted[0].endswith("['DEBUG']"), err
    began = [line for line in err.splitlines() if "cannot export traces" in line and "an outage began" in line]
    assert len(began) == 1, err
    cause = "gRPC UNAVAILABLE: " if protocol == "grpc" else "ConnectionError: Connection refused"
    assert cause in began[0] and "Connection refused" in began[0], began[0]
    assert "(export failed)" not in err, err
    # Nothing hidden: at debug level the agent's log has the SDK's own words too.
    records = [json.loads(line) for line in (tmp_path / "logs" / "service.jsonl").read_text().splitlines()]
    sdk_said = [r for r in records if r["logger"].startswith("opentelemetry.") and "xport" in r["message"]]
    assert sdk_said and {r["level"] for r in sdk_said} == {"DEBUG"}, records
