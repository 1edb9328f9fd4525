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
mkdir -p "$here/backups"
exec docker compose -f "$here/docker-compose.yml" up -d --build "$@"
