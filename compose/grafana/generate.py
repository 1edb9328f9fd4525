#!/usr/bin/env python3
"""Generate the Grafana dashboards of the compose stack from code (compose/grafana/dashgen).

    python compose/grafana/generate.py           # write compose/grafana/dashboards/*.json
    python compose/grafana/generate.py --check   # exit 1 (with a diff) if the committed JSON is stale

Needs the pinned SDK: pip install -e '.[dashboards]'. A tool for us, not part of the
installed package; tests/compose/test_dashboards.py runs the --check comparison.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "dashboards"
sys.path.insert(0, str(HERE))

try:
    import dashgen
except ModuleNotFoundError as exc:  # the SDK is a tool dependency, not the agent's
    if exc.name != "grafana_foundation_sdk":
        raise
    sys.exit("generate.py needs grafana-foundation-sdk: pip install -e '.[dashboards]' (pinned in pyproject.toml)")


def stale(rendered: dict[str, str]) -> list[str]:
    """Unified diffs of every committed dashboard that differs from ``rendered`` (and files no code makes)."""
    diffs = []
    for name, text in rendered.items():
        path = OUT / name
        old = path.read_text() if path.exists() else ""
        if old != text:
            diffs.append(
                "".join(difflib.unified_diff(old.splitlines(True), text.splitlines(True), f"a/{name}", f"b/{name}"))
            )
    for path in sorted(OUT.glob("*.json")):
        if path.name not in rendered:
            diffs.append(
                f"{path.name}: committed, but no code generates it (remove it or add it to dashgen.DASHBOARDS)\n"
            )
    return diffs


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare with the committed files, write nothing")
    args = parser.parse_args(argv)
    rendered = dashgen.render_all()
    if args.check:
        diffs = stale(rendered)
        sys.stdout.writelines(diffs)
        if diffs:
            print("dashboards are stale: run python compose/grafana/generate.py", file=sys.stderr)
        return 1 if diffs else 0
    OUT.mkdir(exist_ok=True)
    for name, text in rendered.items():
        (OUT / name).write_text(text)
        print(f"wrote {(OUT / name).relative_to(HERE.parent.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
