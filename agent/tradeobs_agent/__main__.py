"""``python -m tradeobs_agent ...``: the ``tradeobs`` command, for an environment whose scripts are not on the PATH.

Quiet on Ctrl-C from the start, as the console script is (``agent/tradeobs_cli.py``): while the package loads
(``_as_main``), then while the command's module loads and parses its arguments (exit status 130).
"""

from __future__ import annotations

import sys

from ._as_main import hand_over


def _run() -> int:
    hand_over()
    try:
        from .cli import main

        return main()
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(_run())
