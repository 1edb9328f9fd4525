"""The smallest TCP proxy that makes a server slow: it accepts at once and delivers the answers late.

>>> with DelayingProxy("127.0.0.1", 4317) as proxy:      # doctest: +SKIP
...     proxy.delay = 3.0        # every chunk the server sends reaches the client 3 s later (in order)
...     agent_endpoint = proxy.endpoint

A fault injector for "collector slow" (a real collector behind it, a real gRPC connection through it): each
connection is piped both ways on an asyncio loop in a thread; what the client sends goes straight through, what
the server answers is held for ``delay`` seconds (changeable at any time) and then written, in order. No data is
changed or dropped. ``toxiproxy`` would do the same (its ``latency`` toxic); it is not packaged here.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time

from tests._util import free_port


class DelayingProxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.delay = 0.0
        self.connections = 0
        self.bytes_delayed = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._thread = threading.Thread(target=self._run, name="delaying-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the delaying proxy did not start")

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", self.port))
        self._ready.set()
        self._loop.run_forever()

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_r, up_w = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_w.close()
            return
        tasks = [
            asyncio.ensure_future(self._pipe(client_r, up_w, delayed=False)),
            asyncio.ensure_future(self._pipe(up_r, client_w, delayed=True)),
        ]
        for t in tasks:
            self._tasks.add(t)
            t.add_done_callback(self._tasks.discard)
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for t in tasks:
            t.cancel()
        for w in (client_w, up_w):
            w.close()

    async def _pipe(self, r: asyncio.StreamReader, w: asyncio.StreamWriter, delayed: bool) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def writer() -> None:
            while True:
                due, data = await queue.get()
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                w.write(data)
                await w.drain()
                queue.task_done()

        wt = asyncio.ensure_future(writer())
        try:
            while data := await r.read(65536):
                if delayed:
                    self.bytes_delayed += len(data)
                await queue.put((time.monotonic() + (self.delay if delayed else 0.0), data))
            await queue.join()  # the peer closed: deliver what is still held, then close
        except (ConnectionError, OSError):
            return  # a reset connection ends this pipe (and _handle closes the other side)
        finally:
            wt.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError, OSError):
                await wt

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            for t in list(self._tasks):
                t.cancel()
            await asyncio.sleep(0)

        if self._loop.is_running():
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def __enter__(self) -> DelayingProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
