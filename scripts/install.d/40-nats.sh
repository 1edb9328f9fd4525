#!/usr/bin/env bash
# Build (or reuse from cache) nats-server with JetStream, the broker of the fleet live view's tests and
# benchmark, and link it to $TRADEOBS_CACHE/bin/nats-server. See docs/scaling.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/build-nats.sh >/dev/null
