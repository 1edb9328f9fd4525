"""Configuration resolution: every source, precedence, bad values, secrets."""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

import pytest

import tradeobs_agent
from tradeobs_agent import config
from tradeobs_agent import environment_variables as ev
from tradeobs_agent.cli import settings_table
from tradeobs_agent.config import FIELDS, Field, Settings, describe, otlp_for, resolve_settings
from tradeobs_agent.exceptions import TradeObsConfigError, UnknownSettingError
from tradeobs_agent.options import _GROUPS, flatten

REPO = Path(__file__).resolve().parents[2]


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
        ({"live_cors_origins": ["*"]}, "live_cors_origins"),
        ({"live_nats_url": "http://broker:4222"}, "live_nats_url"),
        ({"max_series": 2000.5}, "max_series"),
        ({"max_gauge_series": 0}, "max_gauge_series"),
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


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("auto", "auto"),
        ("on", "on"),
        ("OFF", "off"),
        ("true", "on"),
        ("True", "on"),
        ("1", "on"),
        ("YES", "on"),
        (" yes ", "on"),
        ("false", "off"),
        ("0", "off"),
        ("No", "off"),
    ],
)
def test_multiprocess_reads_a_boolean_like_the_other_switches(raw: str, expected: str) -> None:
    s, report = resolve_settings(env={"TRADEOBS_MULTIPROCESS": raw})
    assert s.multiprocess == expected
    assert report.problems == [] and report.source("multiprocess") == "TRADEOBS_MULTIPROCESS"


@pytest.mark.parametrize(("toml", "expected"), [("true", "on"), ("false", "off"), ('"Yes"', "on"), ('"auto"', "auto")])
def test_multiprocess_in_the_file_reads_a_toml_boolean(tmp_path: Path, toml: str, expected: str) -> None:
    cfg = tmp_path / "tradeobs.toml"
    cfg.write_text(f"multiprocess = {toml}\n")
    s, report = resolve_settings(env={}, config_file=str(cfg))
    assert s.multiprocess == expected and report.problems == []


def test_a_bad_switch_names_every_spelling_it_takes() -> None:
    """``TRADEOBS_LIVE_ENABLED=nope`` said "expected a boolean (true/false)", while ``off``, ``no`` and ``0`` were
    taken too (a newcomer who wrote ``TRADEOBS_OTLP_ENABLED=off`` saw it work, then this message said only
    true/false): what is allowed is every spelling taken."""
    s, report = resolve_settings(env={"TRADEOBS_LIVE_ENABLED": "nope"})
    assert s.live_enabled is True
    assert [str(p) for p in report.problems] == [
        "ignoring TRADEOBS_LIVE_ENABLED value 'nope' for live_enabled: expected a boolean: true or false "
        "(or 1/0, yes/no, on/off); using the default"
    ]
    for word in ("1", "yes", "on", "0", "no", "off"):
        assert resolve_settings(env={"TRADEOBS_LIVE_ENABLED": word})[1].problems == []


@pytest.mark.parametrize("raw", ["maybe", "2", "enabled", " onn "])
def test_a_bad_multiprocess_value_names_the_setting_the_value_and_what_is_allowed(raw: str) -> None:
    s, report = resolve_settings(env={"TRADEOBS_MULTIPROCESS": raw})
    assert s.multiprocess == "auto"
    (problem,) = report.problems
    text = str(problem)
    assert problem.setting == "multiprocess" and "TRADEOBS_MULTIPROCESS" in text
    assert repr(raw) in text
    assert "auto, on, off" in text and "true/1/yes" in text and "false/0/no" in text


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


# --------------------------------------------------------------------------- unknown names: "did you mean"


def test_unknown_setting_argument_names_the_closest_and_hides_the_value() -> None:
    with pytest.raises(UnknownSettingError) as info:
        resolve_settings(env={}, live_tokn="s3cret-value")
    err = info.value
    assert isinstance(err, TypeError) and isinstance(err, TradeObsConfigError)
    assert err.setting == "live_tokn" and "did you mean 'live_token'?" in str(err)
    assert "s3cret-value" not in str(err)


def test_unknown_init_keyword_is_a_type_error_naming_the_closest() -> None:
    with pytest.raises(
        TypeError,
        match=r"init\(\) got an unexpected keyword argument 'servce_name'; "
        r"did you mean 'service_name'\?",
    ) as info:
        tradeobs_agent.init(servce_name="algo-1")  # type: ignore[call-arg]
    assert isinstance(info.value, TradeObsConfigError)
    assert not tradeobs_agent.is_initialized()


@pytest.mark.parametrize("cls", [c for c, *_ in _GROUPS.values()], ids=lambda c: c.__name__)
def test_unknown_option_keyword_names_the_closest_field(cls: type) -> None:
    for f in dataclasses.fields(cls):
        typo = f.name[:-1] if len(f.name) > 3 else f.name + "x"  # one letter off
        with pytest.raises(UnknownSettingError) as info:
            cls(**{typo: 1})
        assert f"{cls.__name__}() got an unexpected keyword argument {typo!r}" in str(info.value)
        assert f"did you mean {f.name!r}?" in str(info.value), str(info.value)
        cls(**{f.name: None})  # the right name still works


