"""Secrets the agent was never told about leave the process nowhere, when the text around them says what they are.

``test_secret_canary.py`` covers secrets the agent knows (the broker's environment, ``register_secret``): those are
masked wherever they appear. Here the service (``unknown_secrets_app.py`` under a real uvicorn) holds fresh random
secrets it never registers, and writes them as a user would by accident: a dict or a dataclass with a ``password``
as a log argument, ``Bearer`` + a token in one case, a query string or form body URL-encoded into a log line,
``curl -u``, a ``redis://:password@`` URL, a quoted passphrase with spaces, span attributes, an order's exception and
reject reason, metric attributes (an SDK instrument's too, on the agent's ``/metrics``), ``Authorization: Token``
and ``invalid API key:`` in messages, a secret bare after its key word in a sentence (``signing with secret
...``, ``password ...``, in a message, a span event, a span link and an exception), the request's ``?api_key=``, its
``Authorization`` header and headers named for a key or a signature (``Ocp-Apim-Subscription-Key``,
``CB-ACCESS-SIGN``), captured, the resource
(``OTEL_RESOURCE_ATTRIBUTES``); secrets in URLs with no key word before them, as real clients echo them (httpx's
``HTTPStatusError`` for a ``?apitoken=`` URL, requests' ``ConnectionError`` for a Telegram bot's ``/bot<token>/``
path, a Slack webhook, a DSN whose password has a ``/``) and a webhook receiver's ``POST /webhook/<token>``.
The agent exports to our collector WITHOUT its redaction processors, so what the collector writes is what left the
agent; every output (the collector's files, Prometheus page and debug output, the agent's log files, trace file and
``/metrics``, the live stream, ``/snapshot`` and ``/history``, uvicorn's output) is searched for each secret
and its URL-encoded forms, and must hold the records that carried them.
"""

from __future__ import annotations

import json
import secrets
import string
import sys
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tradeobs_agent.live import auth

from .agent_proc import agent_env, unique_service
from .procs import READY_TIMEOUT, ManagedProcess, free_port, http_get, read_otlp_json_logs, start_collector, wait_for
from .test_secret_canary import (
    _attrs,
    _files_text,
    _request,
    _spans,
    _stream,
    coll_dir,
    find_leaks,
    forms,
    unredacted_config,
)

pytestmark = pytest.mark.integration

HERE = Path(__file__).resolve().parent
NAMES = (
    "dict password", "object password", "dict api key", "encoded api key", "encoded password", "curl password",
    "redis password", "span url password", "span curl password", "order exception key", "reject token",
    "metric label key", "metric label value", "query api key", "resource url password", "captured api key header",
    "captured cookie", "captured subscription key header", "captured signature header", "token scheme key",
    "spaced api key", "sdk metric label key", "sdk metric label value",
)  # fmt: skip


def unknown_secrets() -> dict[str, str]:
    alnum = string.ascii_letters + string.digits
    out = {name: "u" + "".join(secrets.choice(alnum) for _ in range(20)) for name in NAMES}
    # a token in one case, as an opaque token can be (no digit, no case change: not caught before)
    out["single-case bearer"] = "".join(secrets.choice(string.ascii_lowercase) for _ in range(24))
    out["header bearer"] = "".join(secrets.choice(string.ascii_lowercase) for _ in range(24))
    words = ["".join(secrets.choice(string.ascii_lowercase) for _ in range(9)) for _ in range(3)]
    out["spaced passphrase"] = " ".join(words)
    upper = string.ascii_uppercase + string.digits
    out["bare alpaca key id"] = "PK" + "".join(secrets.choice(upper) for _ in range(18))  # Alpaca's key id shape
    # bare after their key word in a sentence, no ":" or "=" (hex, as a Binance or Alpaca secret can be: a letter
    # stands next to a digit, which tells it from a word)
    for name in (
        "prose secret",
        "prose password",
        "prose span token",
        "prose exception key",
        "link password",
        "link key",
    ):
        out[name] = secrets.token_hex(20)
    for name in ("ws auth key", "ws auth secret", "ws auth key extra"):
        out[name] = "w" + "".join(secrets.choice(alnum) for _ in range(20))
    # in URLs, with no key word before them: a Telegram bot token, a webhook's path token, a query parameter whose
    # name is one word ending in "token", a Slack webhook's secret, a DSN's password with a "/" in it ("h7", "9/":
    # a letter next to a digit, which tells a token from a word, whatever the random rest)
    out["telegram token"] = f"{secrets.randbelow(10**9) + 10**9}:AA" + "".join(secrets.choice(alnum) for _ in range(33))
    out["webhook path token"] = "h7" + "".join(secrets.choice(alnum) for _ in range(30))
    out["httpx apitoken"] = "u" + "".join(secrets.choice(alnum) for _ in range(20))
    out["slack hook"] = "".join(secrets.choice(alnum) for _ in range(24))
    out["dsn slash password"] = "aB9/" + "".join(secrets.choice(alnum) for _ in range(12)) + "=="
    return out


def _forms(value: str) -> set[str]:
    out = set(forms(value))
    if " " in value:  # a passphrase: none of its words either
        out |= set(value.split())
    return out


