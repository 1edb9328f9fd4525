#!/bin/sh
# tradeobs backup: one consistent Prometheus TSDB snapshot (admin API) plus a
# tarball of each other state directory, into $BACKUP_DIR/tradeobs-<UTC stamp>/,
# keeping the newest $BACKUP_KEEP runs.
#
# POSIX sh; runs in the compose `backup` service (busybox: sh, wget, tar, gzip,
# sha256sum) and natively (curl or wget). Environment:
#   PROMETHEUS_URL       e.g. http://prometheus:9090 (admin API must be on:
#                        --web.enable-admin-api)                      [required]
#   PROMETHEUS_DATA_DIR  Prometheus --storage.tsdb.path as mounted here; the
#                        snapshot appears in its snapshots/ dir        [required]
#   BACKUP_DIR           where backups go                              [required]
#   BACKUP_KEEP          number of backups to keep (default 7)
#   BACKUP_VOLUMES       space-separated name=path list of directories to tar,
#                        e.g. "grafana=/data/grafana loki=/data/loki"  (optional)
#   BACKUP_MIN_FREE_PCT  refuse a backup that would leave less than this % of
#                        BACKUP_DIR's filesystem free (default 5; 0: never)
#   BACKUP_TEXTFILE_DIR  node-exporter textfile dir for the
#                        tradeobs_backup_* metrics                      (optional)
#
# Output: the path of the new backup on stdout; progress on stderr.
# Layout of a backup:
#   prometheus.tar.gz   contents of the snapshot dir (TSDB blocks): extract into
#                       an empty --storage.tsdb.path to restore (restore.sh)
#   <name>.tar.gz       one per BACKUP_VOLUMES entry, relative to its path
#   MANIFEST            stamp, snapshot name, sha256 of every file
set -eu

log() { printf '%s backup: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

: "${PROMETHEUS_URL:?PROMETHEUS_URL is required}"
: "${PROMETHEUS_DATA_DIR:?PROMETHEUS_DATA_DIR is required}"
: "${BACKUP_DIR:?BACKUP_DIR is required}"
BACKUP_KEEP="${BACKUP_KEEP:-7}"
BACKUP_VOLUMES="${BACKUP_VOLUMES:-}"
BACKUP_TEXTFILE_DIR="${BACKUP_TEXTFILE_DIR:-}"

case "$BACKUP_KEEP" in
    ''|*[!0-9]*) die "BACKUP_KEEP must be a positive integer, got '$BACKUP_KEEP'" ;;
esac
[ "$BACKUP_KEEP" -ge 1 ] || die "BACKUP_KEEP must be >= 1"
BACKUP_MIN_FREE_PCT="${BACKUP_MIN_FREE_PCT:-5}"
case "$BACKUP_MIN_FREE_PCT" in
    ''|*[!0-9]*) die "BACKUP_MIN_FREE_PCT must be an integer from 0 to 100, got '$BACKUP_MIN_FREE_PCT'" ;;
esac
[ "$BACKUP_MIN_FREE_PCT" -le 100 ] || die "BACKUP_MIN_FREE_PCT must be an integer from 0 to 100, got '$BACKUP_MIN_FREE_PCT'"
[ -d "$PROMETHEUS_DATA_DIR" ] || die "PROMETHEUS_DATA_DIR $PROMETHEUS_DATA_DIR is not a directory"

# POST with an empty body; prints the response body.
http_post() {
    if command -v curl >/dev/null 2>&1; then
        curl -fsS --max-time 300 -X POST "$1"
    else
        wget -q -O - --post-data='' "$1"
    fi
}

