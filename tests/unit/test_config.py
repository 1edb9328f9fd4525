"""Configuration resolution: every source, precedence, bad values, secrets."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import tradeobs_agent
from tradeobs_agent.config import FIELDS, describe, otlp_for, resolve_settings
from tradeobs_agent.exceptions import TradeObsConfigError


def test_defaults_with_empty_environment() -> None:
    s, report = resolve_settings(env={}, config_file=None)
    assert s.service_name == "tradeobs-service"
    assert s.otlp_protocol == "grpc"
    assert s.prometheus_host == "127.0.0.1" and s.prometheus_port == 9464
    assert report.problems == []
    assert all(report.source(f.name) == "default" for f in FIELDS)


@pytest.mark.parametrize(
    ("sources", "expected", "source"),
    [
        ({"arg": "a", "tradeobs": "t", "otel": "o", "file": "f"}, "a", "argument"),
        ({"tradeobs": "t", "otel": "o", "file": "f"}, "t", "TRADEOBS_SERVICE_NAME"),
        ({"otel": "o", "file": "f"}, "o", "OTEL_SERVICE_NAME"),
        ({"file": "f"}, "f", "file"),
        ({}, "tradeobs-service", "default"),
    ],
)
def test_precedence_argument_tradeobs_otel_file_default(
    tmp_path: Path, sources: dict[str, str], expected: str, source: str
) -> None:
    env = {}
    if "tradeobs" in sources:
        env["TRADEOBS_SERVICE_NAME"] = sources["tradeobs"]
    if "otel" in sources:
        env["OTEL_SERVICE_NAME"] = sources["otel"]
    cfg = tmp_path / "tradeobs.toml"
    if "file" in sources:
        cfg.write_text(f'service_name = "{sources["file"]}"\n')
    kwargs = {"service_name": sources["arg"]} if "arg" in sources else {}
    s, report = resolve_settings(env=env, config_file=str(cfg) if "file" in sources else None, **kwargs)
    assert s.service_name == expected
    assert report.source("service_name").startswith(source)


def test_pyproject_tool_table_is_read_from_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname="x"\n[tool.tradeobs]\nprometheus_port = 9999\n')
    monkeypatch.chdir(tmp_path)
    s, report = resolve_settings(env={})
    assert s.prometheus_port == 9999
    assert report.config_file == "pyproject.toml"


def test_tradeobs_toml_wins_over_pyproject_and_sections_flatten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.tradeobs]\nprometheus_port = 9999\n")
    (tmp_path / "tradeobs.toml").write_text('[otlp]\nendpoint = "http://collector:4317"\nprotocol = "grpc"\n')
    monkeypatch.chdir(tmp_path)
    s, _ = resolve_settings(env={})
    assert s.otlp_endpoint == "http://collector:4317"
    assert s.prometheus_port == 9464  # pyproject is not read when tradeobs.toml exists


def test_otel_units_are_converted() -> None:
    s, _ = resolve_settings(env={"OTEL_METRIC_EXPORT_INTERVAL": "1500", "OTEL_EXPORTER_OTLP_TIMEOUT": "2500"})
    assert s.metric_export_interval == 1.5
    assert s.otlp_timeout == 2.5


def test_resource_attributes_and_service_name_from_them() -> None:
    s, _report = resolve_settings(env={"OTEL_RESOURCE_ATTRIBUTES": "service.name=fromattrs,team=q%20r"})
    assert s.resource_attributes == {"service.name": "fromattrs", "team": "q r"}
    assert s.service_name == "fromattrs"
    s2, _ = resolve_settings(env={"OTEL_RESOURCE_ATTRIBUTES": "service.name=x", "OTEL_SERVICE_NAME": "y"})
    assert s2.service_name == "y"


def test_per_signal_otlp_settings() -> None:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://traces:9999/custom",
        "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL": "grpc",
        "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "http://logs:4317",
        "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT": "500",
    }
    s, report = resolve_settings(env=env)
    assert otlp_for(s, "traces").endpoint == "http://traces:9999/custom"  # per-signal: used as given
    assert otlp_for(s, "metrics").endpoint == "http://c:4318/v1/metrics"  # generic http: path appended
    assert otlp_for(s, "metrics").timeout == 0.5
    logs = otlp_for(s, "logs")
    assert (logs.protocol, logs.endpoint, logs.insecure) == ("grpc", "http://logs:4317", True)
    assert report.problems == []


def test_default_endpoint_depends_on_protocol() -> None:
    s, _ = resolve_settings(env={"TRADEOBS_OTLP_PROTOCOL": "http/protobuf"})
    assert otlp_for(s, "logs").endpoint == "http://localhost:4318/v1/logs"
    s, _ = resolve_settings(env={})
    assert otlp_for(s, "logs").endpoint == "http://localhost:4317"


@pytest.mark.parametrize(
    ("kwargs", "setting"),
    [
        ({"service_name": ""}, "service_name"),
        ({"trading_mode": "yolo"}, "trading_mode"),
        ({"otlp_protocol": "udp"}, "otlp_protocol"),
        ({"prometheus_port": 70000}, "prometheus_port"),
        ({"traces_sampler_arg": 1.5}, "traces_sampler_arg"),
        ({"otlp_endpoint": "ftp://x"}, "otlp_endpoint"),
        ({"log_queue_policy": "maybe"}, "log_queue_policy"),
        ({"nonsense": 1}, "nonsense"),
    ],
)
def test_bad_explicit_argument_raises_naming_setting_value_and_allowed(kwargs: dict[str, object], setting: str) -> None:
    with pytest.raises(TradeObsConfigError) as info:
        resolve_settings(env={}, **kwargs)
    err = info.value
    assert isinstance(err, ValueError)
    assert err.setting == setting
    assert repr(next(iter(kwargs.values()))) in str(err)
    assert "expected" in str(err) and err.allowed


def test_init_raises_on_bad_argument() -> None:
    with pytest.raises(TradeObsConfigError, match=r"trading_mode='yolo'.*paper, live"):
        tradeobs_agent.init(trading_mode="yolo", otlp=False, prometheus=False)
    assert not tradeobs_agent.is_initialized()


def test_init_rejects_wrong_option_type() -> None:
    with pytest.raises(TradeObsConfigError, match="OtlpOptions"):
        tradeobs_agent.init(otlp="http://x")  # type: ignore[arg-type]


def test_bad_env_value_warns_and_falls_back(caplog: pytest.LogCaptureFixture) -> None:
    s, report = resolve_settings(env={"TRADEOBS_PROMETHEUS_PORT": "ninety", "OTEL_TRACES_SAMPLER": "sometimes"})
    assert s.prometheus_port == 9464 and s.traces_sampler == "parentbased_always_on"
    assert {p.setting for p in report.problems} == {"prometheus_port", "traces_sampler"}
    text = " ".join(str(p) for p in report.problems)
    assert "TRADEOBS_PROMETHEUS_PORT" in text and "'ninety'" in text and "integer" in text
    assert "OTEL_TRACES_SAMPLER" in text and "parentbased_traceidratio" in text


def test_init_with_bad_env_logs_one_clear_warning_and_runs(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("TRADEOBS_TRADING_MODE", "LIVEE")
    with caplog.at_level(logging.WARNING, logger="tradeobs"):
        agent = tradeobs_agent.init(otlp=False, prometheus=False, live=False)
    assert agent.settings.trading_mode == "paper"
    msgs = [r.getMessage() for r in caplog.records if "trading_mode" in r.getMessage()]
    assert len(msgs) == 1 and "TRADEOBS_TRADING_MODE" in msgs[0] and "'LIVEE'" in msgs[0]


def test_bad_file_values_and_unknown_keys_are_problems(tmp_path: Path) -> None:
    cfg = tmp_path / "tradeobs.toml"
    cfg.write_text('log_level = "chatty"\nprometheus_prot = 1\n')
    s, report = resolve_settings(env={}, config_file=str(cfg))
    assert s.log_level == "INFO"
    settings = {p.setting for p in report.problems}
    assert settings == {"log_level", "prometheus_prot"}


def test_broken_toml_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    cfg = tmp_path / "tradeobs.toml"
    cfg.write_text("this is = = not toml")
    s, report = resolve_settings(env={}, config_file=str(cfg))
    assert s.service_name == "tradeobs-service"
    assert report.problems and report.problems[0].setting == "config_file"


def test_secrets_are_never_shown() -> None:
    env = {
        "OTEL_EXPORTER_OTLP_HEADERS": "api-key=supersecret",
        "TRADEOBS_LIVE_TOKEN": "tok3n",
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "authorization=Bearer%20abc",
    }
    s, report = resolve_settings(env=env)
    assert s.otlp_headers == {"api-key": "supersecret"}
    shown = repr(s) + " ".join(" ".join(r) for r in describe(s, report))
    assert "supersecret" not in shown and "tok3n" not in shown and "abc" not in shown
    _bad, report = resolve_settings(env={"OTEL_EXPORTER_OTLP_HEADERS": "novalue-secret"})
    assert "novalue-secret" not in " ".join(str(p) for p in report.problems)


def test_every_field_has_env_var_documented() -> None:
    from tradeobs_agent import environment_variables as ev

    for f in FIELDS:
        assert getattr(ev, f.env, None) == f.env, f"{f.env} missing from environment_variables.py"
        for var in f.otel:
            assert getattr(ev, var) == var


def test_configuration_doc_table_is_current() -> None:
    from tradeobs_agent.cli import settings_table

    doc = (Path(__file__).parents[2] / "docs" / "configuration.md").read_text()
    for f in FIELDS:
        assert f"`{f.env}`" in doc, f"{f.env} is not documented in docs/configuration.md"
    assert settings_table() in doc, "run: tradeobs config docs --write docs/configuration.md"
