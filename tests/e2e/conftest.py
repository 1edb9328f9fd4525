"""Browser fixtures: Debian's Chromium driven by Playwright (its own browser download is not available here)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

CHROMIUM = os.environ.get("TRADEOBS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",  # without these it hammers the (closed) network
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture()
def browser_page(tmp_path: Any) -> Iterator[Any]:
    """A page in a fresh Chromium with a new, empty user data dir. Fails (never skips) if Chromium is missing."""
    from playwright.sync_api import sync_playwright

    assert shutil.which(CHROMIUM) or os.path.exists(CHROMIUM), (
        f"{CHROMIUM} not found: run scripts/install.d/50-browser.sh (apt-get install chromium)"
    )
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            page = ctx.pages[0] if ctx.pages else ctx.new_page()
            yield page
        finally:
            ctx.close()