def test_unknown_tradeobs_variables_are_problems_with_the_closest_name() -> None:
    env = {
        "TRADEOBS_SERVCE_NAME": "algo-1",
        "TRADEOBS_LIVE_TOKN": "s3cret-value",
        "tradeobs_log_level": "DEBUG",
        "TRADEOBS_OTLP_TRACE_ENDPOINT": "http://c:4317",
        "TRADEOBS_NOTHING_LIKE_IT": "1",
        "OTEL_SOMETHING_ELSE": "1",  # not ours to judge: other OTel SDK parts read OTEL_*
    }
    s, report = resolve_settings(env=env)
    assert s.service_name == "tradeobs-service"
    text = {p.setting: str(p) for p in report.problems}
    assert set(text) == {k for k in env if not k.startswith("OTEL_")}
    assert text["TRADEOBS_SERVCE_NAME"].endswith("did you mean TRADEOBS_SERVICE_NAME?")
    assert text["TRADEOBS_LIVE_TOKN"].endswith("did you mean TRADEOBS_LIVE_TOKEN?")
    assert text["tradeobs_log_level"].endswith("did you mean TRADEOBS_LOG_LEVEL?")
    assert text["TRADEOBS_OTLP_TRACE_ENDPOINT"].endswith("did you mean TRADEOBS_OTLP_TRACES_ENDPOINT?")
    assert text["TRADEOBS_NOTHING_LIKE_IT"] == "unknown environment variable TRADEOBS_NOTHING_LIKE_IT is ignored"
    assert "s3cret-value" not in " ".join(text.values())


def test_variables_of_the_collector_compose_and_tools_are_not_reported() -> None:
    env = {name: "x" for name in ev.OTHER_TRADEOBS_VARIABLES}
    env.update({name: "" for name in config.agent_variables()})
    _s, report = resolve_settings(env=env)
    assert report.problems == []


_SCANNED = ["agent", "collector", "compose", "scripts", "benchmarks", ".ci", "tests/integration", "tests/e2e",
            "tests/compose", "tests/_util.py", "tests/conftest.py"]  # fmt: skip


def _repo_tradeobs_names() -> set[str]:
    import re

    names: set[str] = set()
    for entry in _SCANNED:
        root = REPO / entry
        files = [root] if root.is_file() else [f for f in root.rglob("*") if f.is_file()]
        for f in files:
            try:
                text = f.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            for line in text.splitlines():
                if ">>>" in line or "did you mean" in line:
                    continue  # doctest examples of misspelt names
                names.update(re.findall(r"(?<![A-Za-z0-9_])TRADEOBS_[A-Z0-9_]*[A-Z0-9]", line))
    return names


def test_every_tradeobs_variable_in_the_repository_is_known_and_the_list_has_no_stale_names() -> None:
    """The "not ours" list is complete: a variable added to the collector config or a script must be added there."""
    used = _repo_tradeobs_names()
    known = config.agent_variables() | ev.OTHER_TRADEOBS_VARIABLES
    # Prefixes built at run time: TRADEOBS_DEMO_{name} (demo/engine.py), TRADEOBS_OTLP_{SIGNAL}_{KEY} (config.py).
    fragments = {"TRADEOBS_DEMO", "TRADEOBS_OTLP"}
    assert used - known - fragments == set(), (
        "add these to environment_variables.py (agent) or OTHER_TRADEOBS_VARIABLES"
    )
    assert ev.OTHER_TRADEOBS_VARIABLES - used == set(), "no longer used anywhere: remove from OTHER_TRADEOBS_VARIABLES"


def test_unknown_file_keys_and_sections_name_the_closest_and_hide_values(tmp_path: Path) -> None:
    cfg = tmp_path / "tradeobs.toml"
    cfg.write_text(
        'servce_name = "algo-1"\n'
        'live_tokn = "s3cret-value"\n'
        '[otpl]\nendpoint = "http://c:4317"\n'
        '[otlp]\nendpont = "http://c:4317"\n'
        '[logs]\nlevl = "DEBUG"\n'
        "live = false\n"  # TOML puts this into [logs], not the top level
    )
    s, report = resolve_settings(env={}, config_file=str(cfg))
    assert (s.service_name, s.otlp_endpoint, s.log_level, s.live_enabled) == ("tradeobs-service", "", "INFO", True)
    text = sorted(str(p) for p in report.problems)
    where = str(cfg)
    assert text == sorted(
        [
            f"unknown key 'servce_name' in {where} is ignored; did you mean 'service_name'?",
            f"unknown key 'live_tokn' in {where} is ignored; did you mean 'live_token'?",
            f"unknown section [otpl] in {where} is ignored; did you mean [otlp]?",
            f"unknown key 'endpont' in [otlp] of {where} is ignored; did you mean 'endpoint'?",
            f"unknown key 'levl' in [logs] of {where} is ignored; did you mean 'level'?",
            f"unknown key 'live' in [logs] of {where} is ignored; "
            "'live' belongs at the top, before the first [section]",
        ]
    )
    assert all("s3cret-value" not in t for t in text)


def test_a_tradeobs_header_is_named_for_what_it_is_not_a_misspelt_section(tmp_path: Path) -> None:
    # [tool.tradeobs] copied into tradeobs.toml without "tool.": the closest section was [traces]
    cfg = tmp_path / "tradeobs.toml"
    cfg.write_text('[tradeobs]\nservice_name = "algo-1"\n')
    s, report = resolve_settings(env={}, config_file=str(cfg))
    assert s.service_name == "tradeobs-service"
    assert [str(p) for p in report.problems] == [
        f"unknown section [tradeobs] in {cfg} is ignored; "
        "settings go at the top of this file, with no [tradeobs] header (or under [tool.tradeobs])"
    ]


def test_pyproject_tradeobs_table_is_a_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # found by itself in the working directory: the table was skipped with "no problems"
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n[tradeobs]\nservice_name = "algo-1"\n')
    monkeypatch.chdir(tmp_path)
    s, report = resolve_settings(env={})
    assert s.service_name == "tradeobs-service"
    assert [str(p) for p in report.problems] == [
        "pyproject.toml: a [tradeobs] table is ignored; in pyproject.toml the settings go under [tool.tradeobs]"
    ]


