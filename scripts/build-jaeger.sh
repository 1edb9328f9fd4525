#!/usr/bin/env bash
# Build Jaeger v2 (the all-in-one `jaeger` binary, Apache-2.0) from the Go module
# proxy, cached by content. Used as the real trace store in the integration
# tests (in-memory storage, see collector/jaeger-test.yaml).
#
#   scripts/build-jaeger.sh            # build if needed, print the binary path
#   FORCE=1 scripts/build-jaeger.sh    # rebuild even on a cache hit
#
# Result: $TRADEOBS_CACHE/jaeger/<key>/jaeger, linked from $TRADEOBS_CACHE/bin/jaeger.
#
# Why not `go install github.com/jaegertracing/jaeger/cmd/jaeger@v1.76.0`:
# Jaeger's go.mod has a `replace` directive (github.com/Shopify/sarama), and
# `go install pkg@version` refuses modules with replace directives. Instead we
# download the module zip from the proxy (`go mod download`) and `go build`
# inside it, so the build uses exactly Jaeger's own go.mod/go.sum (replace
# included). Jaeger v2 ships from the v1.x module tags as cmd/jaeger.
# The UI assets are not in the module zip: the binary serves a placeholder page
# at / but the HTTP query API (/api/traces/...) is complete.
set -euo pipefail
export GOTOOLCHAIN=local

JAEGER_VERSION=v1.76.0

root="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=scripts/_cached-build.sh
. "$root/scripts/_cached-build.sh"
key="$( { echo "$JAEGER_VERSION"; cat "$0" "$root/scripts/_cached-build.sh"; go env GOVERSION GOOS GOARCH 2>/dev/null; } | sha256sum | cut -c1-16)"
cache_begin jaeger jaeger "$key"
export GOFLAGS="$GOFLAGS -mod=readonly"

start=$(date +%s)
echo "build-jaeger: downloading github.com/jaegertracing/jaeger@$JAEGER_VERSION" >&2
src="$(cd "${TMPDIR:-/tmp}" && go mod download -json "github.com/jaegertracing/jaeger@$JAEGER_VERSION" \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
[[ -d "$src/cmd/jaeger" ]] || { echo "build-jaeger: module source not found ($src)" >&2; exit 1; }

echo "build-jaeger: building cmd/jaeger" >&2
ver_pkg=github.com/jaegertracing/jaeger/internal/version
(cd "$src" && go build -trimpath \
    -ldflags "-s -w -X $ver_pkg.latestVersion=$JAEGER_VERSION" \
    -o "$bin.tmp" ./cmd/jaeger)
echo "build-jaeger: built in $(( $(date +%s) - start ))s" >&2
cache_end
