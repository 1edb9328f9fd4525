"""OTEL_* variables a newcomer gets wrong: a malformed OTEL_RESOURCE_ATTRIBUTES (which the OTel SDK prints as it
loads, before init()) and a misspelt name OpenTelemetry never reads (OTEL_EXPORTER_OTLP_ENDPIONT: the service
exported nowhere, and nothing said why)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import opentelemetry.environment_variables as api_env
import opentelemetry.sdk.environment_variables as sdk_env

from tradeobs_agent._otel_env import near_miss, otel_variables
from tradeobs_agent.config import resolve_settings

_SCRIPT = """
import tradeobs_agent
tradeobs_agent.init(service_name="bot", otlp=False, prometheus=False, live=False)
snap = tradeobs_agent.get_registry().snapshot(["tradeobs.agent.config.problems"])
print(sorted((dict(p.attributes)["kind"], p.value) for p in snap.numbers("tradeobs.agent.config.problems")))
tradeobs_agent.shutdown()
"""


def _run(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TRADEOBS_", "OTEL_"))}
    base["TRADEOBS_LOG_DIR"] = str(tmp_path / "logs")
    return subprocess.run(
        [sys.executable, "-c", _SCRIPT], capture_output=True, text=True, timeout=60, env={**base, **env}
    )


def _system(tmp_path: Path) -> list[str]:
    lines = (tmp_path / "logs" / "system.jsonl").read_text().splitlines()
    return [json.loads(line)["message"] for line in lines]


def test_a_bad_otel_resource_attributes_is_masked_on_stderr_and_said_in_the_system_log_counted(tmp_path: Path) -> None:
    """The SDK printed "Invalid key value resource attribute pair token:abc123secret" as `import tradeobs_agent`
    loaded it: the secret on the terminal, and no variable named. Now that line is masked and names the variable;
    init() says the variable, the masked value and what is allowed in logs/system.jsonl, counted."""
    proc = _run(tmp_path, OTEL_RESOURCE_ATTRIBUTES="deployment.environment=prod,token:abc123secret")
    assert proc.returncode == 0, proc.stderr
    assert "abc123secret" not in proc.stderr
    [sdk_line] = [ln for ln in proc.stderr.splitlines() if ln.startswith("Invalid key value")]
    assert "token:[REDACTED]" in sdk_line and "in OTEL_RESOURCE_ATTRIBUTES: expected comma-separated" in sdk_line
    said = [m for m in _system(tmp_path) if "OTEL_RESOURCE_ATTRIBUTES" in m]
    assert said == [
        "tradeobs config: ignoring OTEL_RESOURCE_ATTRIBUTES value 'deployment.environment=prod,token:[REDACTED]' "
        "for resource_attributes: expected comma-separated key=value pairs; using the default"
    ]
    assert "abc123secret" not in (tmp_path / "logs" / "system.jsonl").read_text()
    assert proc.stdout.strip() == "[('bad_value', 1)]"


def test_a_misspelt_otel_variable_gets_one_did_you_mean_and_other_tools_names_are_left_alone(tmp_path: Path) -> None:
    proc = _run(
        tmp_path,
        OTEL_EXPORTER_OTLP_ENDPIONT="http://collector:4317",
        OTEL_SERVICE_NAM="bot",
        OTEL_PYTHON_FASTAPI_EXCLUDED_URLS="healthz",  # an instrumentation's own variable
        OTEL_COLLECTOR_MODE="gateway",  # some other tool's
    )
    assert proc.returncode == 0, proc.stderr
    said = [m for m in _system(tmp_path) if m.startswith("tradeobs config:")]
    assert said == [
        "tradeobs config: environment variable OTEL_EXPORTER_OTLP_ENDPIONT is not one OpenTelemetry reads, and is "
        "ignored; did you mean OTEL_EXPORTER_OTLP_ENDPOINT?",
        "tradeobs config: environment variable OTEL_SERVICE_NAM is not one OpenTelemetry reads, and is ignored; did "
        "you mean OTEL_SERVICE_NAME?",
    ]
    assert len([ln for ln in proc.stderr.splitlines() if "did you mean" in ln]) == 2, proc.stderr
    assert "http://collector:4317" not in proc.stderr  # never the value: it may be a secret
    assert proc.stdout.strip() == "[('unknown_name', 2)]"


def test_config_check_lists_a_misspelt_otel_variable(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRADEOBS_", "OTEL_"))}
    env["OTEL_EXPORTER_OTLP_ENDPIONT"] = "http://collector:4317"
    proc = subprocess.run(
        [sys.executable, "-m", "tradeobs_agent", "config", "check"], capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "did you mean OTEL_EXPORTER_OTLP_ENDPOINT?" in proc.stdout


def test_the_names_are_the_installed_packages_own() -> None:
    known = otel_variables()
    for module in (sdk_env, api_env):
        names = {v for k, v in vars(module).items() if k.startswith("OTEL_") and isinstance(v, str)}
        assert names and names <= known, names - known


def test_near_miss_takes_a_typo_or_two_not_a_different_name() -> None:
    known = otel_variables()
    assert near_miss("OTEL_EXPORTER_OTLP_ENDPIONT", known) == "OTEL_EXPORTER_OTLP_ENDPOINT"  # two letters swapped
    assert near_miss("otel_service_name", known) == "OTEL_SERVICE_NAME"
    assert near_miss("OTEL_LOG_EXPORTER", known) == "OTEL_LOGS_EXPORTER"
    assert near_miss("OTEL_PYTHON_FASTAPI_EXCLUDED_URLS", known) is None
    assert near_miss("OTEL_FOO", known) is None


def test_resolve_settings_says_nothing_about_known_or_far_names() -> None:
    env = {"OTEL_SERVICE_NAME": "x", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_COLLECTOR_MODE": "g"}
    _settings, report = resolve_settings(env=env)
    assert report.problems == []


def test_an_sdk_imported_before_the_agent_printed_the_pair_unmasked_and_init_says_so(tmp_path: Path) -> None:
    """An application that imports the OTel SDK before ``tradeobs_agent`` gets the SDK's line with the secret on
    stderr before any of the agent's code runs: nothing can mask it. init() now says so (masked) beside the bad
    value, naming the fixes; without the secret in the pair, or with the agent imported first, it says nothing more."""
    script = "import opentelemetry.sdk._logs\n" + _SCRIPT
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TRADEOBS_", "OTEL_"))}
    base["TRADEOBS_LOG_DIR"] = str(tmp_path / "logs")
    bad = "deployment.environment=prod,token:abc123secret"
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env={**base, "OTEL_RESOURCE_ATTRIBUTES": bad},
    )
    assert proc.returncode == 0, proc.stderr
    # the SDK's own line, printed before the agent was imported: the gap this is about
    assert "Invalid key value resource attribute pair token:abc123secret" in proc.stderr
    said = [m for m in _system(tmp_path) if "imported before tradeobs_agent" in m]
    assert said == [
        "tradeobs config: the OpenTelemetry SDK was imported before tradeobs_agent and may have printed "
        "OTEL_RESOURCE_ATTRIBUTES's bad pair on stderr unmasked (as 'Invalid key value resource attribute pair "
        "...'; here: 'deployment.environment=prod,token:[REDACTED]'); tradeobs cannot take that line back: write "
        "OTEL_RESOURCE_ATTRIBUTES as comma-separated key=value pairs, keep secrets out of it, and import "
        "tradeobs_agent before opentelemetry.sdk"
    ]
    assert "abc123secret" not in (tmp_path / "logs" / "system.jsonl").read_text()
    assert proc.stdout.strip() == "[('bad_value', 2)]"  # the bad value, and this
    # no secret in the bad pair: the SDK's line showed nothing secret, nothing more is said
    plain = resolve_settings({"OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=prod,oops"})[1].problems
    assert [str(p) for p in plain if "imported before" in str(p)] == []
