"""gunicorn's uvicorn worker with the HTTP bounds of the servers tradeobs runs.

    gunicorn -w 4 -k tradeobs_agent.live.worker.UvicornWorker 'app:create_app()'

uvicorn has no timeout for a request head, and gunicorn's ``--timeout`` is the worker's heartbeat, not a
connection's: under ``uvicorn_worker.UvicornWorker`` a connection that sends half a request and then nothing
(a stalled client, a slowloris attack) is held for as long as its client likes, an open file each, until the worker
accepts no one; and a live-stream client that stops reading is closed gracefully only (its buffers kept until the
client hangs up), since the live view cannot reach the worker's server to reset it. This class is the same worker
with :func:`tradeobs_agent.live.http_protocol` as its HTTP protocol: such connections are closed and counted in
``tradeobs.server.connections.closed`` by ``reason``, as under ``tradeobs demo`` (``docs/live.md``).

It subclasses the ``uvicorn-worker`` package's ``UvicornWorker`` (or, without that package, uvicorn's deprecated
``uvicorn.workers.UvicornWorker``); importing this module without either raises an ``ImportError`` naming the
package to install. Everything else (gunicorn's settings, the worker group, ``--max-requests``) is unchanged.
"""

from __future__ import annotations

import warnings
from typing import Any

from .app import http_protocol


def _uvicorn_worker() -> type[Any]:
    try:
        from uvicorn_worker import UvicornWorker as base
    except ImportError:
        try:
            with warnings.catch_warnings():  # uvicorn's own copy warns that it moved to uvicorn-worker
                warnings.simplefilter("ignore", DeprecationWarning)
                from uvicorn.workers import UvicornWorker as base  # type: ignore[no-redef]
        except ImportError as exc:
            raise ImportError(
                "tradeobs_agent.live.worker.UvicornWorker is a gunicorn worker class: it needs gunicorn and "
                "uvicorn's worker (pip install gunicorn uvicorn-worker)"
            ) from exc
    return base  # type: ignore[no-any-return]


_Base = _uvicorn_worker()


class UvicornWorker(_Base):  # type: ignore[misc,valid-type]
    """``uvicorn_worker.UvicornWorker`` serving with :func:`tradeobs_agent.live.http_protocol`."""

    CONFIG_KWARGS: dict[str, Any] = {**_Base.CONFIG_KWARGS, "http": http_protocol()}
