#!/usr/bin/env bash
# Build Thanos (the one `thanos` binary, Apache-2.0) from the Go module proxy, cached by content.
# The metrics store beyond one Prometheus (docs/scaling.md): Prometheus remote-writes to
# `thanos receive` (two ingesting nodes, replication factor 2) and Grafana queries
# `thanos query`. The integration tests run the same binary (tests/integration/thanos.py).
#
#   scripts/build-thanos.sh            # build if needed, print the binary path
#   FORCE=1 scripts/build-thanos.sh    # rebuild even on a cache hit
#
# Result: $TRADEOBS_CACHE/thanos/<key>/thanos, linked from $TRADEOBS_CACHE/bin/thanos.
#
# Why Thanos and this version: the VictoriaMetrics *cluster* (vminsert/vmselect/vmstorage) lives
# on its own tags (v1.x.y-cluster), which the Go module proxy refuses ("not available"); only the
# single-node module is served, and one node is not a store with two storage nodes. v0.42.4 is the
# newest Thanos whose go.mod accepts this machine's Go (1.26.8): v0.42.5 requires go >= 1.26.10.
# Like Jaeger, Thanos' go.mod has `replace` directives, which `go install pkg@version` refuses: we
# `go mod download` the module and `go build ./cmd/thanos` inside it, with its own go.mod/go.sum,
# and with the build tag its releases use (.promu.yml): `slicelabels`. Without it Prometheus'
# labels use their string layout, which Thanos' gRPC codec (it reinterprets label slices in place)
# does not expect: every `thanos receive` panicked (makeslice: len out of range) at the query
# node's first call.
# The build applies scripts/patches/thanos/*.patch (in name order) to a copy of the module source:
# 0001 keeps a node started in a pruning minute (00:00, 04:00, ... 20:00 local time) from
# panicking on a tenant TSDB that is still opening (tests/integration/test_thanos_pruning_minute.py).
set -euo pipefail
export GOTOOLCHAIN=local

THANOS_VERSION=v0.42.4

root="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=scripts/_cached-build.sh
. "$root/scripts/_cached-build.sh"
patches=("$root"/scripts/patches/thanos/*.patch)
key="$( { echo "$THANOS_VERSION"; cat "$0" "$root/scripts/_cached-build.sh" "${patches[@]}"; go env GOVERSION GOOS GOARCH 2>/dev/null; } | sha256sum | cut -c1-16)"
cache_begin thanos thanos "$key"
export GOFLAGS="$GOFLAGS -mod=readonly"

start=$(date +%s)
echo "build-thanos: downloading github.com/thanos-io/thanos@$THANOS_VERSION" >&2
src="$(cd "${TMPDIR:-/tmp}" && go mod download -json "github.com/thanos-io/thanos@$THANOS_VERSION" \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
[[ -d "$src/cmd/thanos" ]] || { echo "build-thanos: module source not found ($src)" >&2; exit 1; }

# The module cache is read-only: patch and build a copy (removed after).
work="$(mktemp -d "${TMPDIR:-/tmp}/build-thanos.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cp -r "$src/." "$work/"
chmod -R u+w "$work"
for p in "${patches[@]}"; do
    echo "build-thanos: applying $(basename "$p")" >&2
    (cd "$work" && git apply -p1 "$p") || { echo "build-thanos: $p does not apply to $THANOS_VERSION" >&2; exit 1; }
done

echo "build-thanos: building cmd/thanos" >&2
ver_pkg=github.com/prometheus/common/version
(cd "$work" && go build -trimpath -tags slicelabels \
    -ldflags "-s -w -X $ver_pkg.Version=${THANOS_VERSION#v} -X $ver_pkg.Branch=module-proxy" \
    -o "$bin.tmp" ./cmd/thanos)
echo "build-thanos: built in $(( $(date +%s) - start ))s" >&2
"$bin.tmp" --version >&2
cache_end
