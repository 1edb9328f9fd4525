#!/bin/sh
# Start (or update) the whole tradeobs stack with one command:
#   compose/up.sh            # = docker compose -f compose/docker-compose.yml up -d --build
#   compose/up.sh --small    # the same with -f compose/docker-compose.small.yml (a 2 GiB host)
# Creates compose/.env from .env.example on first use, with a generated
# Grafana admin password (printed once). Extra arguments go to `up`.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
small=""
if [ "${1:-}" = "--small" ]; then
    shift
    small=1
fi
if [ ! -f "$here/.env" ]; then
    umask 077
    pw=$(LC_ALL=C tr -dc 'A-Za-z0-9' < /dev/urandom | head -c 24)
    sed "s/^GRAFANA_ADMIN_PASSWORD=.*/GRAFANA_ADMIN_PASSWORD=$pw/" "$here/.env.example" > "$here/.env"
    echo "Created $here/.env (Grafana admin password: $pw)."
    echo "Set ALERT_WEBHOOK_URL (and email settings) in it for real alert delivery."
fi
value() { sed -n "s/^$1=//p" "$here/.env" | tail -n 1 | sed "s/^[\"']//; s/[\"']\$//"; }
# A Grafana admin password everyone knows (the old .env.example's change-me) or none: refuse to start.
case "$(value GRAFANA_ADMIN_PASSWORD)" in
    ""|change-me|changeme|admin|password)
        echo "ERROR: GRAFANA_ADMIN_PASSWORD in $here/.env is empty or a published default (change-me, admin...)." >&2
        echo "Set your own, e.g.: LC_ALL=C tr -dc 'A-Za-z0-9' < /dev/urandom | head -c 24" >&2
        echo "If Grafana ever ran with that password, also change it there: docs/deployment.md, \"Secrets\"." >&2
        exit 1 ;;
esac
# Alert destinations: a stack that starts but can page no one looks healthy; say so at every start.
# Critical alerts also go to email and the phones (each when set); warnings only to the webhook.
phones=""
for name in ALERT_EMAIL_TO ALERT_TELEGRAM_BOT_TOKEN ALERT_SLACK_WEBHOOK_URL ALERT_DISCORD_WEBHOOK_URL; do
    if [ -n "$(value "$name")" ]; then phones="$phones $name"; fi
done
case "$(value ALERT_WEBHOOK_URL)" in
    ""|*alert-webhook-not-configured*)
        if [ -z "$phones" ]; then
            echo "WARNING: ALERT_WEBHOOK_URL in $here/.env is not set: alerts reach no one." >&2
        else
            echo "WARNING: ALERT_WEBHOOK_URL in $here/.env is not set: warnings reach no one (critical alerts go to${phones})." >&2
        fi ;;
esac
[ -n "$(value ALERT_DEADMANSSWITCH_URL)" ] || echo "WARNING: ALERT_DEADMANSSWITCH_URL is empty: nothing notices if alerting itself stops." >&2
case "$(value TRADEOBS_RUNBOOK_URL)" in
    *git.example.com*) echo "WARNING: TRADEOBS_RUNBOOK_URL is the example URL: alerts' runbook links lead nowhere." >&2 ;;
esac
mkdir -p "$here/backups"
if [ -n "$small" ]; then
    exec docker compose -f "$here/docker-compose.yml" -f "$here/docker-compose.small.yml" up -d --build "$@"
fi
exec docker compose -f "$here/docker-compose.yml" up -d --build "$@"
