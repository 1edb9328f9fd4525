"""Critical alerts on a phone: the optional Telegram, Slack and Discord receivers of compose's Alertmanager.

render.sh turns them on from compose/.env (ALERT_TELEGRAM_BOT_TOKEN + ALERT_TELEGRAM_CHAT_ID, ALERT_SLACK_WEBHOOK_URL,
ALERT_DISCORD_WEBHOOK_URL), writes their secrets (the bot token, the webhook URLs: whoever has one can post) to files
that the config's *_file fields name, and refuses bad settings naming the variable. Every variant passes amtool; a real
Alertmanager delivers a firing and a resolved alert to a local server standing in for the three services' APIs, and
the test reads what each would have received.

The *_file fields came after Debian's Alertmanager 0.25 (telegram bot_token_file in 0.26, discord webhook_url_file in
0.27): these tests run the version compose pins, built by scripts/build-alertmanager.sh (scripts/install.d), as
alertmanager-compose / amtool-compose.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from .helpers import COMPOSE_DIR, COMPOSE_FILE, REPO, LocalServer, QuietHandler, free_port, require_binary, wait_until
from .test_alertmanager import FULL, MIN, RENDER, amtool, render, render_checked, start_rendered

# The compose image's version is the one scripts/build-alertmanager.sh builds (test_compose_image_is_the_build).
AMTOOL = "amtool-compose"
ALERTMANAGER = "alertmanager-compose"
# Route timers / FACTOR (critical: group_wait 10 s -> 1 s, group_interval 1 m -> 6 s): the resolved message goes out
# at the group's next group_interval tick after the resolve.
FACTOR = 10

TOKEN = "123456789:AAE-SECRETtelegram_token"
CHAT = "-1001234567890"
SLACK = "https://hooks.slack.com/services/T000/B000/SECRETslack"
DISCORD = "https://discord.com/api/webhooks/1234/SECRETdiscord"
TELEGRAM_ENV = {"ALERT_TELEGRAM_BOT_TOKEN": TOKEN, "ALERT_TELEGRAM_CHAT_ID": CHAT}
SLACK_ENV = {"ALERT_SLACK_WEBHOOK_URL": SLACK}
DISCORD_ENV = {"ALERT_DISCORD_WEBHOOK_URL": DISCORD}
PHONES = {**TELEGRAM_ENV, **SLACK_ENV, "ALERT_SLACK_CHANNEL": "#trading-alerts", **DISCORD_ENV}

VARIANTS = {
    "telegram": ({**MIN, **TELEGRAM_ENV}, {"telegram_configs"}),
    "slack": ({**MIN, **SLACK_ENV}, {"slack_configs"}),
    "slack-channel": ({**MIN, **SLACK_ENV, "ALERT_SLACK_CHANNEL": "#alerts"}, {"slack_configs"}),
    "discord": ({**MIN, **DISCORD_ENV}, {"discord_configs"}),
    "all-phones": ({**MIN, **PHONES}, {"telegram_configs", "slack_configs", "discord_configs"}),
    "everything": ({**FULL, **PHONES}, {"email_configs", "telegram_configs", "slack_configs", "discord_configs"}),
    "none": (MIN, set()),
}
PHONE_CONFIGS = {"telegram_configs", "slack_configs", "discord_configs"}


def _receiver(cfg: Path, name: str) -> dict[str, Any]:
    doc = yaml.safe_load(cfg.read_text())
    return next(r for r in doc["receivers"] if r["name"] == name)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_receiver_variant_renders_and_passes_amtool(tmp_path: Path, variant: str) -> None:
    """Each phone receiver alone, together, with email and without: amtool (the pinned version) accepts the rendering,
    critical alerts route to them, warnings do not (as email), and no secret is in the file."""
    env, configs = VARIANTS[variant]
    cfg, res = render_checked(tmp_path, env, AMTOOL)
    critical = _receiver(cfg, "critical")
    assert {k for k in critical if k.endswith("_configs")} - {"webhook_configs"} == configs
    for name in ("webhook", "null"):
        assert not PHONE_CONFIGS & set(_receiver(cfg, name)), name  # warnings and info go to no phone
    text = cfg.read_text()
    assert "SECRET" not in text
    for secret in (TOKEN, SLACK, DISCORD, "tok-SECRET-123", "pw-SECRET-456"):
        assert secret not in res.stdout + res.stderr
    route = amtool(
        "config",
        "routes",
        "test",
        f"--config.file={cfg}",
        "alertname=TradingKillSwitchEngaged",
        "severity=critical",
        binary=AMTOOL,
    )
    assert route.stdout.strip() == "critical", route.stdout + route.stderr
    files = {
        "telegram_configs": ("telegram_bot_token", "ALERT_TELEGRAM_BOT_TOKEN"),
        "slack_configs": ("slack_webhook_url", "ALERT_SLACK_WEBHOOK_URL"),
        "discord_configs": ("discord_webhook_url", "ALERT_DISCORD_WEBHOOK_URL"),
    }
    for key, (file, var) in files.items():
        path = tmp_path / file
        assert path.stat().st_mode & 0o077 == 0
        assert path.read_text() == env.get(var, ""), file
        assert (f"'{path}'" in text) == (key in configs), file


def test_the_slack_receiver_passes_debians_amtool_too(tmp_path: Path) -> None:
    """slack_configs.api_url_file is as old as Alertmanager 0.22: the Slack receiver runs on Debian's 0.25 as well.
    (Telegram and Discord need the pinned version: docs/deployment.md says so.)"""
    assert render(tmp_path, **MIN, **SLACK_ENV).returncode == 0
    assert "slack_configs" in _receiver(tmp_path / "alertmanager.yml", "critical")
    check = amtool("check-config", str(tmp_path / "alertmanager.yml"))
    assert check.returncode == 0, check.stdout + check.stderr


SECRETS = ("SECRET", "bot123")


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        # a chat id is an integer: Alertmanager cannot send to an @channel name
        (
            {**TELEGRAM_ENV, "ALERT_TELEGRAM_CHAT_ID": "@my_channel"},
            ["ALERT_TELEGRAM_CHAT_ID is '@my_channel'", "integer", "-1001234567890"],
        ),
        ({**TELEGRAM_ENV, "ALERT_TELEGRAM_CHAT_ID": "12.5"}, ["ALERT_TELEGRAM_CHAT_ID is '12.5'", "integer"]),
        ({**TELEGRAM_ENV, "ALERT_TELEGRAM_CHAT_ID": "- 42"}, ["ALERT_TELEGRAM_CHAT_ID is '- 42'", "integer"]),
        ({"ALERT_TELEGRAM_BOT_TOKEN": TOKEN}, ["ALERT_TELEGRAM_BOT_TOKEN is set but ALERT_TELEGRAM_CHAT_ID is not"]),
        ({"ALERT_TELEGRAM_CHAT_ID": CHAT}, [f"ALERT_TELEGRAM_CHAT_ID is set ('{CHAT}') but ALERT_TELEGRAM_BOT_TOKEN"]),
        (
            {"ALERT_TELEGRAM_API_URL": "https://tg.example.com"},
            ["ALERT_TELEGRAM_API_URL is set but ALERT_TELEGRAM_BOT_TOKEN is not"],
        ),
        # the token as it appears in the API's URL (/bot<token>/...) rather than as @BotFather gives it
        (
            {**TELEGRAM_ENV, "ALERT_TELEGRAM_BOT_TOKEN": "bot123:SECRET"},
            ["ALERT_TELEGRAM_BOT_TOKEN starts with 'bot'", "<digits>:<letters>", "not shown"],
        ),
        (
            {**TELEGRAM_ENV, "ALERT_TELEGRAM_BOT_TOKEN": "SECRET-no-colon"},
            ["ALERT_TELEGRAM_BOT_TOKEN is not a bot token", "<digits>:", "not shown"],
        ),
        (
            {**TELEGRAM_ENV, "ALERT_TELEGRAM_API_URL": "http://tg.example.com"},
            ["ALERT_TELEGRAM_API_URL is 'http://tg.example.com'", "https://"],
        ),
        # the URL is the secret: never over plain http (but to this host), never shown
        (
            {"ALERT_SLACK_WEBHOOK_URL": "http://hooks.slack.com/services/T/B/SECRET"},
            ["ALERT_SLACK_WEBHOOK_URL is not an https:// URL", "its scheme: http;", "not shown"],
        ),
        (
            {"ALERT_SLACK_WEBHOOK_URL": "hooks.slack.com/services/T/B/SECRET"},
            ["ALERT_SLACK_WEBHOOK_URL is not an https:// URL", "its scheme: (none)"],
        ),
        (
            {"ALERT_DISCORD_WEBHOOK_URL": "http://localhost:80@evil.example.com/SECRET"},
            ["ALERT_DISCORD_WEBHOOK_URL is not an https:// URL", "127.0.0.1, localhost or [::1]"],
        ),
        (
            {"ALERT_DISCORD_WEBHOOK_URL": "https://discord.com/api/webhooks/1/SECRET x"},
            ["ALERT_DISCORD_WEBHOOK_URL is not an https:// URL"],
        ),
        (
            {"ALERT_SLACK_CHANNEL": "#alerts"},
            ["ALERT_SLACK_CHANNEL is set ('#alerts') but ALERT_SLACK_WEBHOOK_URL is not"],
        ),
    ],
)
def test_bad_phone_settings_are_refused_naming_the_variable(
    tmp_path: Path, env: dict[str, str], expected: list[str]
) -> None:
    res = render(tmp_path, **MIN, **env)
    assert res.returncode != 0
    for part in expected:
        assert part in res.stderr, res.stderr
    for secret in SECRETS:
        assert secret not in res.stderr, res.stderr
    assert not (tmp_path / "alertmanager.yml").exists()


def test_compose_passes_every_phone_setting_and_runs_the_version_the_tests_build() -> None:
    """Each variable render.sh reads reaches the container; compose's image is the version built for these tests."""
    svc = yaml.safe_load(COMPOSE_FILE.read_text())["services"]["alertmanager"]
    read = set(re.findall(r"\bALERT_(?:TELEGRAM|SLACK|DISCORD)_[A-Z_]+", RENDER.read_text()))
    assert read == {
        "ALERT_TELEGRAM_BOT_TOKEN",
        "ALERT_TELEGRAM_CHAT_ID",
        "ALERT_TELEGRAM_API_URL",
        "ALERT_SLACK_WEBHOOK_URL",
        "ALERT_SLACK_CHANNEL",
        "ALERT_DISCORD_WEBHOOK_URL",
    }
    for name in read:
        assert svc["environment"][name] == f"${{{name}:-}}", name
    example = (COMPOSE_DIR / ".env.example").read_text()
    for name in read - {"ALERT_TELEGRAM_API_URL"}:
        assert re.search(rf"^{name}=$", example, re.M), name
    built = re.search(r"^AM_VERSION=(v[0-9.]+)$", (REPO / "scripts" / "build-alertmanager.sh").read_text(), re.M)
    assert built
    assert svc["image"] == f"prom/alertmanager:{built.group(1)}"


