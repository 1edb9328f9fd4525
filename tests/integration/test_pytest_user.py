"""A user's own test suite, run by a real pytest: a bot that calls ``init()`` and binds its instruments at import,
tested with ``tradeobs_agent.testing`` (the ``tradeobs_capture`` fixture), as docs/agent.md ("Testing your own
instrumentation") shows.

Each test writes a scratch project (``bot.py``, ``tests/``) under ``tmp_path`` and runs ``python -m pytest`` on it
in a subprocess, with this checkout's package on ``PYTHONPATH``; the project's own assertions are what is checked
(the run passes), and what the run left behind (files, ports). ``installed=True`` adds the metadata ``pip install``
writes from this pyproject (``tests._util.installed_metadata``): pytest then finds tradeobs' plugin by its entry point,
as in a user's environment, with no ``-p`` or ``pytest_plugins`` line.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests._util import installed_metadata

pytestmark = pytest.mark.integration

AGENT_DIR = Path(__file__).resolve().parents[2] / "agent"

BOT = '''
"""A trading bot: the agent starts at import, the instruments are bound once."""
import tradeobs_agent

agent = tradeobs_agent.init(service_name="mybot", trading_mode="paper")
tt = tradeobs_agent.TradingTelemetry(strategy="momentum", venue="paper")
log = tradeobs_agent.get_logger("execution")
fills = tradeobs_agent.counter("mybot.fills", unit="{fill}")
aapl_fills = fills.bind(symbol="AAPL")
latency = tradeobs_agent.histogram("mybot.decision_latency", unit="s")
tradeobs_agent.trading.instrument("ESZ6", multiplier=50)  # the desk's contracts, declared once


def hold_es(qty, price):
    tt.position("ESZ6", qty, price)


def trade(cid, symbol, qty, price, reject=None):
    order = tt.order_signal(cid, symbol, "buy", qty, price)
    order.risk_check(passed=True)
    order.submitted()
    latency.record(0.002, {"symbol": symbol})
    if reject:
        order.rejected(reject)
        log.warning("order %s rejected: %s", cid, reject)
        return
    tt.execution(cid).fill(qty, price + 0.01, expected_price=price)
    (aapl_fills.add(1) if symbol == "AAPL" else fills.add(1, {"symbol": symbol}))
    tt.position(symbol, qty, price + 0.01)
    with tradeobs_agent.correlate(order_id=cid):
        log.info("order %s filled", cid)


def leave_open(cid, symbol):
    tt.order_signal(cid, symbol, "sell", 1, 10.0).submitted()
'''


def run_pytest(
    project: Path, *args: str, env: dict[str, str] | None = None, installed: bool = False
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("TRADEOBS_", "OTEL_", "PYTEST_"))}
    paths = [str(AGENT_DIR), str(project)]
    if installed:
        paths.insert(1, str(installed_metadata(project.parent / f"{project.name}-site")))
    full_env["PYTHONPATH"] = os.pathsep.join(paths)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args],
        cwd=project,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def write_project(root: Path, tests: str, conftest: str = 'pytest_plugins = ["tradeobs_agent.testing"]\n') -> Path:
    (root / "tests").mkdir(parents=True)
    (root / "bot.py").write_text(textwrap.dedent(BOT))
    (root / "pytest.ini").write_text("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    (root / "tests" / "conftest.py").write_text(conftest)
    (root / "tests" / "test_bot.py").write_text(textwrap.dedent(tests))
    return root


def assert_passed(proc: subprocess.CompletedProcess[str], n: int) -> None:
    assert proc.returncode == 0 and f"{n} passed" in proc.stdout, proc.stdout + proc.stderr


def test_what_a_bot_binds_at_import_is_captured_and_each_test_starts_from_nothing(tmp_path: Path) -> None:
    """The same trade in two tests reads the same numbers in each: the bot's own counter (bound once at import,
    and through the instrument), the trading layer's order counters, its position and open orders. Before
    (2026-12-07), ``capture()`` replaced the process registry, and every instrument and ``TradingTelemetry`` the bot
    had made at import went on recording into the old one: ``metric_value("mybot.fills")`` was None in every test,
    and so was ``trading.orders.filled``. A contract multiplier declared at import holds in every test too (the
    reset between tests forgot it, and the second test's ES notional read 10,000 instead of 500,000)."""
    tests = """
        import bot


        def check(cap, cid):
            bot.trade(cid, "AAPL", 100, 187.2)
            bot.trade(cid + "-m", "MSFT", 5, 400.0)
            assert cap.metric_value("mybot.fills", symbol="AAPL") == 1
            assert cap.metric_value("mybot.fills", symbol="MSFT") == 1
            assert cap.metric_value("trading.orders.filled", symbol="AAPL") == 1
            assert cap.metric_value("trading.orders.submitted") == 2
            assert cap.metric_value("trading.position.quantity", symbol="AAPL") == 100
            assert cap.metric_value("trading.orders.open") == 0
            assert [s.attributes["order.id"] for s in cap.spans("order")] == [cid, cid + "-m"]
            bot.hold_es(2, 5000.0)  # the contract declared at import: 50 a point in every test
            assert cap.metric_value("trading.position.notional", symbol="ESZ6") == 500_000


        def test_first(tradeobs_capture):
            check(tradeobs_capture, "c-1")
            bot.leave_open("dangling", "TSLA")


        def test_second_same_numbers(tradeobs_capture):
            check(tradeobs_capture, "c-1")
            assert tradeobs_capture.metric_value("trading.position.quantity", symbol="TSLA") is None
    """
    project = write_project(tmp_path / "proj", tests)
    assert_passed(run_pytest(project, "tests"), 2)


def test_an_order_its_histograms_and_its_log_lines_can_be_asserted_on(tmp_path: Path) -> None:
    """What a user asserts on: an order found by its client order id (outcome, attributes, its steps, a rejected one's
    error status), a histogram's count and sum, the lines logged, and a metric the test did not touch read as None.
    Before (2026-12-07) the capture had no lookup by order id or histogram reader, and ``metric_value`` of a symbol
    never traded read 0.0 when the metric had other points."""
    tests = """
        from opentelemetry.trace import StatusCode

        import bot


        def test_filled_order(tradeobs_capture):
            cap = tradeobs_capture
            bot.trade("c-7", "AAPL", 100, 187.2)
            order = cap.order("c-7")
            assert order.attributes["order.outcome"] == "filled"
            assert order.attributes["symbol"] == "AAPL" and order.attributes["order.filled_qty"] == 100
            assert [s.name for s in cap.order_steps("c-7")] == ["risk_check", "submit", "fill"]
            assert cap.order("c-8") is None and cap.order_steps("c-8") == []
            h = cap.histogram("mybot.decision_latency", symbol="AAPL")
            assert (h.count, h.sum) == (1, 0.002)
            assert sum(h.bucket_counts) == 1 and len(h.bucket_counts) == len(h.explicit_bounds) + 1
            assert cap.histogram("mybot.decision_latency", symbol="MSFT") is None
            assert cap.metric_value("mybot.fills", symbol="MSFT") is None
            assert cap.messages("execution") == ["order c-7 filled"]


        def test_rejected_order(tradeobs_capture):
            cap = tradeobs_capture
            bot.trade("c-9", "AAPL", 100, 187.2, reject="insufficient margin")
            order = cap.order("c-9")
            assert order.attributes["order.outcome"] == "rejected"
            assert order.status.status_code is StatusCode.ERROR
            assert "order c-9 rejected: insufficient margin" in cap.messages()
            assert cap.metric_value("trading.orders.rejected", symbol="AAPL") == 1
            assert cap.metric_value("mybot.fills") is None  # bound at import, nothing added in this test
    """
    project = write_project(tmp_path / "proj", tests)
    assert_passed(run_pytest(project, "tests"), 2)


STARTED_AT_IMPORT = """
    import os
    import threading

    import bot


    def test_{n}():
        bot.trade("c-{n}", "AAPL", 1, 10.0)
        s = bot.agent.settings
        assert (s.prometheus_enabled, s.log_dir, s.multiprocess) == (False, "", "off")
        assert bot.agent.prometheus_url is None
        assert not [t.name for t in threading.enumerate() if t.name.startswith("tradeobs-prometheus")]
        assert not [t.name for t in threading.enumerate() if t.name.startswith("tradeobs-log-gzip")]
        assert bot.agent.export == "not_configured"
        assert os.environ.get("PYTEST_XDIST_WORKER") is not None
"""


def test_a_bot_started_at_import_opens_no_port_and_writes_no_file_under_xdist(tmp_path: Path) -> None:
    """``pytest -n 4`` on a suite whose bot calls ``init()`` at import, with the plugin in ``conftest.py``: no worker
    serves (or fights for) the Prometheus port, none writes ``logs/`` into the project, none forms a worker group
    with the others, none looks for a collector. Before (2026-12-07) every worker started the bot's agent with the
    defaults of a service: four processes bound or retried 127.0.0.1:9464, and all four wrote one
    ``logs/system.jsonl`` in the project directory."""
    project = write_project(tmp_path / "proj", STARTED_AT_IMPORT.format(n=0))
    for n in range(1, 4):
        (project / "tests" / f"test_more_{n}.py").write_text(textwrap.dedent(STARTED_AT_IMPORT.format(n=n)))
    proc = run_pytest(project, "-n", "4", "tests")
    assert_passed(proc, 4)
    assert "Prometheus endpoint" not in proc.stdout + proc.stderr
    assert sorted(p.name for p in project.iterdir()) == ["bot.py", "pytest.ini", "tests"]


CONFTEST_IMPORTS_THE_BOT = """
import pytest

import bot  # init() runs here, as pytest imports this file: before any pytest_plugins line of it is read


@pytest.fixture
def desk():
    return bot
"""


def test_installed_the_fixture_and_a_tests_defaults_need_no_plugin_line(tmp_path: Path) -> None:
    """With tradeobs installed, pytest loads its plugin by itself (the ``pytest11`` entry point): a suite whose
    ``conftest.py`` imports the bot (``init()`` at import) and names no plugin has the ``tradeobs_capture`` fixture,
    and that ``init()`` already took a test's defaults, under ``-n 2`` too (no port, no ``logs/``, no collector
    probe); ``tradeobs_pytest_defaults = false`` in its ini file still keeps a service's defaults. Before
    (2026-12-07) the package declared no entry point: ``fixture 'tradeobs_capture' not found`` without ``-p``, and
    ``pytest_plugins`` in that conftest came after its ``import bot``, too late for the defaults."""
    tests = """
        import os
        import threading


        def test_{n}(tradeobs_capture, desk):
            s = desk.agent.settings
            assert (s.prometheus_enabled, s.log_dir, s.multiprocess) == (False, "", "off")
            assert desk.agent.export == "not_configured"
            assert not [t.name for t in threading.enumerate() if t.name.startswith("tradeobs-prometheus")]
            desk.trade("c-{n}", "AAPL", 1, 10.0)
            assert tradeobs_capture.metric_value("trading.orders.filled", symbol="AAPL") == 1
            assert os.environ.get("PYTEST_XDIST_WORKER") is not None
    """
    project = write_project(tmp_path / "proj", tests.format(n=0), conftest=CONFTEST_IMPORTS_THE_BOT)
    (project / "tests" / "test_more.py").write_text(textwrap.dedent(tests.format(n=1)))
    proc = run_pytest(project, "-n", "2", "tests", installed=True)
    assert_passed(proc, 2)
    assert "Prometheus endpoint" not in proc.stdout + proc.stderr
    assert sorted(p.name for p in project.iterdir()) == ["bot.py", "pytest.ini", "tests"]

    service = """
        def test_service_defaults(desk):
            s = desk.agent.settings
            assert s.prometheus_enabled and desk.agent.prometheus_url is not None
            assert s.log_dir == "logs"
    """
    off = write_project(tmp_path / "off", service, conftest=CONFTEST_IMPORTS_THE_BOT)
    (off / "pytest.ini").write_text(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\ntradeobs_pytest_defaults = false\n"
    )
    assert_passed(run_pytest(off, "tests", env={"TRADEOBS_PROMETHEUS_PORT": "0"}, installed=True), 1)


def test_installed_a_project_that_does_not_use_tradeobs_imports_nothing_of_it(tmp_path: Path) -> None:
    """The plugin is loaded in every pytest run of the environment: one that never imports tradeobs gets its ini
    option and nothing else: neither tradeobs_agent nor OpenTelemetry is imported, no thread started, no file
    written."""
    root = tmp_path / "other"
    (root / "tests").mkdir(parents=True)
    (root / "pytest.ini").write_text("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    (root / "tests" / "test_other.py").write_text(
        textwrap.dedent(
            """
            import sys
            import threading


            def test_nothing_of_tradeobs(request):
                assert request.config.pluginmanager.has_plugin("tradeobs_pytest")
                assert [m for m in sys.modules if m.startswith(("tradeobs_agent", "opentelemetry"))] == []
                assert [t.name for t in threading.enumerate() if "tradeobs" in t.name] == []
            """
        )
    )
    proc = run_pytest(root, "tests", installed=True)
    assert_passed(proc, 1)
    assert sorted(p.name for p in root.iterdir()) == ["pytest.ini", "tests"]


def test_what_the_user_configures_still_applies_under_pytest(tmp_path: Path) -> None:
    """The test defaults are defaults: a Prometheus endpoint or a log directory the user asks for (environment,
    ``init()``, the config file) is served and written, and ``tradeobs_pytest_defaults = false`` keeps a service's
    defaults."""
    tests = """
        import bot


        def test_configured():
            s = bot.agent.settings
            assert s.prometheus_enabled and bot.agent.prometheus_url is not None
            assert s.log_dir == "mylogs"
    """
    project = write_project(tmp_path / "proj", tests)
    env = {"TRADEOBS_PROMETHEUS_ENABLED": "true", "TRADEOBS_PROMETHEUS_PORT": "0", "TRADEOBS_LOG_DIR": "mylogs"}
    assert_passed(run_pytest(project, "tests", env=env), 1)

    off = write_project(tmp_path / "off", tests.replace('"mylogs"', '"logs"'))
    (off / "pytest.ini").write_text(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\ntradeobs_pytest_defaults = false\n"
    )
    assert_passed(run_pytest(off, "tests", env={"TRADEOBS_PROMETHEUS_PORT": "0"}), 1)


def test_asyncio_tests_with_a_loop_each_under_warnings_as_errors(tmp_path: Path) -> None:
    """pytest-asyncio gives each test its own event loop: the bot's lag monitor, started in each, runs on it and
    goes with it, each test reads its own numbers, and ``-W error`` with ``python -X dev`` (unclosed resources,
    never-awaited coroutines, tasks destroyed while pending) finds nothing to say."""
    tests = """
        import asyncio

        import bot


        async def one_trade(cap, cid):
            bot.tt.event_loop_lag_monitor(0.01)
            await asyncio.sleep(0.05)
            bot.trade(cid, "AAPL", 1, 10.0)
            assert cap.metric_value("trading.orders.filled") == 1
            assert cap.histogram("trading.eventloop.lag").count >= 1


        async def test_first(tradeobs_capture):
            await one_trade(tradeobs_capture, "a-1")


        async def test_second(tradeobs_capture):
            await one_trade(tradeobs_capture, "a-2")


        async def test_without_the_fixture():
            bot.tt.event_loop_lag_monitor(0.01)
            await asyncio.sleep(0.02)
            bot.trade("a-3", "AAPL", 1, 10.0)
    """
    project = write_project(tmp_path / "proj", tests)
    (project / "pytest.ini").write_text(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    )
    env = {"PYTHONDEVMODE": "1", "PYTHONWARNINGS": "error"}
    proc = run_pytest(project, "-W", "error", "tests", env=env)
    assert_passed(proc, 3)
    out = proc.stdout + proc.stderr
    assert "Task was destroyed" not in out and "Warning" not in out, out
