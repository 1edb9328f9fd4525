#!/usr/bin/env bash
# Build nats-server (Apache-2.0, with JetStream) from the Go module proxy, cached by content.
# The live gateway's tests and benchmark run it (docs/scaling.md); compose/ runs the official
# image of the same release (nats:<version>-alpine).
#
#   scripts/build-nats.sh            # build if needed, print the binary path
#   FORCE=1 scripts/build-nats.sh    # rebuild even on a cache hit
#
# Result: $TRADEOBS_CACHE/nats/<key>/nats-server, linked from $TRADEOBS_CACHE/bin/nats-server.
#
# Why not Debian's nats-server (2.9.10, which has JetStream too): the 2.9 series is out of
# support upstream, and compose must run the release the tests ran, as it does for the
# collector and Jaeger. Like build-jaeger.sh, the module zip is downloaded (`go mod download`)
# and built inside, with exactly the module's own go.mod/go.sum.
set -euo pipefail
export GOTOOLCHAIN=local

NATS_VERSION=v2.15.3

root="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=scripts/_cached-build.sh
. "$root/scripts/_cached-build.sh"
key="$( { echo "$NATS_VERSION"; cat "$0" "$root/scripts/_cached-build.sh"; go env GOVERSION GOOS GOARCH 2>/dev/null; } | sha256sum | cut -c1-16)"
cache_begin nats nats-server "$key"
export GOFLAGS="$GOFLAGS -mod=readonly"

start=$(date +%s)
echo "build-nats: downloading github.com/nats-io/nats-server/v2@$NATS_VERSION" >&2
src="$(cd "${TMPDIR:-/tmp}" && go mod download -json "github.com/nats-io/nats-server/v2@$NATS_VERSION" \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
[[ -f "$src/main.go" ]] || { echo "build-nats: module source not found ($src)" >&2; exit 1; }

echo "build-nats: building nats-server" >&2
(cd "$src" && go build -trimpath -ldflags "-s -w" -o "$bin.tmp" .)
echo "build-nats: built in $(( $(date +%s) - start ))s" >&2
cache_end