write_metrics() {  # $1 = 1 on success, 0 on failure; $2 = size in bytes
    [ -n "$BACKUP_TEXTFILE_DIR" ] || return 0
    mkdir -p "$BACKUP_TEXTFILE_DIR" || return 0
    prom="$BACKUP_TEXTFILE_DIR/tradeobs_backup.prom"
    now=$(date +%s)
    {
        echo "# HELP tradeobs_backup_last_run_timestamp_seconds Time of the last backup attempt."
        echo "# TYPE tradeobs_backup_last_run_timestamp_seconds gauge"
        echo "tradeobs_backup_last_run_timestamp_seconds $now"
        echo "# HELP tradeobs_backup_last_run_success 1 if the last backup attempt succeeded."
        echo "# TYPE tradeobs_backup_last_run_success gauge"
        echo "tradeobs_backup_last_run_success $1"
        if [ "$1" = 1 ]; then
            echo "# HELP tradeobs_backup_last_success_timestamp_seconds Time of the last successful backup."
            echo "# TYPE tradeobs_backup_last_success_timestamp_seconds gauge"
            echo "tradeobs_backup_last_success_timestamp_seconds $now"
            echo "# HELP tradeobs_backup_last_size_bytes Size of the last successful backup."
            echo "# TYPE tradeobs_backup_last_size_bytes gauge"
            echo "tradeobs_backup_last_size_bytes $2"
        elif [ -f "$prom" ]; then
            # keep the previous success time so BackupTooOld measures from it
            grep -E '^(# (HELP|TYPE) )?tradeobs_backup_last_(success_timestamp_seconds|size_bytes)' "$prom" || true
        fi
    } > "$prom.tmp.$$" && mv "$prom.tmp.$$" "$prom"
}

stamp=$(date -u +%Y%m%dT%H%M%SZ)
# Several runs within one second get -02, -03, ... after the stamp, numbered
# past every existing one so names always sort in creation order.
final="$BACKUP_DIR/tradeobs-$stamp"
n=0
for existing in "$BACKUP_DIR/tradeobs-$stamp" "$BACKUP_DIR/tradeobs-$stamp"-*; do
    [ -e "$existing" ] && n=$((n + 1))
done
while [ "$n" -gt 0 ] && final="$BACKUP_DIR/tradeobs-$stamp-$(printf '%02d' $((n + 1)))" && [ -e "$final" ]; do
    n=$((n + 1))
done
work="$BACKUP_DIR/.tmp-${final##*/}"
snapdir=""

cleanup() {
    rc=$?
    if [ -n "$snapdir" ] && [ -d "$snapdir" ]; then rm -rf "$snapdir"; fi
    if [ "$rc" -ne 0 ]; then
        rm -rf "$work"
        write_metrics 0 0
        log "FAILED (exit $rc)"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A volume archived while its service writes it (Loki, Jaeger, Grafana: "consistent enough", docs/deployment.md).
# GNU tar, the host's tar when this runs from cron, exits 1 when a file changed while it read it (Badger's memtable
# file does at every span): the archive holds what it read, as busybox tar's does (which says nothing). That is a
# warning; any other message or status is a failure.
archive_live() {  # $1 = archive, $2 = directory
    tar_err="$work/.tar-stderr"
    tar_rc=0
    tar -czf "$1" -C "$2" . 2>"$tar_err" || tar_rc=$?
    if [ "$tar_rc" -eq 1 ] && grep -q 'file changed as we read it$' "$tar_err" \
        && ! grep -v -e 'file changed as we read it$' -e 'Exiting with failure status due to previous errors$' \
            "$tar_err" >/dev/null; then
        log "warning: archived while written (live volume): $(tr '\n' ' ' <"$tar_err")"
        tar_rc=0
    else
        cat "$tar_err" >&2
    fi
    rm -f "$tar_err"
    return "$tar_rc"
}

# A backup lands a whole copy of the stores at once, on the disk they write to: one that fills it stops Prometheus,
# Jaeger and Loki writing. Refused (a failed backup: BackupTooOld pages) while it would leave less than
# BACKUP_MIN_FREE_PCT of the filesystem free, the newest backup's size taken as this one's; checked again after
# each archive (the stores may have grown since).
room() {  # $1 = KiB about to be written: dies unless the floor stays free after it
    [ "$BACKUP_MIN_FREE_PCT" -gt 0 ] || return 0
    # shellcheck disable=SC2046  # df's two numbers: the filesystem's KiB and its free KiB
    set -- "$1" $(df -Pk "$BACKUP_DIR" | awk 'NR == 2 {print $2, $4}')
    [ -n "${3:-}" ] || die "df -Pk $BACKUP_DIR: cannot read the free space"
    if [ $(( ($3 - $1) * 100 )) -lt $(( $2 * BACKUP_MIN_FREE_PCT )) ]; then
        die "not enough disk for a backup in $BACKUP_DIR: $(( $3 / 1024 )) MiB free of $(( $2 / 1024 )) MiB, $(( $1 / 1024 )) MiB more would leave less than BACKUP_MIN_FREE_PCT=$BACKUP_MIN_FREE_PCT% free (free space, fewer BACKUP_KEEP, or a backup disk of its own)"
    fi
}

mkdir -p "$BACKUP_DIR"
last=$(ls -1d "$BACKUP_DIR"/tradeobs-* 2>/dev/null | LC_ALL=C sort | tail -n 1)
room "$( [ -n "$last" ] && du -sk "$last" | awk '{print $1}' || echo 0)"
mkdir "$work"

# 1. Prometheus: snapshot via the admin API (consistent, includes the head).
log "requesting TSDB snapshot from $PROMETHEUS_URL"
resp=$(http_post "$PROMETHEUS_URL/api/v1/admin/tsdb/snapshot") \
    || die "snapshot request failed (is --web.enable-admin-api set?)"
case "$resp" in
    *'"status":"success"'*) ;;
    *) die "snapshot request returned: $resp" ;;
