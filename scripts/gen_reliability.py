#!/usr/bin/env python3
"""Render docs/reliability.md from the fault tests' results (tests/faults/results/*.json).

    python scripts/gen_reliability.py            # rewrite docs/reliability.md
    python scripts/gen_reliability.py --check    # exit 1 (with a diff) if the page differs from the results

The rows are written by the tests themselves (``tests/faults/report.py``: ``record()``; with
``TRADEOBS_RELIABILITY_UPDATE=1`` they rewrite their rows and this page). ``tests/faults/test_report.py``
runs the check.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.faults.report import PAGE, load_rows, rel, render  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true", help="only compare; exit 1 with a diff when the page differs")
    args = p.parse_args(argv)
    text = render(load_rows())
    current = PAGE.read_text() if PAGE.exists() else ""
    if args.check:
        if current == text:
            return 0
        diff = difflib.unified_diff(current.splitlines(), text.splitlines(), "committed", "rendered", lineterm="")
        print("\n".join(diff))
        print(f"{rel(PAGE)} is not the rendering of the results: run python scripts/gen_reliability.py")
        return 1
    PAGE.write_text(text)
    print(f"wrote {rel(PAGE)} ({len(load_rows())} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
