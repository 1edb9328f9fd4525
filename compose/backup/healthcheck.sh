#!/bin/sh
# Healthy while the last successful backup (or the scheduler start) is younger
# than two intervals plus the initial delay.
interval="${BACKUP_INTERVAL_SECONDS:-86400}"
delay="${BACKUP_INITIAL_DELAY_SECONDS:-600}"
last=$(cat /tmp/backup-last-ok 2>/dev/null) || exit 1
[ $(( $(date +%s) - last )) -lt $(( 2 * interval + delay )) ]
