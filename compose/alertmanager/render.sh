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
#   Phones (critical alerts, like email; each optional, off when unset):
#   ALERT_TELEGRAM_BOT_TOKEN  secret, from @BotFather; with ALERT_TELEGRAM_CHAT_ID
#   ALERT_TELEGRAM_CHAT_ID    integer chat id (negative for a group or channel)
#   ALERT_TELEGRAM_API_URL    default https://api.telegram.org
#   ALERT_SLACK_WEBHOOK_URL   secret, a Slack incoming webhook (https)
#   ALERT_SLACK_CHANNEL       default: the webhook's own channel
#   ALERT_DISCORD_WEBHOOK_URL secret, a Discord channel webhook (https)
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
export ALERTMANAGER_TEMPLATE_DIR="$here"

fail() { echo "render.sh: $*" >&2; exit 1; }
# A URL a secret is sent to (or is): https, or http to this host only (a relay
# beside Alertmanager, a test). $2 is shown only when the URL is no secret.
check_url() {
    name=$1 value=$2 shown=$3
    case "$value" in
        *[[:space:]]*) ;;
        https://?*) return 0 ;;
        http://*@*) ;;  # user@host: the host is not what it seems
        http://127.0.0.1|http://127.0.0.1[:/]*|http://localhost|http://localhost[:/]*|http://\[::1\]|http://\[::1\][:/]*) return 0 ;;
    esac
    scheme="${value%%://*}"
    [ "$scheme" = "$value" ] && scheme="(none)"
    if [ "$shown" = show ]; then
        fail "$name is '$value': must be an https:// URL (http:// only to 127.0.0.1, localhost or [::1])"
    fi
    fail "$name is not an https:// URL (its scheme: $scheme; the value is a secret, not shown): must be https:// (http:// only to 127.0.0.1, localhost or [::1])"
}

case "$ALERT_SMTP_REQUIRE_TLS" in
    true|false) ;;
    *) echo "render.sh: ALERT_SMTP_REQUIRE_TLS must be true or false" >&2; exit 1 ;;
esac
if [ -n "$ALERT_EMAIL_TO" ] && [ -z "$ALERT_SMTP_SMARTHOST" ]; then
    echo "render.sh: ALERT_EMAIL_TO is set but ALERT_SMTP_SMARTHOST is not" >&2
    exit 1
fi

# Phones. A secret's value is never printed (nor written but to its file).
tg_token="${ALERT_TELEGRAM_BOT_TOKEN:-}"
export ALERT_TELEGRAM_CHAT_ID="${ALERT_TELEGRAM_CHAT_ID:-}"
if [ -n "$tg_token" ] && [ -z "$ALERT_TELEGRAM_CHAT_ID" ]; then
    fail "ALERT_TELEGRAM_BOT_TOKEN is set but ALERT_TELEGRAM_CHAT_ID is not: set both (the chat the bot writes to) or neither"
fi
if [ -z "$tg_token" ] && [ -n "$ALERT_TELEGRAM_CHAT_ID" ]; then
    fail "ALERT_TELEGRAM_CHAT_ID is set ('$ALERT_TELEGRAM_CHAT_ID') but ALERT_TELEGRAM_BOT_TOKEN is not: set both or neither"
fi
if [ -z "$tg_token" ] && [ -n "${ALERT_TELEGRAM_API_URL:-}" ]; then
    fail "ALERT_TELEGRAM_API_URL is set but ALERT_TELEGRAM_BOT_TOKEN is not: it only serves the Telegram receiver"
