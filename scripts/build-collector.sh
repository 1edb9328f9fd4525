#!/usr/bin/env bash
# Build the tradeobs collector distribution (otelcol-tradeobs) with the
# OpenTelemetry Collector Builder, cached by content.
#
#   scripts/build-collector.sh            # build if needed, print the binary path
#   FORCE=1 scripts/build-collector.sh    # rebuild even on a cache hit
#
# Result: $TRADEOBS_CACHE/otelcol/<key>/otelcol-tradeobs, linked from
# $TRADEOBS_CACHE/bin/otelcol-tradeobs. <key> is the sha256 of the manifest,
# this script and the Go version, so editing either rebuilds and a cache hit
# costs only hashing (well under a second).
# Go's module and build caches live under $TRADEOBS_CACHE/go so a rebuild after
# a manifest change only compiles what changed.
set -euo pipefail
export GOTOOLCHAIN=local

root="$(cd "$(dirname "$0")/.." && pwd)"
manifest="$root/collector/builder-config.yaml"
name=otelcol-tradeobs

# shellcheck source=scripts/_cached-build.sh
. "$root/scripts/_cached-build.sh"
key="$( { cat "$manifest" "$0" "$root/scripts/_cached-build.sh"; go env GOVERSION GOOS GOARCH 2>/dev/null; } | sha256sum | cut -c1-16)"
cache_begin otelcol "$name" "$key"

# The builder's version must match the core modules; take it from the manifest.
ocb_version="$(sed -n 's#.*go.opentelemetry.io/collector/receiver/otlpreceiver \(v[0-9.]*\).*#\1#p' "$manifest")"
[[ -n "$ocb_version" ]] || { echo "build-collector: cannot find the otlpreceiver version in $manifest" >&2; exit 1; }

ocb="$cache/tools/ocb-$ocb_version/builder"
if [[ ! -x "$ocb" ]]; then
    echo "build-collector: installing builder $ocb_version" >&2
    GOBIN="$(dirname "$ocb")" go install "go.opentelemetry.io/collector/cmd/builder@$ocb_version"
fi

work="$(mktemp -d "$cache/otelcol/.build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
# Build in a scratch dir: rewrite output_path there, leave the repo untouched.
sed "s#^\(  output_path:\).*#\1 $work/src#" "$manifest" > "$work/manifest.yaml"

start=$(date +%s)
echo "build-collector: building $name with builder $ocb_version (key $key)" >&2
"$ocb" --config "$work/manifest.yaml" >&2
echo "build-collector: built in $(( $(date +%s) - start ))s" >&2

cp "$work/src/$name" "$bin.tmp"
"$bin.tmp" --version >&2
cache_end
