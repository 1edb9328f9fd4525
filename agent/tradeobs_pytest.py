"""tradeobs' pytest plugin: the ``tradeobs_capture`` fixture, and a test's defaults for ``init()``.

pytest loads it by itself wherever tradeobs is installed (the ``pytest11`` entry point ``tradeobs_pytest``); from
a checkout on ``PYTHONPATH`` (nothing installed), ``-p tradeobs_pytest``. ``-p no:tradeobs_pytest`` turns it off.

Loaded in every pytest run of the environment, it stays out of the way of a project that does not use tradeobs: this
module imports neither tradeobs_agent nor OpenTelemetry (the fixture imports them when a test uses it), and what it
sets is two flags only tradeobs_agent reads, in the test process, when something there imports it:

* ``TEST_DEFAULTS``: ``init()`` takes a test's defaults for the settings nothing configures: no Prometheus endpoint,
  no worker group, no log files, no collector looked for (``tradeobs_agent.config.under_pytest``). The ini option
  ``tradeobs_pytest_defaults = false`` keeps a service's defaults.
* ``STRICT_ERRORS``: an internal error of the agent fails the test that caused it instead of being counted and logged
  once (``tradeobs_agent._errors.strict``).

Both are set before pytest imports the first ``conftest.py`` (``pytest_load_initial_conftests``), so a conftest that
imports the bot (which calls ``init()`` at import) finds them: a plugin named in ``pytest_plugins`` of that conftest
came too late for it. docs/agent.md, "Testing your own instrumentation".
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

__all__ = ["STRICT_ERRORS", "TEST_DEFAULTS", "tradeobs_capture"]

INI = "tradeobs_pytest_defaults"
TEST_DEFAULTS = False
STRICT_ERRORS = False


@pytest.fixture
def tradeobs_capture() -> Iterator[Any]:
    """A ``tradeobs_agent.testing.Capture`` for one test: the agent re-initialised with in-memory exporters, every
    global reset afterwards."""
    from tradeobs_agent.testing import capture

    with capture() as cap:
        yield cap


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        INI,
        "tradeobs: init() under these tests serves no Prometheus endpoint, writes no log files, forms no worker "
        "group and looks for no collector, unless configured (true/false)",
        default="true",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    """Before the first conftest.py is imported (it may import the bot, whose ``init()`` reads the flags)."""
    _set(early_config)


def pytest_configure(config: pytest.Config) -> None:
    """Loaded later (``pytest_plugins`` in a conftest.py): from then on."""
    _set(config)


def pytest_unconfigure(config: pytest.Config) -> None:
    global TEST_DEFAULTS, STRICT_ERRORS
    TEST_DEFAULTS = STRICT_ERRORS = False


def _set(config: pytest.Config) -> None:
    global TEST_DEFAULTS, STRICT_ERRORS
    TEST_DEFAULTS = _ini_bool(config, INI)
    STRICT_ERRORS = True


def _ini_bool(config: pytest.Config, name: str) -> bool:
    raw = str(config.getini(name)).strip().lower()
    if raw in ("true", "1", "yes", "on"):
        return True
    if raw in ("false", "0", "no", "off"):
        return False
    raise pytest.UsageError(f"ini option {name} = {raw!r}: expected true or false")
