# Shared by build-collector.sh and build-jaeger.sh (source it; not run on its own).
#
#   cache_begin KIND NAME KEY   sets $bin (= $TRADEOBS_CACHE/KIND/KEY/NAME). On a cache hit (and
#                               no FORCE=1) links it to $TRADEOBS_CACHE/bin/NAME, prints its path
#                               and exits 0. Otherwise points Go's caches into $TRADEOBS_CACHE,
#                               takes KIND's build lock and checks once more (another build may
#                               have finished while we waited), then returns: build into "$bin.tmp".
#   cache_end                   moves "$bin.tmp" into place, links it and prints its path.
cache="${TRADEOBS_CACHE:-$HOME/.cache/tradeobs}"
# The cache keys include `go env GOVERSION`, so Go is needed even for a cache hit.
command -v go >/dev/null || { echo "$(basename "$0"): 'go' not found on PATH" >&2; exit 1; }

cache_link() {
    mkdir -p "$cache/bin"
    ln -sfn "$bin" "$cache/bin/$cache_name"
    echo "$bin"
}

cache_begin() {
    cache_kind=$1 cache_name=$2
    bin="$cache/$1/$3/$2"
    if [[ -x "$bin" && -z "${FORCE:-}" ]]; then
        cache_link
        exit 0
    fi
    export GOTOOLCHAIN=local GOMODCACHE="$cache/go/mod" GOCACHE="$cache/go/build" CGO_ENABLED=0
    # 2 cores / 24 GiB machines: two compile jobs keep memory in check. Override with GOFLAGS.
    export GOFLAGS="${GOFLAGS:--p=2} -buildvcs=false"
    mkdir -p "$cache/$1"
    exec 9>"$cache/$1/.lock"
    flock 9
    if [[ -x "$bin" && -z "${FORCE:-}" ]]; then
        cache_link
        exit 0
    fi
    mkdir -p "$(dirname "$bin")"
}

cache_end() {
    mv -f "$bin.tmp" "$bin"
    cache_link
}
