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
cache="${TRADEOBS_CACHE:-$HOME/.cache/tradeobs}"
name=otelcol-tradeobs

command -v go >/dev/null || { echo "build-collector: 'go' not found on PATH" >&2; exit 1; }

key="$( { cat "$manifest" "$0"; go env GOVERSION GOOS GOARCH; } | sha256sum | cut -c1-16)"
out_dir="$cache/otelcol/$key"
bin="$out_dir/$name"

link() {
    mkdir -p "$cache/bin"
    ln -sfn "$bin" "$cache/bin/$name"
    echo "$bin"
}

if [[ -x "$bin" && -z "${FORCE:-}" ]]; then
    link
    exit 0
fi

# The builder's version must match the core modules; take it from the manifest.
ocb_version="$(sed -n 's#.*go.opentelemetry.io/collector/receiver/otlpreceiver \(v[0-9.]*\).*#\1#p' "$manifest")"
[[ -n "$ocb_version" ]] || { echo "build-collector: cannot find the otlpreceiver version in $manifest" >&2; exit 1; }

export GOMODCACHE="$cache/go/mod"
export GOCACHE="$cache/go/build"
# 2 cores / 24 GiB machines: two compile jobs keeps memory in check and the
# machine usable. Override with GOFLAGS if you have more.
export GOFLAGS="${GOFLAGS:--p=2} -buildvcs=false"
export CGO_ENABLED=0

mkdir -p "$cache/otelcol"
exec 9>"$cache/otelcol/.lock"
flock 9
# Another build may have finished while we waited for the lock.
if [[ -x "$bin" && -z "${FORCE:-}" ]]; then
    link
    exit 0
fi

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

mkdir -p "$out_dir"
cp "$work/src/$name" "$bin.tmp"
mv -f "$bin.tmp" "$bin"
"$bin" --version >&2
link
