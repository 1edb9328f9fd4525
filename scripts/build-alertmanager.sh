#!/usr/bin/env bash
# Build (or reuse from cache) Alertmanager and amtool at the version compose pins
# (prom/alertmanager:v0.28.1 in compose/docker-compose.yml), from the Go module proxy, cached by
# content, and link them to $TRADEOBS_CACHE/bin/alertmanager-compose and amtool-compose.
#
#   scripts/build-alertmanager.sh            # build if needed, print the alertmanager path
#   FORCE=1 scripts/build-alertmanager.sh    # rebuild even on a cache hit
#
# Why not only Debian's prometheus-alertmanager (0.25.0 on bookworm, still used by most tests): the
# phone receivers keep their secrets in files, and the fields for that came after 0.25:
# telegram_configs.bot_token_file in 0.26, discord_configs.webhook_url_file in 0.27 (Debian's
# amtool refuses a config holding them: "field bot_token_file not found"). The compose image has
# both; the tests of those receivers run this build (tests/compose/test_alertmanager_phone.py).
set -euo pipefail
export GOTOOLCHAIN=local

AM_VERSION=v0.28.1

root="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=scripts/_cached-build.sh
. "$root/scripts/_cached-build.sh"
key="$( { echo "$AM_VERSION"; cat "$0" "$root/scripts/_cached-build.sh"; go env GOVERSION GOOS GOARCH 2>/dev/null; } | sha256sum | cut -c1-16)"
amtool_bin="$cache/alertmanager/$key/amtool-compose"
# amtool is built with alertmanager (below): on a cache hit link it too.
if [[ -x "$amtool_bin" && -z "${FORCE:-}" ]]; then mkdir -p "$cache/bin"; ln -sfn "$amtool_bin" "$cache/bin/amtool-compose"; fi
cache_begin alertmanager alertmanager-compose "$key"
export GOFLAGS="$GOFLAGS -mod=readonly"

start=$(date +%s)
echo "build-alertmanager: building github.com/prometheus/alertmanager@$AM_VERSION" >&2
work="$(mktemp -d "${TMPDIR:-/tmp}/build-alertmanager.XXXXXX")"
trap 'rm -rf "$work"' EXIT
ver_pkg=github.com/prometheus/common/version
for cmd in alertmanager amtool; do
    GOBIN="$work" go install -trimpath \
        -ldflags "-s -w -X $ver_pkg.Version=${AM_VERSION#v} -X $ver_pkg.Branch=module-proxy" \
        "github.com/prometheus/alertmanager/cmd/$cmd@$AM_VERSION"
done
mv -f "$work/amtool" "$amtool_bin"
ln -sfn "$amtool_bin" "$cache/bin/amtool-compose"
mv -f "$work/alertmanager" "$bin.tmp"
echo "build-alertmanager: built in $(( $(date +%s) - start ))s" >&2
"$bin.tmp" --version >&2
cache_end