fi
if [ -n "$tg_token" ]; then
    # an int64 (Alertmanager's chat_id): digits, a minus for groups and channels
    case "$ALERT_TELEGRAM_CHAT_ID" in
        -*) digits="${ALERT_TELEGRAM_CHAT_ID#-}" ;;
        *) digits="$ALERT_TELEGRAM_CHAT_ID" ;;
    esac
    case "$digits" in
        ''|*[!0-9]*) bad=1 ;;
        *) bad=$(( ${#digits} > 18 )) ;;
    esac
    if [ "$bad" = 1 ]; then
        fail "ALERT_TELEGRAM_CHAT_ID is '$ALERT_TELEGRAM_CHAT_ID': must be an integer chat id (at most 18 digits), e.g. 123456789 (a user) or -1001234567890 (a group or channel); Alertmanager cannot send to an @name"
    fi
    case "$tg_token" in
        bot[0-9]*:*) fail "ALERT_TELEGRAM_BOT_TOKEN starts with 'bot': set the token alone, <digits>:<letters> as @BotFather gives it (the value is a secret, not shown)" ;;
    esac
    if ! printf '%s' "$tg_token" | grep -Eq '^[0-9]+:[A-Za-z0-9_-]+$'; then
        fail "ALERT_TELEGRAM_BOT_TOKEN is not a bot token: must be <digits>:<letters, digits, _ or ->, as @BotFather gives it (the value is a secret, not shown)"
    fi
    export ALERT_TELEGRAM_API_URL="${ALERT_TELEGRAM_API_URL:-https://api.telegram.org}"
    check_url ALERT_TELEGRAM_API_URL "$ALERT_TELEGRAM_API_URL" show
fi
export ALERT_TELEGRAM_API_URL="${ALERT_TELEGRAM_API_URL:-}"
slack_url="${ALERT_SLACK_WEBHOOK_URL:-}"
export ALERT_SLACK_CHANNEL="${ALERT_SLACK_CHANNEL:-}"
[ -n "$slack_url" ] && check_url ALERT_SLACK_WEBHOOK_URL "$slack_url" secret
if [ -z "$slack_url" ] && [ -n "$ALERT_SLACK_CHANNEL" ]; then
    fail "ALERT_SLACK_CHANNEL is set ('$ALERT_SLACK_CHANNEL') but ALERT_SLACK_WEBHOOK_URL is not: set the webhook too, or neither"
fi
discord_url="${ALERT_DISCORD_WEBHOOK_URL:-}"
[ -n "$discord_url" ] && check_url ALERT_DISCORD_WEBHOOK_URL "$discord_url" secret
# #{if NAME} tests these: present, empty when off (the values stay in the files).
export ALERT_TELEGRAM_BOT_TOKEN="${tg_token:+set}" ALERT_SLACK_WEBHOOK_URL="${slack_url:+set}" ALERT_DISCORD_WEBHOOK_URL="${discord_url:+set}"

umask 077
mkdir -p "$out"
printf '%s' "${ALERT_SMTP_PASSWORD:-}" > "$out/smtp_password"
printf '%s' "$ALERT_WEBHOOK_BEARER_TOKEN" > "$out/webhook_token"
printf '%s' "$tg_token" > "$out/telegram_bot_token"
printf '%s' "$slack_url" > "$out/slack_webhook_url"
printf '%s' "$discord_url" > "$out/discord_webhook_url"
awk -f "$here/render.awk" "$here/alertmanager.yml" > "$out/alertmanager.yml.tmp"
mv "$out/alertmanager.yml.tmp" "$out/alertmanager.yml"

if [ $# -eq 0 ]; then
    echo "$out/alertmanager.yml"
    exit 0
fi
# Secrets are in files now; do not leak them into alertmanager's environment.
unset ALERT_SMTP_PASSWORD ALERT_WEBHOOK_BEARER_TOKEN ALERT_SLACK_WEBHOOK_URL ALERT_DISCORD_WEBHOOK_URL \
    slack_url discord_url
if [ -z "$tg_token" ]; then
    unset ALERT_TELEGRAM_BOT_TOKEN tg_token
    exec "${ALERTMANAGER_BIN:-/bin/alertmanager}" "$@"
fi
# The bot token is part of the Telegram API's URL (/bot<token>/sendMessage), and
# Alertmanager (0.28, as upstream's newest) logs that URL when Telegram cannot
# be reached ("Notify attempt failed ... Post \"https://api.telegram.org/bot...").
# Its log goes through this filter (a child that ends with it), the token
# replaced by <redacted>; Slack and Discord URLs Alertmanager redacts itself.
# Line by line with the shell's read (awk may hold lines back in its buffer).
redact_token() {
    while IFS= read -r line || [ -n "$line" ]; do
        while :; do
            case "$line" in
                *"$tg_token"*) line="${line%%"$tg_token"*}<redacted>${line#*"$tg_token"}" ;;
                *) break ;;
            esac
        done
        printf '%s\n' "$line"
    done
}
rm -f "$out/log.fifo"
mkfifo "$out/log.fifo"
redact_token < "$out/log.fifo" >&2 &
unset ALERT_TELEGRAM_BOT_TOKEN tg_token
exec "${ALERTMANAGER_BIN:-/bin/alertmanager}" "$@" 2> "$out/log.fifo"
