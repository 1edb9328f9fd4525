#!/bin/sh
# Restore a backup made by backup.sh.
#
#   restore.sh [--force] BACKUP_PATH
#
# Stop the services first (docs/deployment.md, "Restore"): restoring under a
# running Prometheus/Grafana/Loki/Jaeger corrupts their state.
#
# Environment (same names as backup.sh):
#   PROMETHEUS_DATA_DIR  target --storage.tsdb.path                   [required]
#   BACKUP_VOLUMES       name=path list; each <name>.tar.gz in the backup is
#                        extracted into its path (entries whose tarball is not
#                        in the backup are skipped with a warning)     (optional)
# Targets must be empty unless --force, which deletes their contents first.
# Checksums in MANIFEST are verified before anything is touched.
set -eu

log() { printf '%s restore: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

force=0
if [ "${1:-}" = "--force" ]; then force=1; shift; fi
[ $# -eq 1 ] || die "usage: restore.sh [--force] BACKUP_PATH"
src=$1
: "${PROMETHEUS_DATA_DIR:?PROMETHEUS_DATA_DIR is required}"
BACKUP_VOLUMES="${BACKUP_VOLUMES:-}"

[ -f "$src/MANIFEST" ] || die "$src has no MANIFEST: not a tradeobs backup"
[ -f "$src/prometheus.tar.gz" ] || die "$src/prometheus.tar.gz missing"

log "verifying checksums"
( cd "$src" && sed -n '/^# sha256$/,$p' MANIFEST | sed 1d | sha256sum -c - >&2 ) \
    || die "checksum verification failed for $src"

# As root (the compose backup container), tar gives every file back its owner: the services run as
# 65534, 472 and 10001. That takes CAP_CHOWN (and CAP_FOWNER for the modification times), which the
# compose service drops. Without it busybox tar leaves every file owned by root and says nothing, and
# the services cannot write their own data afterwards: refuse instead, before touching anything.
if [ "$(id -u)" = 0 ]; then
    mkdir -p "$PROMETHEUS_DATA_DIR"
    probe="$PROMETHEUS_DATA_DIR/.restore-chown-check.$$"
    : > "$probe" || die "cannot write in $PROMETHEUS_DATA_DIR"
    if ! chown 65534:65534 "$probe" 2>/dev/null; then
        rm -f "$probe"
        die "root without CAP_CHOWN: the restored files would all belong to root and the services could not write them; run it with --cap-add CHOWN --cap-add FOWNER (docs/deployment.md, \"Restore\")"
    fi
    rm -f "$probe"
fi

prepare_target() {  # $1 = directory
    mkdir -p "$1"
    if [ -n "$(ls -A "$1")" ]; then
        [ "$force" = 1 ] || die "$1 is not empty (use --force to replace its contents)"
        log "clearing $1"
        find "$1" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
    fi
}

prepare_target "$PROMETHEUS_DATA_DIR"
log "restoring Prometheus TSDB into $PROMETHEUS_DATA_DIR"
tar -xzf "$src/prometheus.tar.gz" -C "$PROMETHEUS_DATA_DIR"

for entry in $BACKUP_VOLUMES; do
    vname=${entry%%=*}
    vpath=${entry#*=}
    if [ ! -f "$src/$vname.tar.gz" ]; then
        log "WARNING: no $vname.tar.gz in $src, leaving $vpath alone"
        continue
    fi
    prepare_target "$vpath"
    log "restoring $vname into $vpath"
    tar -xzf "$src/$vname.tar.gz" -C "$vpath"
done
log "done: start the services again"
