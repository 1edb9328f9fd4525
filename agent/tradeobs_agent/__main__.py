"""``python -m tradeobs_agent ...``: the ``tradeobs`` command, for an environment whose scripts are not on the PATH."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
