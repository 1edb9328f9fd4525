"""A FastAPI trading service that tries to leak every secret it knows, run by uvicorn in test_secret_canary.py.

Its environment holds the broker's key id and secret (``APCA_API_KEY_ID``, ``APCA_API_SECRET_KEY``, as a service
deployed with Alpaca has them), a database password under a secret-looking name (``DB_PASSWORD``), and, in
``CANARY_REGISTER`` (a JSON list), values the service registers itself (a bearer token, an account number), as it
would after reading them from a vault. ``GET /leak`` then puts every one of them everywhere a service might:
log messages and arguments, keyword arguments, ``extra``, exception messages and tracebacks, span attributes and
events, metric attributes, order rejects (metrics, spans, live events); the request itself carries them in headers
and in the query string. ``GET /boom`` raises with the secret in the message. The resource gets them through
``OTEL_RESOURCE_ATTRIBUTES`` (set by the test). ``GET /info`` says where the agent's own endpoints are.
"""

from __future__ import annotations

import json
import logging
import os

from fastapi import FastAPI, Request
from opentelemetry import _logs as otel_logs
from opentelemetry import trace

import tradeobs_agent
import tradeobs_agent.live

for value in json.loads(os.environ["CANARY_REGISTER"]):
    tradeobs_agent.register_secret(value)
agent = tradeobs_agent.init()
app = FastAPI()
tradeobs_agent.instrument_app(app)
app.mount("/telemetry", tradeobs_agent.live.create_app())

KEY_ID = os.environ["APCA_API_KEY_ID"]
SECRET = os.environ["APCA_API_SECRET_KEY"]
PASSWORD = os.environ["DB_PASSWORD"]
TOKEN, ACCOUNT = json.loads(os.environ["CANARY_REGISTER"])
log = tradeobs_agent.get_logger("execution")
plain = logging.getLogger("canary.service")  # an ordinary stdlib logger of the service
otel_log = otel_logs.get_logger("canary.otel")  # the OTel logs API, as an instrumentation library's events use it
requests = tradeobs_agent.counter("canary.requests", unit="{request}")
tt = tradeobs_agent.TradingTelemetry(strategy="canary", venue="alpaca-paper")
_orders = 0


@app.get("/info")
async def info() -> dict[str, str | None]:
    return {"prometheus": agent.prometheus_url, "pid": str(os.getpid())}


@app.get("/leak")
async def leak(request: Request) -> dict[str, str]:
    global _orders
    headers = dict(request.headers)
    # Log messages, arguments, keyword arguments and extra, on a stream logger and a plain one.
    log.info("broker header: %s", headers.get("apca-api-key-id"))
    log.info(f"connecting with secret {SECRET} for account {ACCOUNT}")
    log.info("login", password=PASSWORD, user="alice", token=TOKEN)
    log.warning("auth header was %s", headers.get("authorization"), extra={"note": f"acct {ACCOUNT} key {KEY_ID}"})
    plain.info("query %s and cookie %s", request.url.query, headers.get("cookie"))
    plain.error("raw values %s %s %s %s %s", KEY_ID, SECRET, PASSWORD, TOKEN, ACCOUNT)
    try:
        raise ValueError(f"broker refused key {KEY_ID} with secret {SECRET} (account {ACCOUNT})")
    except ValueError:
        log.exception("order rejected")
    # Nested maps and lists: in extra, and through the OTel logs API (attributes, body, event name), one of them
    # nested deeper than the agent looks into.
    deep: dict[str, object] = {"secret": SECRET}
    for _ in range(8):
        deep = {"next": deep}
    broker = {"auth": {"secret_key": SECRET, "token": TOKEN}, "acct": ACCOUNT, "venue": "alpaca"}
    plain.info("nested extra", extra={"broker": broker, "deep": deep, "argv": ["--password", PASSWORD]})
    otel_log.emit(
        body={"msg": "otel api", "order": {"broker": broker}, "deep": deep},
        attributes={"broker": broker, "deep": deep, "args": ["x", {"api_key": SECRET}, ["--password", PASSWORD]]},
        event_name=f"broker.login key={SECRET}",
    )
    # Span attributes and events on the request's span, and an exception event.
    span = trace.get_current_span()
    span.set_attribute("broker.key", KEY_ID)
    span.set_attribute("note", f"password is {PASSWORD}")
    span.set_attribute("account.number", int(ACCOUNT))
    span.set_attribute("order.ref", int(ACCOUNT))  # an account number as an int under a plain name
    span.add_event("auth", {"detail": f"Bearer {TOKEN}", "secret": SECRET})
    span.record_exception(RuntimeError(f"token {TOKEN} expired"))
    # Metric attributes, and an order whose reject reason holds the secret (metrics, spans, live events).
    requests.add(1, {"client": KEY_ID, "note": f"pw {PASSWORD}", "acct": ACCOUNT})
    _orders += 1
    order = tt.order_signal(f"canary-{_orders}", "AAPL", "buy", 1, 100.0)
    order.risk_check(passed=True)
    order.submitted()
    order.rejected(reason=f"invalid key {KEY_ID}/{SECRET}")
    return {"status": "ok"}


@app.get("/boom")
async def boom() -> None:
    raise RuntimeError(f"broker auth failed: key {KEY_ID} secret {SECRET} token {TOKEN}")
