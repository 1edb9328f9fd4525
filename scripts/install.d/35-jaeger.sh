#!/usr/bin/env bash
# Build (or reuse from cache) Jaeger v2, the trace store of the integration
# tests, and link it to $TRADEOBS_CACHE/bin/jaeger. See docs/collector.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/build-jaeger.sh >/dev/null