def test_pyproject_tradeobs_table_beside_the_tool_table_is_a_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A [tradeobs] table beside [tool.tradeobs] (a setting added under the wrong header): its settings were ignored
    with "no problems" (a newcomer's log_level = "DEBUG" had no effect and nothing said why)."""
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n[tool.tradeobs]\nservice_name = "algo-1"\n[tradeobs]\nlog_level = "DEBUG"\n'
    )
    monkeypatch.chdir(tmp_path)
    s, report = resolve_settings(env={})
    assert (s.service_name, s.log_level) == ("algo-1", "INFO")
    assert [str(p) for p in report.problems] == [
        "pyproject.toml: a [tradeobs] table is ignored; in pyproject.toml the settings go under [tool.tradeobs]"
    ]


def test_pyproject_tool_table_reports_unknown_keys_with_its_location(tmp_path: Path) -> None:
    cfg = tmp_path / "pyproject.toml"
    cfg.write_text('[project]\nname = "x"\n[tool.tradeobs]\nprometheus_prot = 9999\n')
    _s, report = resolve_settings(env={}, config_file=str(cfg))
    assert [str(p) for p in report.problems] == [
        f"unknown key 'prometheus_prot' in {cfg} [tool.tradeobs] is ignored; did you mean 'prometheus_port'?"
    ]


# --------------------------------------------------------------------------- file sections read like init()


def _group_cases() -> list[tuple[str, str, str]]:
    """(init() group, option field, setting) for every field of every option dataclass."""
    return [
        (group, f.name, renames.get(f.name, prefix + f.name))
        for group, (cls, prefix, _switch, renames) in _GROUPS.items()
        for f in dataclasses.fields(cls)
    ]


_SAMPLE = {
    "otlp_endpoint": "http://c:4317", "otlp_protocol": "http/protobuf", "otlp_headers": {"k": "v"},
    "otlp_timeout": 3.0, "otlp_insecure": True, "otlp_retry_items": 10, "otlp_retry_max_age": 30.0,
    "traces_file": "t.jsonl", "prometheus_host": "0.0.0.0", "prometheus_port": 9999,
    "prometheus_allowed_hosts": ["desk-box"],
    "traces_sampler": "always_off", "traces_sampler_arg": 0.5, "metric_export_interval": 2.0, "max_series": 7,
    "max_gauge_series": 9, "symbol_allowlist": ["AAPL"],
    "contract_multipliers": {"ESZ6": 50.0}, "log_dir": "elsewhere", "log_level": "DEBUG",
    "log_console": True,
    "log_queue_size": 64, "log_queue_policy": "block", "log_max_bytes": 4096, "log_rotate_seconds": 60,
    "log_backup_count": 2, "log_block_timeout": 0.5, "log_redact_patterns": ["x+"], "live_hz": 5.0,
    "live_max_clients": 3, "live_event_buffer": 100, "live_token": "t", "live_session_ttl": 900.0, "live_cors_origins": ["https://desk.example"],
    "live_allowed_hosts": ["desk.example"], "live_grafana_url": "http://grafana.desk:3000",
    "live_nats_url": "nats://127.0.0.1:4222", "live_money_decimals": 8,
    "otlp_enabled": False, "prometheus_enabled": False, "logs_enabled": False, "live_enabled": False,
}  # fmt: skip


@pytest.mark.parametrize(("group", "key", "setting"), _group_cases())
def test_a_file_section_reads_like_the_init_option_group(tmp_path: Path, group: str, key: str, setting: str) -> None:
    """``[logs] dir = ...`` in the file is ``init(logs=LogOptions(dir=...))``, for every option of every group."""
    import tomllib

    value = _SAMPLE[setting]
    cfg = tmp_path / "tradeobs.toml"
    cfg.write_text(f"[{group}]\n{key} = {_toml(value)}\n")
    assert tomllib.loads(cfg.read_text())[group][key] == value
    from_file, report = resolve_settings(env={}, config_file=str(cfg))
    assert report.problems == []
    cls = _GROUPS[group][0]
    from_code, _ = resolve_settings(env={}, **flatten({group: cls(**{key: value})}))
    assert getattr(from_file, setting) == getattr(from_code, setting) != getattr(Settings(), setting)


def _toml(value: object) -> str:
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


@pytest.mark.parametrize("group", [g for g, (_c, _p, switch, _r) in _GROUPS.items() if switch])
def test_a_file_switches_a_subsystem_off_like_init_false(tmp_path: Path, group: str) -> None:
    switch = _GROUPS[group][2]
    assert switch is not None
    for text in (f"{group} = false\n", f"[{group}]\nenabled = false\n"):
        cfg = tmp_path / "tradeobs.toml"
        cfg.write_text(text)
        s, report = resolve_settings(env={}, config_file=str(cfg))
        assert report.problems == [] and getattr(s, switch) is False, text
    from_code, _ = resolve_settings(env={}, **flatten({group: False}))
    assert getattr(from_code, switch) is False


# --------------------------------------------------------------------------- empty values


@pytest.mark.parametrize("f", FIELDS, ids=lambda f: f.name)
def test_an_empty_value_means_the_same_from_the_environment_and_the_file(tmp_path: Path, f: Field) -> None:
    """Empty is "not set", unless the setting documents a meaning for it; then it means that from every source."""
    cfg = tmp_path / "tradeobs.toml"
    cfg.write_text(f'{f.name} = ""\n')
    from_env, env_report = resolve_settings(env={f.env: ""})
    from_file, file_report = resolve_settings(env={}, config_file=str(cfg))
    assert env_report.problems == [] and file_report.problems == []
    if f.empty:
        assert getattr(from_env, f.name) == getattr(from_file, f.name) == f.parse("")
        assert env_report.source(f.name) == f.env and file_report.source(f.name).startswith("file")
        assert resolve_settings(env={}, **{f.name: ""})[0] == from_env  # and as an argument
        assert f"empty = {f.empty}" in settings_table()
    else:
        assert getattr(from_env, f.name) == getattr(from_file, f.name) == f.default
        assert env_report.source(f.name) == file_report.source(f.name) == "default"


