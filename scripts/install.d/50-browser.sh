#!/usr/bin/env bash
# Headless browser for tests/e2e/test_dashboard_browser.py.
# Playwright (pip) cannot download its own browser here, so the tests drive Debian's chromium
# (/usr/bin/chromium) through executable_path. 20-apt.sh installs it too; this step is idempotent
# and does no network access when chromium is already installed.
set -euo pipefail
if ! command -v chromium >/dev/null 2>&1; then
    sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    echo "50-browser: installing chromium"
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" apt-get install -y -qq chromium
fi
python -c "import playwright.sync_api" || { echo "50-browser: python playwright missing (10-python.sh)" >&2; exit 1; }
chromium --version
