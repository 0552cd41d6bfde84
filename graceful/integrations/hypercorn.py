"""hypercorn under graceful.

.. code-block:: python

    from graceful.integrations import hypercorn as graceful_hypercorn

    async def main() -> None:
        await graceful_hypercorn.serve(app, bind=["0.0.0.0:8000"])

hypercorn's ``serve()`` is given graceful's stop as its ``shutdown_trigger`` (so it
installs no signal handlers of its own) and its ``graceful_timeout`` is set from
graceful's drain budget when the stop comes: the open WebSockets are closed
(1012, as uvicorn does), and hypercorn stops accepting, finishes
in-flight requests (responses carry ``Connection: close``), runs the ASGI
lifespan shutdown, and returns before graceful's hooks.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .._health.readiness import state as readiness
from ._common import TrackRequests, cannot_listen, join, server_drain_timeout


async def serve(app: Any, config: Any = None, **settings: Any) -> None:
    """Serve the ASGI ``app`` until graceful stops the process.

    ``config`` is a ``hypercorn.config.Config``; or give its settings as keywords
    (``bind=["0.0.0.0:8000"]``, ...). Await it from ``main``. **Signals:** hypercorn
    installs none. **Deadline:** in-flight requests get graceful's drain budget;
    those still running then are answered 503 and counted as cut.
    """
    from hypercorn.asyncio import serve as hypercorn_serve
    from hypercorn.config import Config

    from .._errors import UsageError

    if config is not None and settings:
        raise UsageError(
            "serve() takes either a hypercorn Config or keyword settings for one, not both;"
            f" move {sorted(settings)} into the Config"
        )
    if config is None:
        config = Config()
        for name, value in settings.items():
            if not hasattr(config, name):
                raise UsageError(f"hypercorn's Config has no setting {name!r}; check the name")
            setattr(config, name, value)
    run = join()
    name = f"hypercorn {config.bind[0] if config.bind else ''}".strip()
    readiness.block(name, "hypercorn is starting")  # ready once it listens
    watcher = asyncio.ensure_future(_unblock_when_listening(config, name))

    tracked = TrackRequests(app, run, track_tasks=True)
    cutter: asyncio.Task[None] | None = None
    websockets: asyncio.Future[None] | None = None

    async def cut_at_the_budget(after: float) -> None:
        await asyncio.sleep(after)
        tracked.cut_in_flight()

    async def stopped() -> None:
        nonlocal cutter, websockets
        await run.sequence_started.wait()
        websockets = asyncio.ensure_future(tracked.close_websockets())
        config.graceful_timeout = timeout = server_drain_timeout(run)
        # hypercorn waits for `server.wait_closed()` before its graceful timeout
        # applies, and since Python 3.12 that waits for every connection to close: a
        # request that never ends would hold it past graceful's budget, lifespan
        # shutdown never run. So graceful cuts the requests itself at the timeout.
        cutter = asyncio.ensure_future(cut_at_the_budget(timeout))

    app_for_hypercorn: Any = tracked
    host, _, port = str(config.bind[0] if config.bind else "").rpartition(":")
    where = int(port) if port.isdigit() else port
    try:
        # hypercorn starts the app's lifespan before it binds, and leaves it running when
        # the bind fails (its failure then adds a traceback): try the address first.
        _try_to_bind(host, where)
        await hypercorn_serve(app_for_hypercorn, config, shutdown_trigger=stopped)
    except OSError as exc:  # a bind in use: one line and exit 3, as on every server
        cannot_listen(run, "hypercorn", host, where, exc)
    finally:
        watcher.cancel()
        for each in (cutter, websockets):
            if each is not None:
                each.cancel()
        readiness.unblock(name)


def _try_to_bind(host: str, port: object) -> None:
    """Raise OSError if ``host:port`` (a TCP bind) cannot be bound now."""
    import socket

    if not isinstance(port, int) or host.startswith(("unix", "fd")):
        return
    name = host.strip("[]") or "0.0.0.0"
    family = socket.AF_INET6 if ":" in name else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as hypercorn binds
        probe.bind((name, port))


async def _unblock_when_listening(config: Any, name: str) -> None:
    """hypercorn has no "started" hook: ready once its first bind accepts a connection
    (a bind that is not host:port, a unix socket or an fd, is taken as ready at once)."""
    host, _, port = str(config.bind[0] if config.bind else "").rpartition(":")
    host = {"0.0.0.0": "127.0.0.1", "[::]": "::1"}.get(host, host).strip("[]")
    if not host or not port.isdigit() or host.startswith(("unix", "fd")):
        readiness.unblock(name)
        return
    while True:
        try:
            _, writer = await asyncio.open_connection(host, int(port))
        except OSError:
            await asyncio.sleep(0.01)
            continue
        writer.close()
        readiness.unblock(name)
        return