def test_an_empty_setting_with_a_meaning_overrides_lower_sources(tmp_path: Path) -> None:
    cfg = tmp_path / "tradeobs.toml"
    cfg.write_text('log_dir = "from-file"\nsymbol_allowlist = ["AAPL"]\n')
    s, _ = resolve_settings(env={"TRADEOBS_LOG_DIR": "", "TRADEOBS_SYMBOL_ALLOWLIST": " "}, config_file=str(cfg))
    assert s.log_dir == "" and s.symbol_allowlist == ()


def test_an_empty_log_dir_in_the_environment_turns_file_logs_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TRADEOBS_LOG_DIR", "")
    agent = tradeobs_agent.init(otlp=False, prometheus=False, live=False)
    tradeobs_agent.get_logger("execution").warning("no file for me")
    assert agent.force_flush(5.0)
    tradeobs_agent.shutdown()
    assert agent.settings.log_dir == ""
    assert list(tmp_path.rglob("*")) == []  # no ./logs, no files anywhere


# --------------------------------------------------------------------------- units and numbers


@pytest.mark.parametrize(
    ("env", "setting", "expected"),
    [
        ({"OTEL_EXPORTER_OTLP_TIMEOUT": "5"}, "otlp_timeout", "a number in [100, 300000] milliseconds"),
        ({"OTEL_METRIC_EXPORT_INTERVAL": "1"}, "metric_export_interval", "a number in [50, 3600000] milliseconds"),
        ({"OTEL_EXPORTER_OTLP_LOGS_TIMEOUT": "5"}, "otlp_logs_timeout", "a number in [100, 300000] milliseconds"),
        ({"TRADEOBS_OTLP_TIMEOUT": "0.01"}, "otlp_timeout", "a number in [0.1, 300] seconds"),
        ({"TRADEOBS_OTLP_LOGS_TIMEOUT": "1000"}, "otlp_logs_timeout", "a number in [0.1, 300] seconds"),
        ({"TRADEOBS_METRIC_EXPORT_INTERVAL": "0"}, "metric_export_interval", "a number in [0.05, 3600] seconds"),
        ({"TRADEOBS_MAX_SERIES": "0"}, "max_series", "an integer in [1, 1000000]"),
        ({"TRADEOBS_MAX_GAUGE_SERIES": "20k"}, "max_gauge_series", "an integer in [1, 1000000]"),
    ],
)
def test_messages_give_the_range_in_the_variables_own_unit(env: dict[str, str], setting: str, expected: str) -> None:
    _s, report = resolve_settings(env=env)
    [problem] = report.problems
    assert problem.setting == setting and problem.allowed == expected
    assert f"expected {expected};" in str(problem)


def test_tradeobs_per_signal_timeout_is_seconds_like_the_generic_one() -> None:
    s, report = resolve_settings(env={"TRADEOBS_OTLP_TRACES_TIMEOUT": "2.5", "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT": "2500"})
    assert report.problems == []
    assert otlp_for(s, "traces").timeout == otlp_for(s, "logs").timeout == 2.5


@pytest.mark.parametrize("f", [f for f in FIELDS if f.allowed.startswith("an integer")], ids=lambda f: f.name)
def test_integer_settings_refuse_fractions_from_every_source(tmp_path: Path, f: Field) -> None:
    cfg = tmp_path / "tradeobs.toml"
    cfg.write_text(f"{f.name} = 100.5\n")
    assert [p.setting for p in resolve_settings(env={}, config_file=str(cfg))[1].problems] == [f.name]
    assert [p.setting for p in resolve_settings(env={f.env: "100.5"})[1].problems] == [f.name]
    with pytest.raises(TradeObsConfigError):
        resolve_settings(env={}, **{f.name: 100.5})
    whole = int(f.default) if f.default else 1
    cfg.write_text(f"{f.name} = {float(whole)!r}\n")
    assert getattr(resolve_settings(env={}, config_file=str(cfg))[0], f.name) == whole


# --------------------------------------------------------------------------- one validation path


@pytest.mark.parametrize(
    ("var", "raw"),
    [
        ("TRADEOBS_LIVE_CORS_ORIGINS", "*"),
        ("TRADEOBS_LIVE_CORS_ORIGINS", "https://desk.example, *"),
        ("TRADEOBS_LIVE_HZ", "0.05"),
        ("TRADEOBS_LIVE_HZ", "1000"),
        ("TRADEOBS_LIVE_MAX_CLIENTS", "0"),
    ],
)
def test_a_value_create_app_would_refuse_is_a_problem_and_never_stops_the_app(
    monkeypatch: pytest.MonkeyPatch, var: str, raw: str
) -> None:
    """Regression: TRADEOBS_LIVE_CORS_ORIGINS='*' passed `config check`, then create_app() raised."""
    from tradeobs_agent import live

    monkeypatch.setenv(var, raw)
    _s, report = resolve_settings()
    [problem] = report.problems
    assert problem.source == var
    setting = problem.setting
    with pytest.raises(TradeObsConfigError) as info:  # the same value as an argument: the same parser refuses it
        live.create_app(**{setting.removeprefix("live_"): _arg(raw)})
    assert info.value.setting == setting and info.value.allowed == problem.allowed
    agent = tradeobs_agent.init(otlp=False, prometheus=False, logs=False)
    assert getattr(agent.settings, setting) == getattr(Settings(), setting)
    assert live.create_app().state.hub is agent.live  # the app starts, with the default


