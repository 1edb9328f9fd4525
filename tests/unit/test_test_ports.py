"""tests/_util.free_port: the ports the suite's servers get."""

from __future__ import annotations

import pytest

from tests import _util


def test_free_port_never_hands_out_a_port_browsers_refuse(monkeypatch: pytest.MonkeyPatch) -> None:
    """A browser test's server got 10080 and Chromium refused it (net::ERR_UNSAFE_PORT at page.goto)."""
    pool = range(10078, 10083)
    monkeypatch.setattr(_util, "_pool", lambda: pool)
    monkeypatch.setattr(_util, "_next", [10080])
    monkeypatch.setattr(_util, "_handed_out", set())
    got = [_util.free_port() for _ in range(4)]
    assert 10080 not in got and sorted(got) == [10078, 10079, 10081, 10082]
