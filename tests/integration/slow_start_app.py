"""The demo app, slow to start: each worker waits ``SLOW_START_SECONDS`` before it builds the app (and calls
``init()``), as a worker does whose imports take that long on a loaded machine (3-10 s were measured with 4
workers on 2 cores). Used by test_multiworker_shared.py."""

from __future__ import annotations

import os
import time
from typing import Any

from tradeobs_agent.demo import create_app as _create_demo


def create_app() -> Any:
    time.sleep(float(os.environ.get("SLOW_START_SECONDS", "0")))
    return _create_demo()