def _arg(raw: str) -> object:
    try:
        return float(raw)
    except ValueError:
        return [x.strip() for x in raw.split(",")]


def test_create_app_arguments_use_the_setting_parsers() -> None:
    from tradeobs_agent import live

    app = live.create_app(hz="20", max_clients="7", cors_origins="https://a.example,https://b.example")
    hub = app.state.hub
    assert (hub.hz, hub.max_clients) == (20.0, 7)
    with pytest.raises(UnknownSettingError, match="did you mean 'heartbeat'"):
        live.create_app(heartbeet=1.0)


def test_init_warns_once_per_unknown_name_and_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tradeobs.toml").write_text('[otlp]\nendpont = "http://c:4317"\n')
    monkeypatch.setenv("TRADEOBS_SERVCE_NAME", "algo-1")
    with caplog.at_level(logging.WARNING, logger="tradeobs"):
        agent = tradeobs_agent.init(otlp=False, prometheus=False, live=False)
    assert agent.settings.service_name == "tradeobs-service"
    msgs = [r.getMessage() for r in caplog.records if "unknown" in r.getMessage()]
    assert sorted(msgs) == [
        "tradeobs config: unknown environment variable TRADEOBS_SERVCE_NAME is ignored; "
        "did you mean TRADEOBS_SERVICE_NAME?",
        "tradeobs config: unknown key 'endpont' in [otlp] of tradeobs.toml is ignored; did you mean 'endpoint'?",
    ]


def test_the_internal_errors_variable_is_the_one_the_error_helper_reads() -> None:
    from tradeobs_agent import _errors

    assert _errors.ENV_STRICT == ev.TRADEOBS_INTERNAL_ERRORS
    assert resolve_settings(env={_errors.ENV_STRICT: "raise"})[1].problems == []


@pytest.mark.parametrize("console", ["false", "true"])
def test_a_config_problem_is_in_the_system_log_and_once_on_stderr(tmp_path: Path, console: str) -> None:
    """A service whose stderr goes nowhere still finds the problem in its logs; a terminal shows it once."""
    import json
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "TRADEOBS_LOG_LEVEL": "verbose",
        "TRADEOBS_LOG_DIR": str(tmp_path / "logs"),
        "TRADEOBS_LOG_CONSOLE": console,
        "TRADEOBS_PROMETHEUS_ENABLED": "false",
        "TRADEOBS_OTLP_ENABLED": "false",
        "TRADEOBS_LIVE_ENABLED": "false",
    }
    code = "import tradeobs_agent; tradeobs_agent.init(service_name='algo-1'); tradeobs_agent.shutdown()"
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    said = "ignoring TRADEOBS_LOG_LEVEL value 'verbose' for log_level"
    assert proc.stderr.count(said) == 1, proc.stderr
    lines = [json.loads(x) for x in (tmp_path / "logs" / "system.jsonl").read_text().splitlines()]
    logged = [x for x in lines if said in x["message"]]
    assert len(logged) == 1 and logged[0]["level"] == "WARNING", lines


# --------------------------------------------------------------------------- credentials in URLs


def test_a_key_in_an_otlp_endpoints_query_is_a_secret_value_the_agent_masks_wherever_it_appears(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``https://collector:4318?api_key=K`` (a service that takes its key in the query): K was masked only where
    ``api_key=`` stood before it; a user:password of an endpoint was learnt as a secret value, this key was not,
    so a line or attribute holding K alone kept it. Now the values of secret-named query parameters of the
    OTLP endpoints (generic and per signal) are learnt too; other parameters are not secrets."""
    from tradeobs_agent import secret_values

    monkeypatch.setenv("TRADEOBS_OTLP_ENDPOINT", "http://127.0.0.1:1?api_key=QSKEY-CANARY-1&region=eu-west-1")
    monkeypatch.setenv("TRADEOBS_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:1/v1/traces?x=1&token=QS%2BTOKEN-CANARY-2")
    monkeypatch.setenv("TRADEOBS_OTLP_PROTOCOL", "http/protobuf")
    agent = tradeobs_agent.init(prometheus=False, live=False, logs=False)
    try:
        assert secret_values.mask("key QSKEY-CANARY-1 in eu-west-1") == "key [REDACTED] in eu-west-1"
        assert secret_values.mask("token QS+TOKEN-CANARY-2, QS%2BTOKEN-CANARY-2") == "token [REDACTED], [REDACTED]"
    finally:
        agent.shutdown(timeout=1)


def test_a_password_in_an_otlp_endpoint_is_masked_everywhere_it_is_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``https://user:password@otlp.vendor`` (OTLP/HTTP sends it as basic auth) was shown in clear by ``config
    check``, ``doctor``, a bad value's problem, the TradeObsConfigError of a bad argument, ``repr(settings)``, and
    every outage and shutdown message of the exporters (stderr included, where nothing masked it)."""
    from tradeobs_agent import secret_values
    from tradeobs_agent._internal.providers import _otlp_exporter
    from tradeobs_agent.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "tradeobs.toml").write_text('[otlp]\nendpoint = "http://fileuser:FILEPASSWORD1@127.0.0.1:1"\n')
    env = {
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://tuser:TRACEPASSWORD2@127.0.0.1:1/v1/traces",
        "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "http://luser:LOGSPASSWORD3@127.0.0.1:bad/v1/logs",
        "TRADEOBS_OTLP_PROTOCOL": "http/protobuf",
    }
    secrets = ("FILEPASSWORD1", "TRACEPASSWORD2", "LOGSPASSWORD3")
    s, report = resolve_settings(env=env)
    assert s.otlp_endpoint.endswith("FILEPASSWORD1@127.0.0.1:1")  # still sent as it is
    assert otlp_for(s, "traces").endpoint.endswith("TRACEPASSWORD2@127.0.0.1:1/v1/traces")
    shown = [repr(s), " ".join(" ".join(r) for r in describe(s, report)), *map(str, report.problems)]
    shown += [_otlp_exporter(s, signal)[1] for signal in ("traces", "metrics")]  # the exporters' messages say this
    with pytest.raises(TradeObsConfigError) as err:
        resolve_settings(env={}, otlp_endpoint="http://auser:ARGPASSWORD4@host:bad")
    shown.append(str(err.value))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("TRADEOBS_PROMETHEUS_ENABLED", "false")
    main(["config", "check"])
    main(["doctor", "--timeout", "1"])
    shown.append(capsys.readouterr().out)
    text = "\n".join(shown)
    for secret in (*secrets, "ARGPASSWORD4"):
        assert secret not in text
    assert "http://<redacted>@127.0.0.1:1" in text and "http://<redacted>@127.0.0.1:bad/v1/logs" in text
    # The agent learns them, so a message of the SDK or a library that names the URL is masked too.
    agent = tradeobs_agent.init(prometheus=False, live=False, logs=False)
    assert all(secret_values.mask(f"to http://u:{secret}@h") == "to http://u:[REDACTED]@h" for secret in secrets[:2])
    agent.shutdown(timeout=1)


