"""instrument_app: one server span per request, W3C traceparent continued, health URLs excluded."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

import tradeobs_agent
from tradeobs_agent.testing import capture

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


async def _get(app: object, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get(path, headers=headers or {})


async def test_fastapi_request_continues_w3c_traceparent() -> None:
    with capture() as cap:
        app = FastAPI()

        @app.get("/orders/{oid}")
        async def get_order(oid: str) -> dict[str, str]:
            return {"oid": oid}

        @app.get("/healthz")
        async def healthz() -> dict[str, str]:
            return {"status": "ok"}

        tradeobs_agent.instrument_app(app)
        r = await _get(app, "/orders/o-1", {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"})
        assert r.status_code == 200
        await _get(app, "/healthz")
        servers = [s for s in cap.spans() if s.kind.name == "SERVER"]
        assert len(servers) == 1, [s.name for s in servers]  # /healthz is excluded
        span = servers[0]
        assert format(span.context.trace_id, "032x") == TRACE_ID
        assert span.parent is not None and format(span.parent.span_id, "016x") == PARENT_ID
        assert span.resource.attributes["service.name"] == "test-service"


async def test_plain_starlette_app_is_instrumented_too() -> None:
    with capture() as cap:

        async def hello(request: object) -> PlainTextResponse:
            return PlainTextResponse("hi")

        app = Starlette(routes=[Route("/hello", hello), Route("/metrics", hello)])
        tradeobs_agent.instrument_app(app)
        await _get(app, "/hello", {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"})
        await _get(app, "/metrics")
        servers = [s for s in cap.spans() if s.kind.name == "SERVER"]
        assert len(servers) == 1
        assert format(servers[0].context.trace_id, "032x") == TRACE_ID
