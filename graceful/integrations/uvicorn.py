"""uvicorn under graceful.

.. code-block:: python

    from graceful.integrations import uvicorn as graceful_uvicorn

    async def main() -> None:
        await graceful_uvicorn.serve(app, host="0.0.0.0", port=8000)

``python -m graceful myapp:main`` then stops it cleanly. What it changes in
uvicorn: its own signal handling is switched off (``Server.serve()`` would
otherwise take SIGTERM and SIGINT from graceful for as long as it runs); at the
start of graceful's sequence the open WebSockets are closed (1012),
``timeout_graceful_shutdown`` is set from graceful's drain budget and uvicorn's
``handle_exit`` is called as its signal handler would be (so sse-starlette ends its
streams), so uvicorn closes its listeners, finishes in-flight requests (responses
carry ``Connection: close``), runs the ASGI lifespan shutdown, and returns, all
before graceful's hooks.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Any

from .._health.readiness import state as readiness
from ._common import (
    EXIT_CANNOT_LISTEN,
    TrackRequests,
    cannot_listen,
    join,
    let_fresh_connections_speak,
    server_drain_timeout,
    wait_for_stop,
)
from ._listeners import close_listeners

_UVICORN_DELAYS = 0.2
"""uvicorn looks at ``should_exit`` every 0.1 s, then sleeps 0.1 s before it waits for
its connections: time its drain timeout does not count."""


async def serve(app: Any, **config: Any) -> None:
    """Serve ``app`` (an ASGI app, an import string, or a ``uvicorn.Config``) until
    graceful stops the process; ``config`` are ``uvicorn.Config`` keyword arguments.

    Await it from ``main``. **Signals:** uvicorn's own handlers are not installed;
    graceful's stop (signal, ``request_shutdown()``) starts uvicorn's graceful
    shutdown. **Deadline:** in-flight requests get graceful's drain budget; those
    still running then are answered 503 and counted as cut. **Cancellation:**
    cancelling the awaiting task forces uvicorn to exit at once.
    """
    import uvicorn

    from .._errors import UsageError

    if isinstance(app, uvicorn.Config):
        if config:
            raise UsageError(
                "serve() takes either a uvicorn.Config or keyword arguments for one, not both;"
                f" move {sorted(config)} into the Config"
            )
        cfg = app
    else:
        cfg = uvicorn.Config(app, **config)
    run = join()
    if not cfg.loaded:
        cfg.load()
    cfg.loaded_app = tracked = TrackRequests(cfg.loaded_app, run)
    server = uvicorn.Server(cfg)
    _switch_off_signal_handling(server)
    _accept_the_backlog_first(server, run)
    _ready_once_listening(server)
    serving = asyncio.ensure_future(_serve(server))
    closer = asyncio.ensure_future(_close_keep_alive_at_the_stop(run, server))
    websockets: asyncio.Future[None] | None = None
    try:
        if await wait_for_stop(run, serving):
            # typed int | None, but uvicorn passes it to asyncio.wait_for: a float is fine
            cfg.timeout_graceful_shutdown = max(  # type: ignore[assignment]
                0.0, server_drain_timeout(run) - _UVICORN_DELAYS
            )
            websockets = asyncio.ensure_future(tracked.close_websockets())
            # uvicorn's own stop API, as its signal handler would call it: libraries that
            # watch it (sse-starlette ends its streams) see the stop as under uvicorn alone.
            server.handle_exit(signal.SIGTERM, None)
        code = await asyncio.shield(serving)
    except asyncio.CancelledError:
        server.force_exit = True
        serving.cancel()
        raise
    finally:
        closer.cancel()
        if websockets is not None:
            websockets.cancel()
    if code is not None:
        if code == EXIT_CANNOT_LISTEN and cfg.port == run.config.health_port and cfg.port:
            # uvicorn said it could not bind; say whose port it is.
            cannot_listen(run, "uvicorn", cfg.host, cfg.port, OSError("address already in use"))
        raise SystemExit(code)  # uvicorn's own exit (e.g. port in use): main's exit code


async def _close_keep_alive_at_the_stop(run: Any, server: Any) -> None:
    """At the first instant of a stop (drain delay included), the requests in flight
    answer with ``Connection: close`` and close their connection, so keep-alive
    clients move to another replica (uvicorn's cycles take their default headers
    when the response starts). Requests that begin after it get the header from
    ``TrackRequests``."""
    await run.begun.wait()
    close = (b"connection", b"close")
    for connection in list(server.server_state.connections):
        cycle = getattr(connection, "cycle", None)
        if cycle is not None and not getattr(cycle, "response_started", True):
            cycle.keep_alive = False
            cycle.default_headers = [*getattr(cycle, "default_headers", ()), close]


def _ready_once_listening(server: Any) -> None:
    """Readiness fails until uvicorn listens (lifespan startup done, sockets bound): a
    balancer that sends traffic as soon as main runs would meet a refused port."""
    name = f"uvicorn {id(server):x}"
    readiness.block(name, "uvicorn is starting")
    original = server.startup

    async def startup(sockets: Any = None) -> None:
        try:
            await original(sockets)
        finally:
            if server.started:
                readiness.unblock(name)

    server.startup = startup


def _accept_the_backlog_first(server: Any, run: Any) -> None:
    """Before uvicorn closes its listeners, take the connections the kernel already
    accepted, and let them hand over their requests before uvicorn closes the
    connections it thinks idle (see ``_listeners``)."""
    original = server.shutdown

    async def shutdown(sockets: Any = None) -> None:
        loop = asyncio.get_running_loop()
        taken = []
        for listener in getattr(server, "servers", ()):
            taken += await close_listeners(listener, _protocol_factory(server, listener, loop))
        await let_fresh_connections_speak(
            run,
            taken,
            lambda: list(server.server_state.connections),
            lambda proto: getattr(proto, "cycle", True) is None,  # no request yet
        )
        await original(sockets)

    server.shutdown = shutdown


def _protocol_factory(server: Any, listener: Any, loop: asyncio.AbstractEventLoop) -> Any:
    factory = getattr(listener, "_protocol_factory", None)  # asyncio's Server keeps it
    if factory is not None:
        return factory
    # uvloop's Server does not expose it: build what uvicorn's startup() builds.
    cfg = server.config
    return lambda: cfg.http_protocol_class(
        config=cfg, server_state=server.server_state, app_state=server.lifespan.state, _loop=loop
    )


def _switch_off_signal_handling(server: Any) -> None:
    # uvicorn >= 0.29 captures signals in capture_signals(); older ones installed
    # them in install_signal_handlers(). Both become no-ops for this server.
    if hasattr(server, "capture_signals"):
        server.capture_signals = contextlib.nullcontext
    if hasattr(server, "install_signal_handlers"):
        server.install_signal_handlers = lambda: None


async def _serve(server: Any) -> Any:
    """``server.serve()``, with uvicorn's ``sys.exit()`` (port in use, lifespan failed)
    turned into a value: a SystemExit raised in a task would leave the event loop."""
    try:
        await server.serve()
    except SystemExit as exc:
        return exc.code if exc.code is not None else 0
    return None