def test_an_init_argument_wins_over_the_per_signal_variables_too() -> None:
    """Explicit arguments come first, for every setting: a per-signal variable set globally
    (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT/_HEADERS) overrode OtlpOptions(endpoint=..., headers=...), so a service's own
    vendor key went to the platform's collector and the platform's token to the service's endpoint."""
    env = {
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://platform:4317",
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "authorization=Bearer PLATFORMTOKEN",
        "TRADEOBS_OTLP_LOGS_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT": "500",
    }
    s, report = resolve_settings(
        env=env, otlp_endpoint="https://vendor:4317", otlp_headers={"x-vendor-key": "k"}, otlp_protocol="grpc"
    )
    for signal in ("traces", "metrics", "logs"):
        t = otlp_for(s, signal)
        assert (t.endpoint, dict(t.headers), t.protocol) == ("https://vendor:4317", {"x-vendor-key": "k"}, "grpc")
    assert otlp_for(s, "metrics").timeout == 0.5  # not an argument: the variable still overrides the generic one
    assert report.source("otlp_metrics_timeout") == "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT"
    s, _ = resolve_settings(env=env)  # without arguments, the per-signal variables apply as before
    assert otlp_for(s, "traces").endpoint == "http://platform:4317"
    assert otlp_for(s, "traces").headers == {"authorization": "Bearer PLATFORMTOKEN"}


def test_the_identity_in_otel_resource_attributes_is_used_when_nothing_sets_it(tmp_path: Path) -> None:
    """A platform's OTEL_RESOURCE_ATTRIBUTES=deployment.environment=prod,service.version=1.4.2 was exported as
    deployment.environment=dev and service.version=0.0.0: the defaults replaced them (only service.name was read)."""
    from tradeobs_agent._internal.resource import build_resource

    attrs = "deployment.environment=prod,service.version=1.4.2,service.name=risk"
    s, report = resolve_settings(env={"OTEL_RESOURCE_ATTRIBUTES": attrs})
    assert (s.service_name, s.service_version, s.environment) == ("risk", "1.4.2", "prod")
    assert report.source("environment") == "OTEL_RESOURCE_ATTRIBUTES (deployment.environment)"
    resource = build_resource(s).attributes
    assert (resource["deployment.environment"], resource["deployment.environment.name"]) == ("prod", "prod")
    assert resource["service.version"] == "1.4.2"
    # The newer name wins over the older; a setting from any source wins over the attributes.
    cfg = tmp_path / "tradeobs.toml"
    cfg.write_text('service_version = "2.0"\n')
    env = {"OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=old,deployment.environment.name=new,service.version=1"}
    s, _ = resolve_settings(env=env, config_file=str(cfg))
    assert (s.environment, s.service_version) == ("new", "2.0")
    # A bad value where the setting is set falls back to the default, as documented, not to the attributes.
    s, report = resolve_settings(env={**env, "TRADEOBS_ENVIRONMENT": "x" * 300})
    assert s.environment == "dev" and [p.setting for p in report.problems] == ["environment"]


def test_a_config_file_argument_that_is_not_a_path_raises_naming_it_and_a_pathlike_is_read(tmp_path: Path) -> None:
    """init(config_file=5) raised a bare TypeError from pathlib, deep inside; a Path was read only by accident."""
    with pytest.raises(TradeObsConfigError, match=r"invalid setting config_file=5: expected a path"):
        tradeobs_agent.init(config_file=5)  # type: ignore[arg-type]
    cfg = tmp_path / "svc.toml"
    cfg.write_text("prometheus_port = 9999\n")
    s, report = resolve_settings(env={}, config_file=cfg)
    assert s.prometheus_port == 9999 and report.config_file == str(cfg)


