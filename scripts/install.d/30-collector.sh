#!/usr/bin/env bash
# Build (or reuse from cache) the otelcol-tradeobs collector distribution and
# link it to $TRADEOBS_CACHE/bin/otelcol-tradeobs. See docs/collector.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/build-collector.sh >/dev/null
