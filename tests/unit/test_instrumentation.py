"""instrument_app: one server span per request, W3C traceparent continued, health URLs excluded."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI, HTTPException
from opentelemetry import trace
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


async def test_a_starlette_apps_server_spans_are_named_by_the_route_template_through_mounts() -> None:
    from starlette.routing import Mount

    with capture() as cap:

        async def hello(request: object) -> PlainTextResponse:
            return PlainTextResponse("hi")

        inner = [Route("/items/{item_id}", hello, methods=["GET"])]
        app = Starlette(routes=[Route("/orders/{oid}", hello), Mount("/admin", routes=inner)])
        tradeobs_agent.instrument_app(app)
        for path in ("/orders/o-1", "/admin/items/i-1", "/nowhere/x-1"):
            await _get(app, path)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            assert (await client.post("/admin/items/i-2")).status_code == 405  # the path matches, the method not
        servers = [(s.name, (s.attributes or {}).get("http.route")) for s in cap.spans() if s.kind.name == "SERVER"]
        assert servers == [
            ("GET /orders/{oid}", "/orders/{oid}"),
            ("GET /admin/items/{item_id}", "/admin/items/{item_id}"),
            ("GET", None),
            ("POST /admin/items/{item_id}", "/admin/items/{item_id}"),
        ]


async def test_a_fastapi_app_mounted_in_the_instrumented_one_is_named_by_its_routes_template() -> None:
    with capture() as cap:
        app, admin = FastAPI(), FastAPI()

        @app.get("/orders/{oid}")
        async def get_order(oid: str) -> dict[str, str]:
            return {"oid": oid}

        @admin.get("/items/{item_id}")
        async def item(item_id: str) -> dict[str, str]:
            return {"item": item_id}

        app.mount("/admin", admin)
        tradeobs_agent.instrument_app(app)
        for path in ("/orders/o-1", "/admin/items/i-1", "/admin/nowhere"):
            await _get(app, path)
        servers = [(s.name, (s.attributes or {}).get("http.route")) for s in cap.spans() if s.kind.name == "SERVER"]
        assert servers == [
            ("GET /orders/{oid}", "/orders/{oid}"),
            ("GET /admin/items/{item_id}", "/admin/items/{item_id}"),
            ("GET /admin", "/admin"),  # nothing matched inside the mount: the mount's path, as before
        ]


async def _raise_through(app: object, path: str) -> RuntimeError:
    """The exception the app lets out, as the ASGI server (uvicorn's ``run_asgi``) gets it."""
    try:
        await _get(app, path, {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"})
    except RuntimeError as exc:
        return exc
    raise AssertionError("the request did not raise")


async def test_an_exception_leaving_a_request_carries_the_request_span_to_the_servers_log(tmp_path: Path) -> None:
    """What uvicorn logs after the request's span ended ("Exception in ASGI application") is on the request's
    trace: instrument_app notes the span on the exception inside the request (tests/integration: the servers)."""
    with capture(logs=tradeobs_agent.LogOptions(dir=str(tmp_path))) as cap:
        app = FastAPI()

        @app.get("/boom")
        async def boom() -> None:
            raise RuntimeError("boom-fastapi")

        @app.get("/missing")
        async def missing() -> None:
            raise HTTPException(status_code=404)

        async def star_boom(request: object) -> PlainTextResponse:
            raise RuntimeError("boom-starlette")

        star = Starlette(routes=[Route("/boom", star_boom)])
        tradeobs_agent.instrument_app(app)
        tradeobs_agent.instrument_app(star)
        assert (await _get(app, "/missing")).status_code == 404  # handled: nothing escapes, nothing noted
        server_log = logging.getLogger("uvicorn.error")  # the logger uvicorn's run_asgi logs on
        for a in (app, star):
            exc = await _raise_through(a, "/boom")
            assert trace.get_current_span().get_span_context().is_valid is False  # the span is over
            server_log.error("Exception in ASGI application\n", exc_info=exc)
        failed = [s for s in cap.spans() if s.kind.name == "SERVER" and s.status.status_code.name == "ERROR"]
        records = [r.log_record for r in cap.logs() if r.log_record.body == "Exception in ASGI application\n"]
        lines = [json.loads(x) for x in (tmp_path / "service.jsonl").read_text().splitlines()]
        lines = [x for x in lines if x["message"] == "Exception in ASGI application\n"]
    assert len(records) == 2 and len(lines) == 2
    for rec, line, marker in zip(records, lines, ("boom-fastapi", "boom-starlette"), strict=True):
        assert format(rec.trace_id, "032x") == TRACE_ID and line["trace_id"] == TRACE_ID
        assert f"RuntimeError: {marker}" in line["exception.stacktrace"]
        assert line["span_id"] == format(rec.span_id, "016x")
    # The span id is each request's server span (the one Jaeger shows for the request).
    assert sorted(r.span_id for r in records) == sorted(s.context.span_id for s in failed)


_HTTP_SCRIPT = """
import asyncio, json, sys
import httpx
import pytest
from fastapi import FastAPI
import tradeobs_agent
from tradeobs_agent import live
from tradeobs_agent.testing import capture

async def main():
    with capture() as cap:
        app = FastAPI()

        @app.get("/positions")
        async def positions():
            return {"AAPL": 10}

        @app.get("/health")
        async def health():
            return {"ok": True}

        app.mount("/live", live.create_app())
        tradeobs_agent.instrument_app(app)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            for i in range(50):  # made-up Host headers, as any client may send
                await client.get("/positions", headers={"host": f"h{i}.attacker.example"})
            await client.get("/health")
            await client.get("/live/snapshot")
        spans = [s for s in cap.spans()]
        metrics = {}
        for rm in cap.metric_reader.get_metrics_data().resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    if m.name.startswith("http.server"):
                        metrics[m.name] = {
                            "unit": m.unit,
                            "points": [dict(p.attributes) for p in m.data.data_points],
                            "bounds": [
                                list(p.explicit_bounds) for p in m.data.data_points if hasattr(p, "explicit_bounds")
                            ],
                            "counts": [p.count for p in m.data.data_points if hasattr(p, "count")],
                        }
        print(json.dumps({"spans": [s.name for s in spans], "metrics": metrics}))

asyncio.run(main())
"""


def test_http_metrics_are_bounded_in_seconds_and_leave_out_health_the_live_view_and_per_message_spans() -> None:
    """A user's review: a client's Host header made a series of each HTTP metric (2,001 per instrument, then real
    traffic went to an unlabelled overflow series); the duration was whole milliseconds with buckets from 5 ms (an
    order-entry API's requests all in the first), which promtool refused; GET /health was traced; the live view
    mounted elsewhere than /telemetry was one request per client lasting as long as it stayed open, with a span per
    frame; every request had two or three 'http send'/'http receive' spans. A process of its own: the HTTP
    conventions are chosen once per process."""
    import subprocess
    import sys

    from tradeobs_agent.metrics import DEFAULT_LATENCY_BOUNDS

    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith(("TRADEOBS_", "OTEL_"))}
    proc = subprocess.run([sys.executable, "-c", _HTTP_SCRIPT], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["spans"] == ["GET /positions"] * 50, out["spans"]
    duration = out["metrics"]["http.server.request.duration"]
    assert duration["unit"] == "s"
    assert duration["counts"] == [50]  # one series: the Host headers made none
    assert duration["bounds"] == [list(DEFAULT_LATENCY_BOUNDS)]
    [attrs] = duration["points"]
    assert attrs["http.route"] == "/positions" and attrs["http.request.method"] == "GET"
    assert not any(k.startswith("server.") or "host" in k or "server_name" in k for k in attrs), attrs
    for name, m in out["metrics"].items():
        for a in m["points"]:
            assert not any("attacker" in str(v) for v in a.values()), (name, a)


async def test_an_app_instrumented_by_opentelemetry_instrument_gets_the_agents_settings() -> None:
    """Under ``opentelemetry-instrument`` every ``FastAPI()`` is instrumented when it is made (the same
    ``FastAPIInstrumentor().instrument()`` its entry point runs, here in the test): ``instrument_app`` was refused
    ("Attempting to instrument FastAPI app while already instrumented"), so /metrics and the health URLs were traced
    and each request had its per-message "http send" spans. The app is instrumented again with the agent's
    settings."""
    import fastapi
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    instrumentor = FastAPIInstrumentor()
    instrumentor.instrument()
    try:
        with capture() as cap:
            app = fastapi.FastAPI()

            @app.get("/orders/{oid}")
            async def get_order(oid: str) -> dict[str, str]:
                return {"oid": oid}

            @app.get("/metrics")
            async def metrics() -> str:
                return ""

            tradeobs_agent.instrument_app(app)
            assert (await _get(app, "/orders/o-1")).status_code == 200
            assert (await _get(app, "/metrics")).status_code == 200
            assert [s.name for s in cap.spans()] == ["GET /orders/{oid}"]
    finally:
        instrumentor.uninstrument()


async def test_instrument_app_twice_on_an_instrumented_app_keeps_one_span_and_one_middleware(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """FastAPIInstrumentor applied by the application, then instrument_app() twice (an app factory called twice, a
    library and the service): one server span per request as before, but each call added another
    RememberRequestSpan middleware, and the second call said the app had been instrumented by
    "opentelemetry-instrument, or FastAPIInstrumentor" when it was the agent."""
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    from tradeobs_agent.instrumentation import RememberRequestSpan

    with capture() as cap:
        app = FastAPI()

        @app.get("/orders/{oid}")
        async def get_order(oid: str) -> dict[str, str]:
            return {"oid": oid}

        FastAPIInstrumentor.instrument_app(app)
        with caplog.at_level(logging.INFO, logger="tradeobs"):
            tradeobs_agent.instrument_app(app)
            tradeobs_agent.instrument_app(app)
        assert (await _get(app, "/orders/o-1")).status_code == 200
        assert [s.name for s in cap.spans()] == ["GET /orders/{oid}"]
    assert [m.cls for m in app.user_middleware].count(RememberRequestSpan) == 1
    said = [r.getMessage() for r in caplog.records if "instrument_app()" in r.getMessage()]
    assert len(said) == 2 and "FastAPIInstrumentor" in said[0] and "called again on this app" in said[1], said
