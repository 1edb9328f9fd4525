#!/bin/sh
# Entry point of the compose `backup` service: runs backup.sh every
# $BACKUP_INTERVAL_SECONDS (default 86400 = daily), first after
# $BACKUP_INITIAL_DELAY_SECONDS (default 600). healthcheck.sh reports unhealthy
# when no run has succeeded for two intervals.
set -u
interval="${BACKUP_INTERVAL_SECONDS:-86400}"
delay="${BACKUP_INITIAL_DELAY_SECONDS:-600}"
state=/tmp/backup-last-ok
# Counts as "ok" at start so a fresh container is not unhealthy before its
# first run.
date +%s > "$state"
trap 'exit 0' INT TERM
sleep "$delay" & wait $!
while :; do
    if sh /opt/backup/backup.sh; then
        date +%s > "$state"
    fi
    sleep "$interval" & wait $!
done