def test_unknown_secrets_with_a_hint_leave_the_process_nowhere(tmp_path: Path) -> None:
    s = unknown_secrets()
    coll = tmp_path / "collector"
    coll.mkdir()
    with start_collector(coll, "127.0.0.1:1", config=unredacted_config(coll)) as collector:
        service = unique_service("unknown")
        port = free_port()
        env = agent_env(collector, tmp_path, service)
        resource_url = urllib.parse.quote(f"postgres://bot:{s['resource url password']}@db/x", safe="")
        env.update(
            {
                "UNKNOWN_SECRETS": json.dumps(s),
                "TRADEOBS_LIVE_TOKEN": "live_" + secrets.token_hex(16),
                "TRADEOBS_TRACES_FILE": str(tmp_path / "tracefile" / "traces.jsonl"),
                "OTEL_RESOURCE_ATTRIBUTES": f"db.url={resource_url},team=execution",
                # request headers on the request's span, as a user debugging auth turns it on
                "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST": (
                    "authorization,x-mbx-apikey,cookie,x-desk,ocp-apim-subscription-key,cb-access-sign"
                ),
            }
        )
        argv = [sys.executable, "-m", "uvicorn", "unknown_secrets_app:app", "--app-dir", str(HERE),
                "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
        proc = ManagedProcess("unknown", argv, env, tmp_path)
        base = f"http://127.0.0.1:{port}"
        outputs: dict[str, str] = {}
        try:
            wait_for(lambda: _request(f"{base}/info")[0] == 200, "the service", READY_TIMEOUT, procs=(proc,))
            prometheus_url = json.loads(_request(f"{base}/info")[1])["prometheus"]
            headers = {
                "Authorization": f"Bearer {s['header bearer']}",
                "X-MBX-APIKEY": s["captured api key header"],
                "Cookie": f"session={s['captured cookie']}",
                "X-Desk": "equities",
                "Ocp-Apim-Subscription-Key": s["captured subscription key header"],
                "CB-ACCESS-SIGN": s["captured signature header"],
            }
            for _ in range(2):
                assert _request(f"{base}/leak?api_key={s['query api key']}&symbol=AAPL", headers)[0] == 200
            hook = urllib.request.Request(f"{base}/webhook/{s['webhook path token']}", data=b"{}", method="POST")
            with urllib.request.urlopen(hook, timeout=10) as resp:
                assert resp.status == 200
            live = {"Authorization": f"Bearer {auth.make_token(env['TRADEOBS_LIVE_TOKEN'], ttl=300)}"}

            def history() -> str | None:
                status, body = _request(f"{base}/telemetry/history", live)
                return body.decode() if status == 200 and '"kind":"reject"' in body.decode() else None

            outputs["live /history"] = wait_for(history, "the reject in the live history", procs=(proc,))
            assert '"cid-1-b"' in outputs["live /history"]  # order ids are kept
            status, body = _request(f"{base}/telemetry/snapshot", live)
            assert status == 200
            outputs["live /snapshot"] = body.decode()
            outputs["live /stream"] = _stream(f"{base}/telemetry/stream", live["Authorization"][7:], 2.5).decode()

            def collector_logs() -> list[dict[str, Any]] | None:
                recs = read_otlp_json_logs(collector.logs_file)
                recs = [r for r in recs if r["_resource"].get("service.name") == service]
                return recs if sum("passphrase" in str(r.get("body")) for r in recs) >= 2 else None

            logs = wait_for(collector_logs, "the service's log records in the collector's file", procs=(proc,))
            assert logs[0]["_resource"]["team"] == "execution"
            spans = wait_for(
                lambda: [x for x in _spans(coll / "traces.jsonl") if x["name"] == "GET /leak"],
                "the /leak span", procs=(proc,),
            )  # fmt: skip
            attrs = _attrs(spans[0]["attributes"])
            assert "equities" in str(attrs["http.request.header.x_desk"])  # the headers were captured

            def scraped() -> str | None:
                status, body = http_get(f"{collector.prometheus_exporter_url}/metrics")
                text = body.decode()
                return text if status == 200 and "unknown_calls" in text else None

            outputs["collector prometheus page"] = wait_for(scraped, "the service's metrics on the collector's page")
            status, body = http_get(prometheus_url)
            assert status == 200
            outputs["agent /metrics"] = body.decode()
            assert "unknown_calls" in outputs["agent /metrics"]
        finally:
            proc.stop()
        outputs["service output (uvicorn)"] = proc.log_path.read_text(errors="replace")
        collector.stop()
    for path, text in _files_text(coll_dir(collector)).items():
        if not path.endswith(".yaml"):
            outputs[f"collector wrote {path}"] = text
    for path, text in {**_files_text(tmp_path / "logs"), **_files_text(tmp_path / "tracefile")}.items():
        outputs[f"agent wrote {path}"] = text
    assert any("broker config" in t for k, t in outputs.items() if "agent wrote" in k)
    written = "".join(t for k, t in outputs.items() if "agent wrote" in k)
    assert "ws send" in written and "API key [REDACTED] rejected" in written
    assert "fill side_sign: -1 pos-sign: long order_id=ORD-20240102-000123" in written  # trading fields kept
    assert "telegram alert failed" in written and "/bot" in written and "alert received via" in written
    leaks = find_leaks(s, _forms, outputs)
    assert not leaks, f"{len(leaks)} leaks:\n" + "\n".join(sorted(set(leaks)))