# --- a real Alertmanager delivering to the phone services' APIs --------------


class _PhoneApis(LocalServer):
    """Telegram's Bot API, a Slack incoming webhook and a Discord webhook on one local port, answering as each does
    (Telegram: the sent Message as JSON; Slack: "ok"; Discord: 204) and recording every request."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, Any]] = []
        outer = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append((self.path, body))
                if self.path.startswith("/bot"):
                    message = {"message_id": len(outer.requests), "date": 0, "chat": {"id": int(CHAT), "type": "group"}}
                    reply, ctype, status = json.dumps({"ok": True, "result": message}).encode(), "application/json", 200
                elif self.path.startswith("/slack/"):
                    reply, ctype, status = b"ok", "text/plain", 200
                else:
                    reply, ctype, status = b"", "text/plain", 204
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        super().__init__(ThreadingHTTPServer, Handler)
        self.base = f"http://{self.address}"

    def sent(self, prefix: str) -> list[Any]:
        return [body for path, body in self.requests if path.startswith(prefix)]


@pytest.fixture
def apis() -> Iterator[_PhoneApis]:
    a = _PhoneApis()
    yield a
    a.close()


def _start(tmp_path: Path, procs: Any, env: dict[str, str]) -> tuple[str, Path]:
    """compose's Alertmanager as the container runs it (render.sh renders, then execs the pinned binary), its route
    timers / FACTOR -> (its URL, its log)."""
    return start_rendered(tmp_path, procs, require_binary(ALERTMANAGER), env, FACTOR)


LABELS = {
    "alertname": "TradingPnLLossLimitBreached",
    "severity": "critical",
    "job": "desk",
    "strategy": "mm",
    "trading_mode": "paper",
}
SUMMARY = "P&L loss limit breached on desk by strategy mm: -2500.00 <limit -2000>"
TITLE = "TradingPnLLossLimitBreached (critical) desk strategy mm [paper]"
# one line per alert: its summary, then the labels that tell the alerts of a group apart
LINE_1 = f"• {SUMMARY} | instance host-1:9464 | symbol ESZ6"
LINE_2 = f"• {SUMMARY} | instance host-2:9464 | symbol NQZ6"
RUNBOOK = "https://docs.example.com/runbook.md#tradingpnllosslimitbreached"


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@pytest.mark.integration
def test_critical_alerts_and_their_resolution_reach_telegram_slack_and_discord(
    tmp_path: Path, procs: Any, apis: _PhoneApis
) -> None:
    """Two instances of a paper desk past the loss limit (one group: one message), then one of them back (the message
    says which fired on and which resolved), then the other (a RESOLVED message): what each service received."""
    secret_paths = {"slack": "/slack/T000/B000/SECRETslack", "discord": "/discord/api/webhooks/1/SECRETdiscord"}
    env = {
        "ALERT_WEBHOOK_URL": "http://127.0.0.1:9/unused",
        "ALERT_TELEGRAM_BOT_TOKEN": TOKEN,
        "ALERT_TELEGRAM_CHAT_ID": CHAT,
        "ALERT_TELEGRAM_API_URL": apis.base,
        "ALERT_SLACK_WEBHOOK_URL": apis.base + secret_paths["slack"],
        "ALERT_SLACK_CHANNEL": "#trading-alerts",
        "ALERT_DISCORD_WEBHOOK_URL": apis.base + secret_paths["discord"],
    }
    am, log = _start(tmp_path, procs, env)
    annotations = {"summary": SUMMARY, "runbook_url": RUNBOOK}
    alerts = [
        {"labels": {**LABELS, "instance": f"host-{n}:9464", "symbol": symbol}, "annotations": annotations}
        for n, symbol in ((1, "ESZ6"), (2, "NQZ6"))
    ]

    def post(*batch: dict[str, Any]) -> None:
        assert httpx.post(f"{am}/api/v2/alerts", json=list(batch), timeout=5).status_code == 200

    def messages(n: int) -> tuple[list[str], list[dict[str, Any]], list[dict[str, Any]]]:
        def got() -> bool:
            return all(len(apis.sent(p)) >= n for p in ("/bot", "/slack/", "/discord/"))

        wait_until(got, f"message {n} at each of Telegram, Slack and Discord", deadline_s=30)
        telegram = apis.sent("/bot")[n - 1]
        assert telegram["chat_id"] == CHAT
        assert telegram["parse_mode"] == "HTML"
        slack = apis.sent("/slack/")[n - 1]
        assert slack["channel"] == "#trading-alerts"
        (attachment,) = slack["attachments"]
        assert attachment["fallback"] == attachment["title"]
        (embed,) = apis.sent("/discord/")[n - 1]["embeds"]
        # Telegram: the title in bold, the body below it, each as the others have them
        assert telegram["text"] == f"<b>{_html(attachment['title'])}</b>\n{_html(attachment['text'])}"
        assert (embed["title"], embed["description"]) == (attachment["title"], attachment["text"])
        return telegram["text"], attachment, embed

    post(*alerts)
    telegram, slack, discord = messages(1)
    paths = {path for path, _ in apis.requests}
    assert paths == {f"/bot{TOKEN}/sendMessage", secret_paths["slack"], secret_paths["discord"]}, paths
    assert slack["title"] == f"🔥 [tradeobs FIRING:2] {TITLE}"
    assert slack["text"] == f"{LINE_1}\n{LINE_2}\nRunbook: {RUNBOOK}"
    # the summary's "&" and "<" escaped for Telegram's HTML parse mode (as sent, Telegram refuses the message)
    assert "P&amp;L" in telegram and "&lt;limit -2000&gt;" in telegram
    assert (slack["color"], discord["color"]) == ("danger", 0x992D22)  # Alertmanager's red

    post({**alerts[0], "endsAt": "2000-01-01T00:00:00Z"})
    telegram, slack, discord = messages(2)
    assert slack["title"] == f"🔥 [tradeobs FIRING:1] {TITLE}"
    assert slack["text"] == f"{LINE_2}\nResolved:\n{LINE_1}\nRunbook: {RUNBOOK}"

    post({**alerts[1], "endsAt": "2000-01-01T00:00:00Z"})
    telegram, slack, discord = messages(3)
    assert slack["title"] == f"✅ [tradeobs RESOLVED] {TITLE}"
    assert slack["text"] == f"{LINE_1}\n{LINE_2}\nRunbook: {RUNBOOK}"  # the whole group, now all resolved
    assert telegram.startswith(f"<b>✅ [tradeobs RESOLVED] {TITLE}</b>")
    assert (slack["color"], discord["color"]) == ("good", 0x2ECC71)  # and green

    for secret in ("SECRET", TOKEN.split(":")[1]):
        assert secret not in (tmp_path / "fast" / "alertmanager.yml").read_text()
        assert secret not in log.read_text()


@pytest.mark.integration
def test_the_bot_token_stays_out_of_the_log_when_telegram_cannot_be_reached(tmp_path: Path, procs: Any) -> None:
    """The token is in the Telegram API's URL (/bot<token>/sendMessage), and Alertmanager logs the URL when the API
    cannot be reached (a home line down, DNS failing): "Notify attempt failed ... Post \"https://api.telegram.org/
    bot123:AAE...\"". render.sh passes Alertmanager's log through a filter that redacts it."""
    env = {
        "ALERT_WEBHOOK_URL": "http://127.0.0.1:9/unused",
        "ALERT_TELEGRAM_BOT_TOKEN": TOKEN,
        "ALERT_TELEGRAM_CHAT_ID": CHAT,
        "ALERT_TELEGRAM_API_URL": f"http://127.0.0.1:{free_port()}",  # nothing listens there
    }
    am, log = _start(tmp_path, procs, env)
    alert = {"labels": LABELS, "annotations": {"summary": SUMMARY}}
    assert httpx.post(f"{am}/api/v2/alerts", json=[alert], timeout=5).status_code == 200
    failed = wait_until(
        lambda: [line for line in log.read_text().splitlines() if "integration=telegram" in line and "failed" in line],
        "Alertmanager to log the failed Telegram notification",
        deadline_s=30,
    )
    assert "/bot<redacted>/sendMessage" in failed[0], failed[0]
    assert TOKEN.split(":")[1] not in log.read_text()
