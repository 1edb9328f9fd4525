"""An ASGI app that tells whether its uvicorn server has begun to stop, as the worker group sees it
(``detect.server_leaving``): its answers to requests, and a line per lifespan event appended to the file
``LEAVING_LOG`` (``startup serving``, then ``shutdown leaving``). Used by test_multiworker_shared.py."""

from __future__ import annotations

import os
from typing import Any

from tradeobs_agent._internal.workers.detect import server_leaving


def _state() -> str:
    return "leaving" if server_leaving() else "serving"


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            kind = message["type"].removeprefix("lifespan.")
            with open(os.environ["LEAVING_LOG"], "a") as f:
                f.write(f"{kind} {_state()}\n")
            await send({"type": f"lifespan.{kind}.complete"})
            if kind == "shutdown":
                return
    body = _state().encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})
