"""A FastAPI trading service leaking secrets the agent was NEVER told about, run by uvicorn in
test_unknown_secrets.py: only the text around each secret (a key name, ``Bearer``, ``curl -u``, ``user:pass@``,
their URL-encoded forms) can give it away. ``UNKNOWN_SECRETS`` (JSON) holds them; ``GET /leak`` puts them in log
arguments (a dict, an object's repr), span attributes, an order's exception and reject reason, metric attributes;
the request carries one in its query string and a single-case bearer token in its ``Authorization`` header.
``GET /info`` says where the agent's Prometheus page is."""

from __future__ import annotations

import json
import logging
import os
import urllib.parse
from dataclasses import dataclass

import httpx
import requests
from fastapi import FastAPI, Request
from opentelemetry import metrics, trace

import tradeobs_agent
import tradeobs_agent.live

S = json.loads(os.environ["UNKNOWN_SECRETS"])
agent = tradeobs_agent.init()
app = FastAPI()
tradeobs_agent.instrument_app(app)
app.mount("/telemetry", tradeobs_agent.live.create_app())
log = tradeobs_agent.get_logger("execution")
plain = logging.getLogger("unknown.service")
calls = tradeobs_agent.counter("unknown.calls", unit="{call}")
sdk_calls = metrics.get_meter("unknown.sdk").create_counter("unknown.sdk.calls")
tt = tradeobs_agent.TradingTelemetry(strategy="momentum", venue="alpaca-paper")
_orders = 0


@dataclass
class BrokerConfig:
    user: str
    password: str


@app.get("/info")
async def info() -> dict[str, str | None]:
    return {"prometheus": agent.prometheus_url}


@app.post("/webhook/{token}")
async def webhook(token: str, request: Request) -> dict[str, str]:
    """A TradingView alert's receiver: the token is the path (uvicorn's access log, the span's url.path)."""
    log.info("alert received via %s", request.url)
    return {"status": "ok"}


@app.get("/leak")
async def leak(request: Request) -> dict[str, str]:
    global _orders
    # secrets in URLs with no key word before them, as the client libraries' exceptions echo them
    try:
        async with httpx.AsyncClient() as client:  # a 404 from this service itself: httpx puts the URL in the message
            url = f"http://127.0.0.1:{request.url.port}/nowhere?symbol=AAPL&apitoken={S['httpx apitoken']}"
            (await client.get(url)).raise_for_status()
    except httpx.HTTPStatusError:
        plain.exception("quote fetch failed")
    try:  # nothing listens on port 1: requests' ConnectionError names the URL's path
        requests.post(f"http://127.0.0.1:1/bot{S['telegram token']}/sendMessage", json={"text": "filled"}, timeout=2)
    except requests.RequestException:
        log.exception("telegram alert failed")
    log.warning("slack alert to https://hooks.slack.com/services/T0ABCDEFG/B0HIJKLMN/%s failed", S["slack hook"])
    try:
        raise ConnectionError(f"could not connect to postgresql://trader:{S['dsn slash password']}@db:5432/orders")
    except ConnectionError:
        log.exception("database down")
    log.info("broker config %s", {"user": "bob", "password": S["dict password"]})
    log.info("broker config %r", BrokerConfig("bob", S["object password"]))
    plain.info("connecting %s", {"api_key": S["dict api key"], "symbol": "AAPL"})
    log.info("retrying with Bearer %s", S["single-case bearer"])
    log.info("fetch %s", "https://api.example/v2/q?x=1&r=" + urllib.parse.quote(f"api_key={S['encoded api key']}"))
    log.info("form body %s", urllib.parse.urlencode({"q": f"password={S['encoded password']}"}))
    log.info("ran: curl -u bob:%s https://broker.example/v2", S["curl password"])
    log.info("cache at redis://:%s@cache:6379/0", S["redis password"])
    log.info('settings passphrase="%s"', S["spaced passphrase"])
    log.warning("GET /tiingo/daily/aapl/prices Authorization: Token %s -> 401", S["token scheme key"])
    plain.error("broker said: invalid API key: %s", S["spaced api key"])
    plain.error("API key %s rejected", S["bare alpaca key id"])  # no "=" or ":": only its shape says it
    # a trade's sign fields, named as a signing header is: kept
    log.info("fill side_sign: -1 pos-sign: long order_id=ORD-20240102-000123")
    # bare after their key word in a sentence: no "=" or ":"
    plain.error("order feed: signing with secret %s failed", S["prose secret"])
    log.warning("login with password %s refused", S["prose password"])
    try:
        raise ConnectionError(f"401 Unauthorized: api key {S['prose exception key']} is not valid")
    except ConnectionError:
        log.exception("broker call failed")
    # Alpaca's websocket auth message, logged as a dict and passed as one ("key" alone is no secret name)
    log.info("ws send %s", {"action": "auth", "key": S["ws auth key"], "secret": S["ws auth secret"]})
    log.info("ws send", extra={"msg": {"action": "auth", "key": S["ws auth key extra"], "secret": "x" * 12}})
    span = trace.get_current_span()
    span.add_event("broker.auth", {"note": f"session token {S['prose span token']} rejected"})
    # a link's attributes: the agent scrubs them as a span's (the collector cannot reach them: docs/collector.md)
    link = trace.Link(span.get_span_context(), {"password": S["link password"], "note": f"api key {S['link key']}"})
    with trace.get_tracer("unknown.links").start_as_current_span("leak.linked", links=[link]):
        pass
    span.set_attribute("db.conn", f"postgresql://bot:{S['span url password']}@db:5432/trades")
    span.set_attribute("cmd", f"curl --user bot:{S['span curl password']} https://x")
    _orders += 1
    order = tt.order_signal(f"cid-{_orders}", "AAPL", "buy", 10, 187.25)
    order.submitted()
    try:
        raise PermissionError(f"401 from https://broker.example/v2/orders?api_key={S['order exception key']}")
    except PermissionError as exc:
        order.error(exc)
    order2 = tt.order_signal(f"cid-{_orders}-b", "MSFT", "sell", 5, 410.5)
    order2.submitted()
    order2.rejected(reason=f"broker: invalid token={S['reject token']}")
    calls.add(1, {"api_key": S["metric label key"], "endpoint": f"/v2/account?apikey={S['metric label value']}"})
    # an SDK instrument (as an instrumentation library's): on the agent's own /metrics through the OTel reader
    sdk_calls.add(1, {"api_key": S["sdk metric label key"], "note": f"password={S['sdk metric label value']}"})
    return {"status": "ok"}
