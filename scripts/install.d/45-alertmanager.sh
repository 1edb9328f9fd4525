#!/usr/bin/env bash
# Build (or reuse from cache) Alertmanager + amtool at the version compose pins and link them to
# $TRADEOBS_CACHE/bin/alertmanager-compose and amtool-compose: the phone receivers' tests
# (Telegram, Slack, Discord) need fields Debian's 0.25 lacks. See scripts/build-alertmanager.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/build-alertmanager.sh >/dev/null