def test_config_check_and_problems_mask_secrets_in_values_as_the_logs_and_the_resource_do(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """OTEL_RESOURCE_ATTRIBUTES=api_key=...,build.url=https://ci:pw@... is masked in the resource the agent exports,
    but `tradeobs config check` printed it in clear, and a bad value's problem (printed on stderr by init(), where
    no log redaction runs, and by config check) showed 'api_key=...' or a Bearer token as it was."""
    from tradeobs_agent.cli import main

    attrs = "api_key=ATTRKEY12345,build.url=https%3A%2F%2Fci%3ACIPASSWORD9%40ci.example%2Fjob"
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", attrs)
    monkeypatch.setenv("TRADEOBS_SERVICE_VERSION", "token=VERSIONTOKEN77 " + "x" * 300)
    monkeypatch.setenv("TRADEOBS_TRADING_MODE", "Bearer MODETOKEN123456")
    assert main(["config", "check"]) == 1
    out = capsys.readouterr().out
    for secret in ("ATTRKEY12345", "CIPASSWORD9", "VERSIONTOKEN77", "MODETOKEN123456"):
        assert secret not in out
    assert "'api_key': '[REDACTED]'" in out and "https://ci:[REDACTED]@ci.example/job" in out
    assert "ignoring TRADEOBS_TRADING_MODE value 'Bearer [REDACTED]' for trading_mode" in out
    with pytest.raises(TradeObsConfigError) as err:
        tradeobs_agent.init(trading_mode="Bearer ARGTOKEN1234567")
    assert "ARGTOKEN1234567" not in str(err.value)


@pytest.mark.parametrize("value", ["1", "yes", "on", "enabled"])
def test_otel_boolean_variables_read_true_only_as_the_specification_says(value: str) -> None:
    """OTEL_SDK_DISABLED=1 turned the whole agent off, while the specification says only 'true' is true (and any
    other value false, with a warning): a platform's other SDKs stayed on. TRADEOBS_SDK_DISABLED keeps its own
    booleans."""
    s, report = resolve_settings(env={"OTEL_SDK_DISABLED": value, "OTEL_EXPORTER_OTLP_INSECURE": value})
    assert s.sdk_disabled is False and s.otlp_insecure is None
    assert sorted(p.setting for p in report.problems) == ["otlp_insecure", "sdk_disabled"]
    assert "expected true or false" in str(report.problems[0])
    s, report = resolve_settings(env={"OTEL_SDK_DISABLED": "TRUE", "OTEL_EXPORTER_OTLP_INSECURE": "False"})
    assert (s.sdk_disabled, s.otlp_insecure, report.problems) == (True, False, [])
    if value != "enabled":
        s, _ = resolve_settings(env={"TRADEOBS_SDK_DISABLED": value})
        assert s.sdk_disabled is True


@pytest.mark.parametrize("group", [g for g, (_c, _p, switch, _r) in _GROUPS.items() if switch])
def test_an_option_group_does_not_switch_its_subsystem_on_over_the_environment_or_the_file(
    tmp_path: Path, group: str
) -> None:
    """init(prometheus=PrometheusOptions(port=...)) made prometheus_enabled an argument (True), so a platform's
    TRADEOBS_PROMETHEUS_ENABLED=false (or the file's `prometheus = false`) was ignored by that service alone, while
    `tradeobs config check` (no arguments) said false; the file's [prometheus] section never switched it on."""
    cls, _prefix, switch, _renames = _GROUPS[group]
    assert switch is not None
    field = dataclasses.fields(cls)[0]
    flat = flatten({group: cls(**{field.name: _SAMPLE[_GROUPS[group][3].get(field.name, _prefix + field.name)]})})
    assert switch not in flat
    env_var = "TRADEOBS_" + switch.upper()
    s, report = resolve_settings(env={env_var: "false"}, **flat)
    assert getattr(s, switch) is False and report.source(switch) == env_var
    cfg = tmp_path / "tradeobs.toml"
    cfg.write_text(f"{group} = false\n")
    s, _ = resolve_settings(env={}, config_file=str(cfg), **flat)
    assert getattr(s, switch) is False
    for explicit in (True, cls(**{field.name: flat[next(iter(flat))], "enabled": True})):  # the switch wins
        s, report = resolve_settings(env={env_var: "false"}, **flatten({group: explicit}))
        assert getattr(s, switch) is True and report.source(switch) == "argument"


def test_per_signal_headers_replace_the_generic_ones_for_that_signal() -> None:
    """OTEL_EXPORTER_OTLP_TRACES_HEADERS was merged with OTEL_EXPORTER_OTLP_HEADERS, so traces sent to a vendor
    with its own key (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT/_HEADERS) also carried the platform's token set globally;
    the SDK, and the word 'override' in configuration.md, replace them."""
    env = {
        "OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer PLATFORMTOKEN",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://vendor:4317",
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "x-api-key=VENDORKEY",
    }
    s, _ = resolve_settings(env=env)
    assert otlp_for(s, "traces").headers == {"x-api-key": "VENDORKEY"}
    assert otlp_for(s, "metrics").headers == {"authorization": "Bearer PLATFORMTOKEN"}


def test_a_config_file_that_cannot_be_read_is_a_problem_that_says_why(tmp_path: Path) -> None:
    """TRADEOBS_CONFIG_FILE naming a path the system refuses (too long) raised OSError out of init(), stopping the
    service; an unreadable file was reported as 'not valid TOML (Permission denied)'."""
    s, report = resolve_settings(env={"TRADEOBS_CONFIG_FILE": str(tmp_path / ("x" * 5000))})
    assert s == Settings() and [p.setting for p in report.problems] == ["config_file"]
    assert "File name too long; not read" in str(report.problems[0])
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"service_name = '\xff'\n")
    _, report = resolve_settings(env={}, config_file=str(binary))
    assert str(report.problems[0]) == f"config_file {str(binary)!r}: not UTF-8 text; not read"
    if os.geteuid() != 0:  # root reads any file
        locked = tmp_path / "locked.toml"
        locked.write_text("service_name = 'x'\n")
        locked.chmod(0)
        _, report = resolve_settings(env={}, config_file=str(locked))
        assert "Permission denied; not read" in str(report.problems[0])


