#!/usr/bin/env bash
# The one test command: install everything the tests need, then run the whole suite.
#   ./scripts/test.sh [pytest args...]
# Install steps live in scripts/install.d/*.sh and run in name order; each is
# idempotent and caches slow builds under ~/.cache/tradeobs.
set -euo pipefail
cd "$(dirname "$0")/.."
export TRADEOBS_CACHE="${TRADEOBS_CACHE:-$HOME/.cache/tradeobs}"
mkdir -p "$TRADEOBS_CACHE"
for step in scripts/install.d/*.sh; do
    echo "==> install: $step"
    start=$(date +%s)
    bash "$step"
    echo "==> $step took $(( $(date +%s) - start ))s"
done
# Binaries built by the install steps are linked into $TRADEOBS_CACHE/bin.
export PATH="$TRADEOBS_CACHE/bin:$PATH"
echo "==> pytest"
exec python -m pytest "$@"
