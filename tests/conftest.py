"""Shared fixtures: every test starts and ends with no agent and fresh OTel globals, and no internal error passes.

The ``tradeobs_agent.testing`` plugin (loaded by ``-p`` in ``pyproject.toml``) makes an internal error of the
agent re-raise where it happens (strict mode); the fixture below also fails a test after which any internal
error was counted, wherever it happened (a background thread, a server thread), so a swallowed bug cannot pass.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

from tradeobs_agent import _errors
from tradeobs_agent.testing import reset as _reset_for_tests
from tradeobs_agent.trading import contracts

# No property test has a per-example deadline (Hypothesis' default is 200 ms): on a loaded 2-core CI machine an
# example's wall time says how busy the machine was, and a deadline missed fails the run (DeadlineExceeded, or
# Flaky when the re-run is fast). The tests that set their own settings set deadline=None already; this covers the rest.
settings.register_profile("tradeobs", deadline=None)
settings.load_profile("tradeobs")


@pytest.fixture(autouse=True)
def _reset_agent(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    # No test may pick up the developer's environment by accident, or litter the checkout with logs.
    for name in list(os.environ):
        if name.startswith(("TRADEOBS_", "OTEL_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("TRADEOBS_LOG_DIR", str(tmp_path_factory.mktemp("logs")))
    # Agent subprocesses started by a test raise on an internal error too.
    monkeypatch.setenv(_errors.ENV_STRICT, "raise")
    _reset_for_tests()
    contracts.reset()  # testing.reset() keeps a user's declarations; these tests each declare their own
    yield
    errors = _errors.internal_error_counts()
    _reset_for_tests()
    contracts.reset()
    assert not errors, f"internal errors during the test (see the log for their tracebacks): {errors}"


# Files that take minutes (waiting on outages, restarts and alert timers), longest first by a full run's seconds.
# They are collected first, so that on several pytest-xdist workers (scripts/test.sh) they start first and no worker
# is left running one of them alone at the end. Only the order: a file missing here, or a stale entry, makes the run
# slower, never wrong.
LONG_FILES_FIRST = (
    "tests/faults/test_collector.py",
    "tests/integration/test_dashboard_scale.py",
    "tests/e2e/test_live_page.py",
    "tests/integration/test_alerts_real.py",
    "tests/e2e/test_live_page_mobile.py",
    "tests/integration/test_metrics_store.py",
    "tests/faults/test_disk.py",
    "tests/faults/test_soak.py",
    "tests/integration/test_crash_pnl.py",
    "tests/e2e/test_live_page_a11y.py",
    "tests/e2e/test_live_page_tabs.py",
    "tests/integration/test_multiworker_shared.py",
    "tests/integration/test_dashboards.py",
    "tests/integration/test_runbook.py",
    "tests/faults/test_stores.py",
    "tests/docs/test_docs.py",
    "tests/faults/test_live.py",
    "tests/integration/test_end_of_day.py",
    "tests/integration/test_incident.py",
    "tests/integration/test_collector_outage.py",
    "tests/compose/test_prometheus_config.py",
)


# A failed test runs once more, straight away on the same worker (pytest-rerunfailures). A product fault fails both
# tries. The second is for a shared 2-core machine that stalled the first: four submissions in a row failed CI on one
# such test each (a client process that fell behind on a loaded box, a run crossing New York's midnight...), each
# fixed at its root since; unit tests are in too, as several start real gRPC servers, forked children and
# subprocesses with bounded waits (three failed once each at a load average of 10-26 and passed alone). A second try
# is not a pass: the run's summary prints how each failed first and lists it as "RERUN" (``-raR``), and the last
# line counts them ("2330 passed, 1 rerun"), so a test that needed one is read and fixed, not forgotten.


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {path: i for i, path in enumerate(LONG_FILES_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))  # stable: the rest keep order
    for item in items:
        if item.get_closest_marker("flaky") is None:
            item.add_marker(pytest.mark.flaky(reruns=1))


_first_failures: list[pytest.TestReport] = []  # the tests that ran again, with how they failed the first time


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.outcome == "rerun":  # type: ignore[comparison-overlap]  # pytest-rerunfailures' outcome
        _first_failures.append(report)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    # pytest-rerunfailures' own summary names them; under pytest-xdist without the failure (its traceback's tail)
    if _first_failures:
        terminalreporter.section("how the tests that ran again failed the first time", sep="=")
        for report in _first_failures:
            tail = report.longreprtext.strip().splitlines()[-25:]
            terminalreporter.write_line(f"RERUN {report.nodeid} ({report.when}):")
            for line in tail:
                terminalreporter.write_line("    " + line)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    # What a test's output caught (stderr, log records) may hold the hostile strings of tests/unit/test_bad_input.py,
    # a lone surrogate among them; pytest-xdist sends reports between processes as UTF-8, which cannot carry one.
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    report.sections = [(title, _utf8(text)) for title, text in report.sections]


def _utf8(text: str) -> str:
    """``text`` with anything UTF-8 cannot encode (lone surrogates) written as backslash escapes."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text
