#!/bin/sh
# Entry point of the compose alertmanager service (and used by the tests):
# renders alertmanager.yml from the environment into $ALERTMANAGER_RENDER_DIR,
# writes the secrets to files there, then execs alertmanager with the given
# arguments. Without arguments it only renders (tests, `make check`).
#
# Environment (see compose/.env.example):
#   ALERTMANAGER_RENDER_DIR   output dir (a tmpfs in compose)           [required]
#   ALERT_WEBHOOK_URL         webhook for warning + critical alerts     [required]
#   ALERT_WEBHOOK_BEARER_TOKEN  secret, sent as Authorization: Bearer   (optional)
#   ALERT_EMAIL_TO            enables email for critical alerts          (optional)
#   ALERT_EMAIL_FROM          default alertmanager@localhost
#   ALERT_SMTP_SMARTHOST      host:port, required with ALERT_EMAIL_TO
#   ALERT_SMTP_USERNAME       enables SMTP auth                         (optional)
#   ALERT_SMTP_PASSWORD       secret, with ALERT_SMTP_USERNAME          (optional)
#   ALERT_SMTP_REQUIRE_TLS    true|false, default true
#   ALERT_DEADMANSSWITCH_URL  heartbeat URL for the Watchdog alert      (optional)
#   ALERTMANAGER_BIN          default /bin/alertmanager
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out="${ALERTMANAGER_RENDER_DIR:?ALERTMANAGER_RENDER_DIR is required}"

: "${ALERT_WEBHOOK_URL:?ALERT_WEBHOOK_URL is required (compose/.env)}"
export ALERT_WEBHOOK_BEARER_TOKEN="${ALERT_WEBHOOK_BEARER_TOKEN:-}"
export ALERT_EMAIL_TO="${ALERT_EMAIL_TO:-}"
export ALERT_EMAIL_FROM="${ALERT_EMAIL_FROM:-alertmanager@localhost}"
export ALERT_SMTP_SMARTHOST="${ALERT_SMTP_SMARTHOST:-}"
export ALERT_SMTP_USERNAME="${ALERT_SMTP_USERNAME:-}"
export ALERT_SMTP_REQUIRE_TLS="${ALERT_SMTP_REQUIRE_TLS:-true}"
export ALERT_DEADMANSSWITCH_URL="${ALERT_DEADMANSSWITCH_URL:-}"
export ALERTMANAGER_RENDER_DIR="$out"

case "$ALERT_SMTP_REQUIRE_TLS" in
    true|false) ;;
    *) echo "render.sh: ALERT_SMTP_REQUIRE_TLS must be true or false" >&2; exit 1 ;;
esac
if [ -n "$ALERT_EMAIL_TO" ] && [ -z "$ALERT_SMTP_SMARTHOST" ]; then
    echo "render.sh: ALERT_EMAIL_TO is set but ALERT_SMTP_SMARTHOST is not" >&2
    exit 1
fi

umask 077
mkdir -p "$out"
printf '%s' "${ALERT_SMTP_PASSWORD:-}" > "$out/smtp_password"
printf '%s' "$ALERT_WEBHOOK_BEARER_TOKEN" > "$out/webhook_token"
awk -f "$here/render.awk" "$here/alertmanager.yml" > "$out/alertmanager.yml.tmp"
mv "$out/alertmanager.yml.tmp" "$out/alertmanager.yml"

if [ $# -eq 0 ]; then
    echo "$out/alertmanager.yml"
    exit 0
fi
# Secrets are in files now; do not leak them into alertmanager's environment.
unset ALERT_SMTP_PASSWORD ALERT_WEBHOOK_BEARER_TOKEN
exec "${ALERTMANAGER_BIN:-/bin/alertmanager}" "$@"
