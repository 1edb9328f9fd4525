"""A FastAPI service whose endpoint raises, run by uvicorn and gunicorn in tests/integration/test_server_errors.py.

The agent is set up from the environment (``agent_proc.agent_env``: the collector, the log directory), at
import, as a service does; ``GET /boom/{marker}`` raises ``RuntimeError("boom <marker>")``.
"""

from __future__ import annotations

from fastapi import FastAPI

import tradeobs_agent

tradeobs_agent.init()
app = FastAPI()
tradeobs_agent.instrument_app(app)


@app.get("/ok")
async def ok() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/boom/{marker}")
async def boom(marker: str) -> None:
    raise RuntimeError(f"boom {marker}")
