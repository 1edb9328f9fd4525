"""docs/reliability.md is the rendering of the fault tests' committed results, and the row format works for any
module that contributes rows (``report.py``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.faults import report
from tests.faults.report import PAGE, REPO, Row, load_rows, record, render


def test_the_committed_page_is_the_rendering_of_the_committed_results() -> None:
    rows = load_rows()
    assert rows, "no results in tests/faults/results/"
    assert PAGE.read_text() == render(rows), (
        "docs/reliability.md differs from tests/faults/results/*.json: run python scripts/gen_reliability.py"
    )


def test_every_committed_row_names_a_test_that_exists() -> None:
    for row in load_rows():
        path, _, name = row.source.partition("::")
        assert (REPO / path).is_file(), f"{row.source}: no such file"
        assert f"def {name.split('[', 1)[0]}(" in (REPO / path).read_text(), f"{row.source}: no such test"


def test_the_generator_check_fails_on_a_hand_edited_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = REPO / "scripts" / "gen_reliability.py"
    ok = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True, cwd=REPO)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    page = tmp_path / "reliability.md"
    page.write_text(PAGE.read_text().replace("nothing", "almost nothing", 1))
    monkeypatch.setattr(report, "PAGE", page)
    sys.path.insert(0, str(script.parent))
    try:
        import gen_reliability
    finally:
        sys.path.remove(str(script.parent))
    monkeypatch.setattr(gen_reliability, "PAGE", page)
    assert gen_reliability.main(["--check"]) == 1


def _row(**kw: Any) -> Row:
    base = {"section": "Bad input", "case": "a huge Last-Event-ID", "load": "one client", "outcome": "400",
            "lost": "nothing"}  # fmt: skip
    return Row(**{**base, **kw}, figures={"requests": "3"})


def test_another_module_contributes_rows_in_its_own_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A module records rows under its test ids into ``results/<module>.json``; a normal run then checks them."""
    monkeypatch.setattr(report, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(report, "PAGE", tmp_path / "reliability.md")
    monkeypatch.setattr(report, "UPDATE", True)
    record("tests/security/test_input.py::test_sse", _row())
    record("tests/faults/test_x.py::test_y", _row(section="Faults", case="x", order=5))
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == ["test_input.json", "test_x.json"]
    saved = json.loads((tmp_path / "results" / "test_input.json").read_text())
    assert saved["tests/security/test_input.py::test_sse"]["figures"] == {"requests": "3"}
    page = (tmp_path / "reliability.md").read_text()
    assert page.index("## Faults") < page.index("## Bad input")
    assert "| a huge Last-Event-ID | one client | 400 | nothing | requests: 3; (measured " in page

    monkeypatch.setattr(report, "UPDATE", False)
    record("tests/security/test_input.py::test_sse", _row())  # the same claims: passes
    with pytest.raises(AssertionError, match="claims something else"):
        record("tests/security/test_input.py::test_sse", _row(lost="one frame"))
    with pytest.raises(AssertionError, match="no committed row"):
        record("tests/security/test_input.py::test_new", _row())
    with pytest.raises(ValueError, match="row section 'Misc'"):
        record("tests/security/test_input.py::test_sse", _row(section="Misc"))
