"""The docs runner can fail: a broken page of each kind is caught (tests/docs/runner.py)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from .pages import parse
from .runner import PageRun


def _run(tmp_path: Path, markdown: str) -> PageRun:
    (tmp_path / "page.md").write_text(markdown)
    work = Path(tempfile.mkdtemp(dir=tmp_path))
    run = PageRun(parse("page.md", root=tmp_path), work)
    run.run()
    return run


def _fails(tmp_path: Path, markdown: str, match: str) -> None:
    with pytest.raises(AssertionError, match=match):
        _run(tmp_path, markdown)


def test_a_good_page_runs(tmp_path: Path) -> None:
    run = _run(
        tmp_path, "# t\n\n```bash\ntradeobs --version\n```\n\n<!-- docs: output -->\n```text\ntradeobs 0.1.0\n```\n"
    )
    assert run.ran == ["page.md:3: tradeobs --version", "page.md:8: output matches"]


@pytest.mark.parametrize(
    ("markdown", "match"),
    [
        ("```\ntradeobs --version\n```\n", "a fence needs a language"),
        ("```bash\ntradeobs config check --file nope.toml\n```\n", "exited 1"),
        ("```bash\nrm -rf build\n```\n", "no rule for 'rm -rf build'"),
        ("```bash\npython3 -m pip install surely-not-installed-pkg\n```\n", "is not installed"),
        ("```python\nraise SystemExit(3)\n```\n", "snippet exited 3"),
        (
            "```python\nimport logging\ntry:\n    1 / 0\nexcept ZeroDivisionError:\n    logging.exception('x')\n```\n",
            "traceback",
        ),
        ("```python\ndef test_x():\n    assert 1 == 2\n```\n", "exited 1"),
        (
            "<!-- docs: fragment -->\n```python\nfrom tradeobs_agent import no_such_name\nx = y\n```\n",
            "fragment imports",
        ),
        ("```python\n# file: a.py\nprint(1)\n```\n", "never used"),
        ("```toml\nservce_name = 'x'\n```\n", "exited 1"),
        ("```bash\ntradeobs --version\n```\n<!-- docs: output -->\n```text\ntradeobs 9.9\n```\n", "not in the output"),
    ],
)
def test_a_broken_page_fails(tmp_path: Path, markdown: str, match: str) -> None:
    _fails(tmp_path, markdown, match)


def test_a_snippet_with_a_configuration_problem_fails(tmp_path: Path) -> None:
    code = "import os\nos.environ['TRADEOBS_LOG_LEVEL'] = 'chatty'\nimport tradeobs_agent\n"
    good = code.replace("chatty", "DEBUG") + "tradeobs_agent.init(live=False, otlp=False, prometheus=False)\n"
    _run(tmp_path, f"```python\n{good}```\n")
    _fails(tmp_path, f"```python\n{good.replace('DEBUG', 'chatty')}```\n", "configuration problem")


def test_a_server_that_dies_fails(tmp_path: Path) -> None:
    _fails(tmp_path, "```bash\nuvicorn no_such_module:app\n```\n", "exited")


def test_docker_compose_lines_are_checked(tmp_path: Path) -> None:
    dc = "docker compose -f compose/docker-compose.yml"
    good = f"```sh\ncp compose/.env.example compose/.env\n{dc} restart alertmanager\n```\n"
    _run(tmp_path, good)  # the page copies compose/ into its own directory: the repository's is never written
    for bad, match in [
        ("restart alertmanagr", "no service 'alertmanagr'"),
        ("stop --bogus", "rejects its options"),
        ("exec backup sh /opt/backup/no-such.sh", "is not in ./backup"),
        ("run --rm -v tradeobs_nope:/x backup true", "no volume 'tradeobs_nope'"),
    ]:
        _fails(tmp_path, good.replace("restart alertmanager", bad), match)


def test_nats_and_the_gateway_run_alongside_on_free_ports(tmp_path: Path) -> None:
    """Each in a terminal of its own: a later server does not stop them; their ports become free ports."""
    page = (
        "# t\n\n```sh\nnats-server -js -sd nats-data -a 127.0.0.1 -p 4222\n```\n\n```sh\n"
        "tradeobs live gateway --nats nats://127.0.0.1:4222 --port 8765\n"
        "curl -fsS http://127.0.0.1:8765/snapshot\n```\n"
    )
    run = _run(tmp_path, page)
    assert [r.split(": ", 1)[1] for r in run.ran] == [
        "nats-server -js -sd nats-data -a 127.0.0.1 -p 4222 (server)",
        "tradeobs live gateway --nats nats://127.0.0.1:4222 --port 8765 (server)",
        "curl -fsS http://127.0.0.1:8765/snapshot",
    ]
    assert run.servers == []  # stopped with Ctrl-C at the end of the section, each exiting 0
    _fails(tmp_path, "```sh\nnats-server -js\n```\n", "without -p")


_COLLECTOR = "otelcol-tradeobs --config collector/otel-collector.yaml"
_DEMO_TO_IT = "TRADEOBS_OTLP_ENDPOINT=http://127.0.0.1:4317 tradeobs demo"


def test_the_collector_runs_on_free_ports_and_the_demo_waits_for_its_data(tmp_path: Path) -> None:
    """docs/first-ten-minutes.md runs our collector natively (no Jaeger, no Loki) with a demo sending to it: the
    collector's listeners move to free ports, the demo is ready once the collector has its metrics, spans and log
    records, and the collector must have run quietly (no failed export logged) when Ctrl-C stops it."""
    files = "TRADEOBS_TRACES_EXPORTERS=[file/traces] TRADEOBS_LOGS_EXPORTERS=[file/logs]"
    page = (
        f"# t\n\n```sh\n{files} {_COLLECTOR}\n```\n\n```sh\n{_DEMO_TO_IT}\n"
        "curl -s http://127.0.0.1:8889/metrics | grep -m 1 trading_orders_filled_total\n"
        "grep -c resourceSpans .tradeobs/collector/traces.jsonl\n```\n"
    )
    run = _run(tmp_path, page)
    ran = [r.split(": ", 1)[1] for r in run.ran]
    assert ran[0] == f"{files} {_COLLECTOR} (server)" and ran[1].startswith(f"{_DEMO_TO_IT} --port "), ran
    assert run.servers == []


def test_a_collector_retrying_a_store_that_is_not_there_fails_the_page(tmp_path: Path) -> None:
    """Its default traces exporter goes to Jaeger (127.0.0.1:14317), which no page runs: the collector logs a failed
    export every few seconds, which a recipe must not leave a newcomer with."""
    page = f"# t\n\n```sh\nTRADEOBS_LOGS_EXPORTERS=[file/logs] {_COLLECTOR}\n```\n\n```sh\n{_DEMO_TO_IT}\n```\n"
    _fails(tmp_path, page, "the collector logged failed exports")
