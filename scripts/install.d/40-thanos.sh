#!/usr/bin/env bash
# Build (or reuse from cache) Thanos, the horizontally scalable metrics store of the
# "metrics beyond one Prometheus" tests (receive + query), and link it to
# $TRADEOBS_CACHE/bin/thanos. See docs/scaling.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/build-thanos.sh >/dev/null