def test_the_doc_lists_every_setting_that_gives_empty_a_meaning() -> None:
    doc = (REPO / "docs" / "configuration.md").read_text()
    paragraph = doc.split("## Empty values", 1)[1].split("##", 1)[0]
    with_meaning = [f.name for f in FIELDS if f.empty]
    assert all(f"`{name}`" in paragraph for name in with_meaning), with_meaning
    words = {6: "Six", 7: "Seven", 8: "Eight", 9: "Nine", 10: "Ten", 11: "Eleven"}
    assert f"{words[len(with_meaning)]}\nsettings give empty a meaning" in paragraph


@pytest.mark.parametrize(
    ("keyword", "how"),
    [
        ("prometheus_port", "init(prometheus=PrometheusOptions(port=...)), or with TRADEOBS_PROMETHEUS_PORT"),
        ("log_dir", "init(logs=LogOptions(dir=...)), or with TRADEOBS_LOG_DIR"),
        ("metric_export_interval", "init(metrics=MetricsOptions(export_interval=...))"),
        ("live_enabled", "init(live=False), or with TRADEOBS_LIVE_ENABLED"),
    ],
)
def test_a_settings_table_name_given_to_init_says_which_option_group_takes_it(keyword: str, how: str) -> None:
    """docs/configuration.md and `tradeobs demo --help` name settings flat (`prometheus_port`); init() takes them in
    option groups. Before, init(prometheus_port=9465) answered "did you mean 'prometheus'?", which did not say how
    to give the port."""
    with pytest.raises(UnknownSettingError) as info:
        tradeobs_agent.init(**{keyword: "s3cret-value"})
    assert f"the setting {keyword} is given in its option group: {how}" in str(info.value), str(info.value)
    assert "s3cret-value" not in str(info.value)
    assert not tradeobs_agent.is_initialized()


@pytest.mark.parametrize(
    ("keyword", "hint"),
    [
        # a grouped setting's flat name, misspelt: the setting and its group (before: "did you mean 'prometheus'?",
        # "did you mean 'live'?", or only the list of keywords)
        ("prometheus_prot", "did you mean the setting prometheus_port? It is given in its option group: "
         "init(prometheus=PrometheusOptions(port=...)), or with TRADEOBS_PROMETHEUS_PORT"),
        ("log_dri", "did you mean the setting log_dir? It is given in its option group: init(logs=LogOptions(dir=...)),"
         " or with TRADEOBS_LOG_DIR"),
        ("otlp_endpiont", "did you mean the setting otlp_endpoint? It is given in its option group: "
         "init(otlp=OtlpOptions(endpoint=...)), or with TRADEOBS_OTLP_ENDPOINT"),
        ("live_tokn", "did you mean the setting live_token? It is given in its option group: "
         "init(live=LiveOptions(token=...)), or with TRADEOBS_LIVE_TOKEN"),
        # init()'s own keywords, misspelt: the keyword
        ("servce_name", "did you mean 'service_name'?"),
        ("shutdown_timout", "did you mean 'shutdown_timeout'?"),
        ("logz", "did you mean 'logs'?"),
    ],
)  # fmt: skip
def test_a_misspelt_flat_name_given_to_init_gets_the_closest_setting(keyword: str, hint: str) -> None:
    with pytest.raises(UnknownSettingError) as info:
        tradeobs_agent.init(**{keyword: "s3cret-value"})
    assert str(info.value) == f"init() got an unexpected keyword argument {keyword!r}; {hint}"
    assert not tradeobs_agent.is_initialized()


@pytest.mark.parametrize(
    ("variable", "meant"),
    [
        ("TRADEOBS_SERVCE_NAME", "TRADEOBS_SERVICE_NAME"),
        ("TRADEOBS_PROMETHEUS_PROT", "TRADEOBS_PROMETHEUS_PORT"),
        ("TRADEOBS_LOG_DRI", "TRADEOBS_LOG_DIR"),
        ("TRADEOBS_OTLP_ENDPIONT", "TRADEOBS_OTLP_ENDPOINT"),
    ],
)
def test_a_misspelt_variable_gets_the_closest_variable(variable: str, meant: str) -> None:
    _, report = resolve_settings(env={variable: "x"})
    assert [str(p) for p in report.problems] == [
        f"unknown environment variable {variable} is ignored; did you mean {meant}?"
    ]


@pytest.mark.parametrize(
    ("group", "value", "says"),
    [
        ("otlp", "http://c:4317",
         "expected an OtlpOptions, True or False; for the endpoint: otlp=OtlpOptions(endpoint='http://c:4317')"),
        ("prometheus", 9465,
         "expected a PrometheusOptions, True or False; for the port: prometheus=PrometheusOptions(port=9465)"),
        ("logs", "/var/log/algo",
         "expected a LogOptions, True or False; for the dir: logs=LogOptions(dir='/var/log/algo')"),
        ("live", "s3cret", "expected a LiveOptions, True or False"),
        ("prometheus", "9465", "expected a PrometheusOptions, True or False"),
    ],
)  # fmt: skip
def test_a_bare_value_for_an_option_group_says_how_it_is_given(group: str, value: object, says: str) -> None:
    # init(otlp="http://c:4317") said only "expected a OtlpOptions, True or False"
    with pytest.raises(TradeObsConfigError) as exc:
        flatten({group: value})
    assert str(exc.value).endswith(f": {says}"), str(exc.value)
