#!/usr/bin/env bash
# The one test command: install everything the tests need, then lint (ruff, mypy, import-linter layers),
# the whole suite on Python 3.11, and the unit suite on 3.12 and 3.13 (nox).
#   ./scripts/test.sh [pytest args...]     (with arguments: only that pytest selection, no nox)
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
step() { echo "==> $*"; "$@"; }
step ruff check .
step ruff format --check .
step mypy
step lint-imports
# The suite's files run on TRADEOBS_TEST_WORKERS pytest-xdist workers (3 by default, on 2 cores: most of the
# suite's time is spent waiting on real processes, outages and alert timers, not computing); a file's tests
# stay together on one worker, in order, with its module fixtures. Files start in collection order, where
# tests/conftest.py puts the few that take minutes first (xdist's own reorder, by number of tests, would start
# them last and leave one worker running them alone). TRADEOBS_TEST_WORKERS=0 runs them all in this one
# process, as plain pytest does.
workers="${TRADEOBS_TEST_WORKERS:-3}"
start=$(date +%s)
step python -m pytest -n "$workers" --dist loadfile --no-loadscope-reorder "$@"
echo "==> pytest took $(( $(date +%s) - start ))s"
# The unit suite on the other supported Pythons (noxfile.py). Skipped only when pytest was given
# arguments (a developer running a subset), never in CI.
if [[ $# -eq 0 ]]; then
    start=$(date +%s)
    step python -m nox
    echo "==> nox took $(( $(date +%s) - start ))s"
fi
