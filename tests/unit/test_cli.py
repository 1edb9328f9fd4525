"""The tradeobs command: config check, config docs, doctor, loadtest wiring."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest

import tradeobs_agent
from tests._util import dead_endpoint, free_port
from tradeobs_agent import PrometheusOptions
from tradeobs_agent.cli import main


def test_config_check_ok_and_shows_sources(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "algo-7")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "api-key=hunter2")
    assert main(["config", "check"]) == 0
    out = capsys.readouterr().out
    assert "'algo-7'" in out and "OTEL_SERVICE_NAME" in out and "no problems" in out
    assert "hunter2" not in out and "<set>" in out


def test_config_check_lists_problems_and_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "tradeobs.toml"
    cfg.write_text("live_hz = 1000\n")
    monkeypatch.setenv("TRADEOBS_LOG_QUEUE_POLICY", "sometimes")
    assert main(["config", "check", "--file", str(cfg)]) == 1
    out = capsys.readouterr().out
    assert "2 problem(s)" in out and "live_hz" in out and "TRADEOBS_LOG_QUEUE_POLICY" in out


def test_config_docs_write_replaces_only_the_table(tmp_path: Path) -> None:
    doc = tmp_path / "c.md"
    doc.write_text("intro\n<!-- BEGIN settings: x -->\nstale-table\n<!-- END settings -->\noutro\n")
    assert main(["config", "docs", "--write", str(doc)]) == 0
    text = doc.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n") and "stale-table" not in text
    assert "`TRADEOBS_SERVICE_NAME`" in text


def test_doctor_reports_each_check(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    agent = tradeobs_agent.init(otlp=False, live=False, logs=False, prometheus=PrometheusOptions(port=0))
    assert agent.prometheus_url
    urllib.request.urlopen(agent.prometheus_url, timeout=5).read()
    monkeypatch.setenv("TRADEOBS_PROMETHEUS_PORT", str(agent.prometheus.port if agent.prometheus else 0))
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", dead_endpoint())
    code = main(["doctor", "--service-url", f"http://127.0.0.1:{free_port()}", "--timeout", "1"])
    out = capsys.readouterr().out
    assert code == 1  # the collector and the live stream are down
    rows = {line.split()[0] + " " + line.split()[1]: line for line in out.splitlines() if line[:1].isalpha()}
    assert "OK" in rows["prometheus endpoint"]
    assert "FAIL" in rows["collector (grpc)"]
    assert "FAIL" in rows["live stream"]


def test_loadtest_has_its_own_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["loadtest", "--help"])
    assert exc.value.code == 0
    assert "--clients" in capsys.readouterr().out


def test_loadtest_names_what_to_install_when_psutil_is_missing() -> None:
    import subprocess
    import sys

    code = "import sys; sys.modules['psutil'] = None; from tradeobs_agent.cli import main; sys.exit(main(['loadtest']))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "pip install 'tradeobs[loadtest]'" in proc.stderr


def test_loadtest_measures_a_real_live_stream() -> None:
    """A short real run: a tradeobs server process, two load-generator processes, a table with a delivered row."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "tradeobs_agent.cli", "loadtest", "--clients", "20", "--duration", "2"]
    cmd += ["--settle", "0.5", "--procs", "1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    row = next(line for line in proc.stdout.splitlines() if line.startswith("| tradeobs | 20 |"))
    delivered = float(row.split("|")[5].strip().rstrip("%"))
    assert delivered > 0  # frames arrived (the bounds of 'sustained' are the benchmark's business)
