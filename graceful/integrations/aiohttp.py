"""aiohttp under graceful.

.. code-block:: python

    from aiohttp import web
    from graceful.integrations import aiohttp as graceful_aiohttp

    async def main() -> None:
        await graceful_aiohttp.serve(app, host="0.0.0.0", port=8080)

``python -m graceful myapp:main`` then stops it cleanly: at the start of graceful's
sequence the open WebSockets are closed with 1012 (as uvicorn does; an app's own
``on_shutdown`` that closes them finds them closed), then ``runner.cleanup()`` runs in aiohttp's own order (sites stop accepting,
idle keep-alive connections close, the application's ``on_shutdown`` handlers
run, handlers are waited for, ``on_cleanup`` runs), and only then graceful's
hooks. In-flight requests get graceful's drain budget: aiohttp's own wait
(``shutdown_timeout``) is paid twice for a handler that does not finish (once
before and once after it cancels the request's payload), and the connection is
then closed without a response, so graceful waits for the handlers itself, in a
last ``on_shutdown`` handler, and answers the ones still running at the end of
the budget with 503 (a handler whose response has started, a stream or a
WebSocket, gets no second response: its connection is closed). Responses sent
once a stop has begun carry ``Connection: close``.
"""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING, Any

from .._health.readiness import state as readiness
from ._common import (
    CLOSE_CODE,
    CLOSE_REASON,
    CUT,
    cannot_listen,
    join,
    let_fresh_connections_speak,
    server_drain_timeout,
    tell_stream_libraries,
    wait_for_stop,
)
from ._listeners import close_listeners

if TYPE_CHECKING:
    from aiohttp import web

_AFTER_DRAIN = 0.5
"""aiohttp's own shutdown_timeout once graceful has drained the handlers (seconds)."""


async def serve(
    app: web.Application,
    *,
    host: str | None = None,
    port: int = 8080,
    reuse_port: bool | None = None,
    backlog: int = 128,
    **runner_kwargs: Any,
) -> None:
    """Serve ``app`` on ``host:port`` until graceful stops the process.

    ``runner_kwargs`` go to ``aiohttp.web.AppRunner`` (``access_log``, ...). Await it
    from ``main``. **Signals:** the runner installs no handlers; graceful's stop
    starts ``runner.cleanup()``. **Deadline:** in-flight requests get graceful's
    drain budget; those still running then are answered 503 and counted as cut.
    **Cancellation:** cancelling the awaiting task still runs the clean-up.
    """
    from aiohttp import web

    run = join()
    cutting = False
    # Responses a handler prepared itself (streams, WebSockets), by id of the request:
    # their status line is sent, so a cut must never answer with another one.
    started: dict[int, web.StreamResponse] = {}

    async def record_started(request: web.Request, response: web.StreamResponse) -> None:
        if type(response) is not web.Response:  # a plain Response is prepared by aiohttp
            started[id(request)] = response

    # One wrapper around the server's request handler does both jobs, and costs
    # little per request while the app runs: the requests in flight are found through
    # the connections when the time comes. Not a middleware: aiohttp's middleware
    # machinery (a cached chain of partials per route) cost 8 % of the CPU time of a
    # small request (benchmarks/bench_servers.py), the wrapper a third of that.
    inner: Any = None  # the server's own handler (the app's routing and middlewares)

    async def track(request: web.BaseRequest) -> web.StreamResponse:
        run.requests_in_flight += 1
        try:
            response: web.StreamResponse = await inner(request)
        except asyncio.CancelledError:
            if not cutting:
                raise
            run.note(CUT, 1)
            if id(request) in started:
                raise  # aiohttp closes the connection: the stream ends unfinished
            task = asyncio.current_task()
            if task is not None and sys.version_info >= (3, 11):
                task.uncancel()  # handled here: the connection goes on to answer
            return web.Response(
                status=503, text="service is shutting down\n", headers={"Connection": "close"}
            )
        finally:
            run.requests_in_flight -= 1
            if started:
                started.pop(id(request), None)
        if run.deadline is not None and not response.prepared:
            # A stop has begun: let keep-alive clients move on to another replica.
            response.headers["Connection"] = "close"
            response.force_close()
        return response

    def handling() -> list[asyncio.Task[Any]]:
        tasks = []
        server = runner.server
        for connection in server.connections if server is not None else ():
            request = getattr(connection, "_current_request", None)
            if request is not None and not request.task.done():
                tasks.append(request.task)
        return tasks

    async def drain_handlers(app: web.Application) -> None:
        # The last on_shutdown handler: the sites are closed and the app's own
        # on_shutdown handlers (websockets, ...) have run. Wait for the requests.
        nonlocal cutting
        pending = set(handling())
        if pending:
            await asyncio.wait(pending, timeout=server_drain_timeout(run))
        still = set(handling())
        if still:
            cutting = True
            for task in still:
                task.cancel()
            await asyncio.wait(still, timeout=_AFTER_DRAIN)

    app.on_response_prepare.append(record_started)
    app.on_shutdown.append(drain_handlers)
    runner = web.AppRunner(
        app, handle_signals=False, shutdown_timeout=_AFTER_DRAIN, **runner_kwargs
    )
    name = f"aiohttp {host or '0.0.0.0'}:{port}"
    websockets: list[asyncio.Future[None]] = []
    readiness.block(name, "aiohttp is starting")  # ready once the site listens
    await runner.setup()
    web_server = runner.server
    assert web_server is not None  # made by setup()
    # Server.request_handler: what each new connection calls for its requests (set
    # before the site listens, so every connection has the wrapper).
    inner, web_server.request_handler = web_server.request_handler, track
    try:
        site = web.TCPSite(runner, host, port, reuse_port=reuse_port, backlog=backlog)
        try:
            await site.start()
        except OSError as exc:  # a port in use: one line and exit 3, as on every server
            cannot_listen(run, "aiohttp", host, port, exc)
        readiness.unblock(name)
        forever = asyncio.get_running_loop().create_future()
        await wait_for_stop(run, forever)
        tell_stream_libraries()
        websockets = [
            asyncio.ensure_future(_close(each))
            for each in started.values()
            if isinstance(each, web.WebSocketResponse) and not each.closed
        ]
        # Take what the kernel already accepted before the sites close their listeners
        # (closing resets those), and let it hand over its requests before aiohttp
        # closes the connections it thinks idle.
        taken = []
        for each in runner.sites:
            listener = getattr(each, "_server", None)
            if listener is not None:
                taken += await close_listeners(listener, web_server)
        await let_fresh_connections_speak(
            run,
            taken,
            lambda: list(web_server.connections),
            lambda handler: getattr(handler, "_request_count", 1) == 0,  # no request yet
        )
    finally:
        readiness.unblock(name)
        await runner.cleanup()
        for closing in websockets:
            closing.cancel()


async def _close(ws: web.WebSocketResponse) -> None:
    """Close with graceful's code; the handler's ``receive()`` sees it and ends."""
    try:
        await ws.close(code=CLOSE_CODE, message=CLOSE_REASON.encode())
    except Exception:  # the client is gone meanwhile
        pass
