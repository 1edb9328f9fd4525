"""An OTLP endpoint that parses but cannot work as used is a configuration problem, said before any export fails.

A newcomer's three usual mistakes, each of which made every export fail while ``tradeobs config check`` said
"no problems" and ``init()`` said nothing: the OTLP/HTTP port (4318) with the default protocol (gRPC), whose
failure gives no reason of its own ("export failed"); the OTLP/gRPC port with ``http/protobuf``; and a signal's
path copied into the generic endpoint (``.../v1/traces``), to which the agent appends ``/v1/<signal>`` again.
"""

from __future__ import annotations

import pytest

from tradeobs_agent.cli import main
from tradeobs_agent.config import resolve_settings


def _messages(env: dict[str, str], **explicit: object) -> list[str]:
    _, report = resolve_settings(env=env, **explicit)
    return [str(p) for p in report.problems]


def test_grpc_to_the_http_port_names_the_setting_the_value_and_the_fix() -> None:
    (msg,) = _messages({"TRADEOBS_OTLP_ENDPOINT": "http://collector:4318"})
    assert "otlp_endpoint 'http://collector:4318' (from TRADEOBS_OTLP_ENDPOINT)" in msg, msg
    assert "otlp_protocol 'grpc' (from default)" in msg, msg
    assert "TRADEOBS_OTLP_PROTOCOL=http/protobuf" in msg and "(4317)" in msg, msg


def test_http_to_the_grpc_port_is_a_problem() -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}
    (msg,) = _messages(env)
    assert "(from OTEL_EXPORTER_OTLP_ENDPOINT) is the OTLP/gRPC port (4317)" in msg, msg
    assert "TRADEOBS_OTLP_PROTOCOL=grpc" in msg and "(4318)" in msg, msg


def test_a_signal_path_in_the_generic_http_endpoint_is_a_problem_with_the_url_it_would_reach() -> None:
    (msg,) = _messages(
        {"TRADEOBS_OTLP_ENDPOINT": "http://collector:4318/v1/traces", "TRADEOBS_OTLP_PROTOCOL": "http/protobuf"}
    )
    assert "'http://collector:4318/v1/traces/v1/traces'" in msg, msg
    assert "Give the base URL ('http://collector:4318')" in msg, msg


def test_a_per_signal_http_endpoint_without_a_path_is_a_problem() -> None:
    (msg,) = _messages(
        {"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "http://collector:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}
    )
    assert msg.startswith("otlp_logs_endpoint 'http://collector:4318' (from OTEL_EXPORTER_OTLP_LOGS_ENDPOINT)"), msg
    assert "add /v1/logs ('http://collector:4318/v1/logs')" in msg, msg


def test_a_per_signal_protocol_against_the_generic_endpoint_names_its_own_variable() -> None:
    (msg,) = _messages(
        {
            "TRADEOBS_OTLP_ENDPOINT": "http://collector:4318",
            "TRADEOBS_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "grpc",
        }
    )
    assert "otlp_metrics_protocol 'grpc' (from OTEL_EXPORTER_OTLP_METRICS_PROTOCOL)" in msg, msg
    assert "TRADEOBS_OTLP_METRICS_PROTOCOL=http/protobuf" in msg, msg


def test_an_init_argument_is_checked_too_and_secrets_stay_masked() -> None:
    (msg,) = _messages({}, otlp_endpoint="http://algo:hunter2pw@collector:4318/?api_key=abcdefgh123")
    assert "(from argument)" in msg and "hunter2pw" not in msg and "abcdefgh123" not in msg, msg


@pytest.mark.parametrize(
    "env",
    [
        {"TRADEOBS_OTLP_ENDPOINT": "http://collector:4317"},
        {"TRADEOBS_OTLP_ENDPOINT": "http://collector:4318/otlp", "TRADEOBS_OTLP_PROTOCOL": "http/protobuf"},
        {"TRADEOBS_OTLP_ENDPOINT": "https://otlp.vendor.example", "TRADEOBS_OTLP_PROTOCOL": "http/protobuf"},
        {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces", "TRADEOBS_OTLP_PROTOCOL": "http/protobuf"},
        {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4317"},  # gRPC: no path needed
        {"TRADEOBS_OTLP_ENDPOINT": "http://collector:4318", "TRADEOBS_OTLP_ENABLED": "false"},  # not used
        {"TRADEOBS_OTLP_PROTOCOL": "http/protobuf"},  # the protocol's own default endpoint
    ],
)
def test_endpoints_that_work_are_not_reported(env: dict[str, str]) -> None:
    assert _messages(env) == []


def test_config_check_exits_1_on_the_http_port_with_grpc(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TRADEOBS_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    assert main(["config", "check"]) == 1
    assert "is the OTLP/HTTP port (4318)" in capsys.readouterr().out
