"""tradeobs_agent/collector_tools.py without a collector: compose interpolation, pid files, usage errors.
The real-binary behaviour (validate, print-config, SIGHUP) is in tests/integration/test_collector_tools.py."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tradeobs_agent import collector_tools as ct
from tradeobs_agent.cli import main as cli_main

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("${A}", "a"),
        ("${UNSET:-dflt}", "dflt"),
        ("${EMPTY:-dflt}", "dflt"),
        ("${EMPTY-dflt}", ""),
        ("x-$A-$$B", "x-a-$B"),
        ("${A:?must be set}", "a"),
    ],
)
def test_compose_interpolation(value: str, expected: str) -> None:
    assert ct._interpolate(value, {"A": "a", "EMPTY": ""}, "here") == expected


def test_compose_required_variable_names_it() -> None:
    with pytest.raises(ct.CollectorToolError, match=r"variable TOKEN is required: set it in \.env"):
        ct._interpolate("${TOKEN:?set it in .env}", {}, "compose.yml service x")


def test_compose_deployment_is_the_service_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_file = tmp_path / "x.env"
    env_file.write_text("TRADEOBS_ENVIRONMENT=prod\nTRADEOBS_COLLECTOR_LOG_LEVEL=debug\n")
    monkeypatch.setenv("TRADEOBS_COLLECTOR_LOG_LEVEL", "warn")  # the shell wins over the env file, as in compose
    monkeypatch.setenv("TRADEOBS_TRACES_EXPORTERS", "[debug]")  # a host setting compose does not pass on
    dep = ct.compose_deployment(None, REPO / "compose" / "docker-compose.yml", "otel-collector", env_file)
    assert dep.config == REPO / "collector" / "otel-collector.yaml"  # the file mounted at --config
    assert dep.env["TRADEOBS_DEPLOYMENT_ENVIRONMENT"] == "prod"
    assert dep.env["TRADEOBS_COLLECTOR_LOG_LEVEL"] == "warn"
    assert dep.env["TRADEOBS_TRACES_OTLP_ENDPOINT"] == "jaeger:4317"
    assert "TRADEOBS_TRACES_EXPORTERS" not in dep.env
    assert not dep.queue_dir_visible


def test_compose_unknown_service_lists_the_known_ones() -> None:
    with pytest.raises(ct.CollectorToolError, match=r"--compose-service 'otelcol' is not in .*otel-collector"):
        ct.compose_deployment(None, REPO / "compose" / "docker-compose.yml", "otelcol", None)


def test_pid_file_errors_name_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ct.CollectorToolError, match=r"pid file .*missing\.pid not found: pass --pid PID or --pid-file"):
        ct._read_pid(None, str(tmp_path / "missing.pid"))
    bad = tmp_path / "bad.pid"
    bad.write_text("otelcol\n")
    with pytest.raises(ct.CollectorToolError, match="holds 'otelcol', not a process id"):
        ct._read_pid(None, str(bad))
    good = tmp_path / "good.pid"
    good.write_text("1234\n")
    assert ct._read_pid(None, str(good)) == 1234
    assert ct._read_pid(77, str(good)) == 77


def test_reload_refuses_a_pid_that_is_not_a_collector() -> None:
    with pytest.raises(ct.CollectorToolError, match=f"pid {os.getpid()} is not a collector"):
        ct.process_deployment(os.getpid(), None)


def test_config_path_from_the_collector_command_line() -> None:
    assert ct._config_from_argv(["otelcol-tradeobs", "--config", "file:/etc/o.yaml"], 1) == Path("/etc/o.yaml")
    assert ct._config_from_argv(["otelcol-tradeobs", "--config=c.yaml"], 1) == Path("c.yaml")
    with pytest.raises(ct.CollectorToolError, match="not a file; pass FILE"):
        ct._config_from_argv(["otelcol", "--config=http://cfg/x.yaml"], 1)
    with pytest.raises(ct.CollectorToolError, match="no --config argument"):
        ct._config_from_argv(["otelcol"], 1)


def test_missing_binary_is_a_clear_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("TRADEOBS_CACHE", str(tmp_path / "cache"))
    assert cli_main(["collector", "check", str(REPO / "collector" / "otel-collector.yaml")]) == 2
    err = capsys.readouterr().err
    assert "otelcol-tradeobs not found" in err and "scripts/build-collector.sh" in err
    monkeypatch.setenv("TRADEOBS_COLLECTOR_BIN", str(tmp_path / "nope"))
    assert cli_main(["collector", "check"]) == 2
    assert "collector binary" in capsys.readouterr().err


def test_missing_config_file_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # any executable: the missing file is reported before the binary runs
    assert cli_main(["collector", "check", str(tmp_path / "nope.yaml"), "--binary", sys.executable]) == 2
    assert "nope.yaml: no such file" in capsys.readouterr().err


def test_the_default_config_missing_says_what_to_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The default, collector/otel-collector.yaml, is this repository's file: run anywhere but a checkout's root (as
    from an installed wheel) it said only "no such file". Before the binary is looked for (none here either)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TRADEOBS_COLLECTOR_CONFIG", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("TRADEOBS_CACHE", str(tmp_path / "cache"))
    for cmd in ("check", "migrate-queue"):
        assert cli_main(["collector", cmd]) == 2
        err = capsys.readouterr().err
        assert f"tradeobs collector {cmd}: config file collector/otel-collector.yaml: no such file" in err, err
        assert "pass your collector's config as FILE, or set TRADEOBS_COLLECTOR_CONFIG" in err, err
    # a file the user named: the plain message, no advice about the default
    monkeypatch.setenv("TRADEOBS_COLLECTOR_CONFIG", str(tmp_path / "mine.yaml"))
    assert cli_main(["collector", "check"]) == 2
    err = capsys.readouterr().err
    assert "mine.yaml: no such file" in err and "FILE" not in err, err


def test_every_option_has_help_stating_its_default() -> None:
    """The bar tests/unit/test_cli.py sets for the main parser."""
    import argparse

    parser = ct.build_parser()
    (subs,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert set(subs.choices) == {"check", "reload", "migrate-queue"}
    for name, sub in subs.choices.items():
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help and "(default: " in action.help, f"collector {name} {action.dest}: no default in help"


def test_every_command_says_what_it_does_and_every_option_what_it_is() -> None:
    """`tradeobs collector reload --help` was a bare usage line, and --pid-file's help only its default."""
    import argparse

    parser = ct.build_parser()
    (subs,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for name, sub in subs.choices.items():
        assert sub.description and len(sub.description.split()) > 10, f"collector {name}: no description"
        for action in sub._actions:
            assert action.help and not action.help.startswith("(default"), f"collector {name} {action.dest}"


def test_collector_alone_prints_usage_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli_main(["collector"])
    assert exc.value.code == 2
    assert "usage: tradeobs collector" in capsys.readouterr().err
