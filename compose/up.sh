#!/bin/sh
# Start (or update) the whole tradeobs stack with one command:
#   compose/up.sh            # = docker compose -f compose/docker-compose.yml up -d --build
# Creates compose/.env from .env.example on first use, with a generated
# Grafana admin password (printed once). Extra arguments go to `up`.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
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
case "$(value ALERT_WEBHOOK_URL)" in
    ""|*alert-webhook-not-configured*) echo "WARNING: ALERT_WEBHOOK_URL in $here/.env is not set: alerts reach no one." >&2 ;;
esac
[ -n "$(value ALERT_DEADMANSSWITCH_URL)" ] || echo "WARNING: ALERT_DEADMANSSWITCH_URL is empty: nothing notices if alerting itself stops." >&2
case "$(value TRADEOBS_RUNBOOK_URL)" in
    *git.example.com*) echo "WARNING: TRADEOBS_RUNBOOK_URL is the example URL: alerts' runbook links lead nowhere." >&2 ;;
esac
mkdir -p "$here/backups"
exec docker compose -f "$here/docker-compose.yml" up -d --build "$@"
