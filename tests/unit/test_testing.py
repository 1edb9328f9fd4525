"""tradeobs_agent.testing: what a user without the testing extra is told."""

from __future__ import annotations

import sys

import pytest

from tradeobs_agent.testing import capture


def test_capture_without_the_testing_extra_says_what_to_install() -> None:
    """After ``pip install .`` (no extra), docs/agent.md's capture() example failed with "No module named
    'opentelemetry.test'", a name the docs never mention; the error now names the extra to install."""
    with pytest.MonkeyPatch.context() as mp:  # undone before the suite's own reset after the test
        mp.setitem(sys.modules, "opentelemetry.test.globals_test", None)  # as if not installed
        with pytest.raises(ImportError, match=r"pip install 'tradeobs\[testing\]'"), capture():
            pass
