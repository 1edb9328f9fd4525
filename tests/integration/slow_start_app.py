"""The demo app, slow to start: each worker waits ``SLOW_START_SECONDS`` before it builds the app (and calls
``init()``), as a worker does whose imports take that long on a loaded machine (3-10 s were measured with 4
workers on 2 cores); or, with ``SLOW_START_GATE``, until that file exists (the test opens the gate when it
wants the start to end, whatever the machine's load made of the imports before). Used by
test_multiworker_shared.py."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from tradeobs_agent.demo import create_app as _create_demo

GATE_LIMIT = 120.0  # a test that never opens its gate: the worker starts anyway


def create_app() -> Any:
    gate = os.environ.get("SLOW_START_GATE")
    if gate:
        until = time.monotonic() + GATE_LIMIT
        while not Path(gate).exists() and time.monotonic() < until:
            time.sleep(0.05)
    time.sleep(float(os.environ.get("SLOW_START_SECONDS", "0")))
    return _create_demo()