esac
name=$(printf '%s' "$resp" | sed -n 's/.*"name":"\([^"]*\)".*/\1/p')
[ -n "$name" ] || die "no snapshot name in response: $resp"
case "$name" in */*|.*) die "unexpected snapshot name '$name'" ;; esac
snapdir="$PROMETHEUS_DATA_DIR/snapshots/$name"
[ -d "$snapdir" ] || die "snapshot $name not found at $snapdir (PROMETHEUS_DATA_DIR must be Prometheus' data dir)"
log "archiving snapshot $name"
tar -czf "$work/prometheus.tar.gz" -C "$snapdir" .
rm -rf "$snapdir"
snapdir=""
room 0

# 2. Other state directories.
for entry in $BACKUP_VOLUMES; do
    vname=${entry%%=*}
    vpath=${entry#*=}
    case "$vname" in ''|*[!A-Za-z0-9_-]*) die "bad BACKUP_VOLUMES entry '$entry'" ;; esac
    [ "$vname" != prometheus ] || die "BACKUP_VOLUMES name 'prometheus' is reserved"
    [ -d "$vpath" ] || die "BACKUP_VOLUMES: $vpath ($vname) is not a directory"
    log "archiving $vname from $vpath"
    archive_live "$work/$vname.tar.gz" "$vpath"
    room 0
done

# 3. Manifest with checksums (restore.sh verifies them).
(
    cd "$work"
    echo "# tradeobs backup"
    echo "stamp=$stamp"
    echo "prometheus_snapshot=$name"
    echo "volumes=$BACKUP_VOLUMES"
    echo "# sha256"
    sha256sum ./*.tar.gz
) > "$work/MANIFEST.tmp"
mv "$work/MANIFEST.tmp" "$work/MANIFEST"

mv "$work" "$final"
size=$(du -sk "$final" | awk '{print $1 * 1024}')
log "wrote $final ($size bytes)"

# 4. Rotation: keep the newest $BACKUP_KEEP (names sort by time), drop
#    leftovers of interrupted runs.
for old in $(ls -1d "$BACKUP_DIR"/tradeobs-* 2>/dev/null | LC_ALL=C sort -r | tail -n +"$((BACKUP_KEEP + 1))"); do
    log "rotating out $old"
    rm -rf "$old"
done
for tmp in "$BACKUP_DIR"/.tmp-tradeobs-*; do
    [ -e "$tmp" ] || continue
    log "removing leftover $tmp"
    rm -rf "$tmp"
done

write_metrics 1 "$size"
echo "$final"
