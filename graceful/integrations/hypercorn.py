"""hypercorn under graceful.

.. code-block:: python

    from graceful.integrations import hypercorn as graceful_hypercorn

    async def main() -> None:
        await graceful_hypercorn.serve(app, bind=["0.0.0.0:8000"])

hypercorn's ``serve()`` is given graceful's stop as its ``shutdown_trigger`` (so it
installs no signal handlers of its own) and its ``graceful_timeout`` is set from
graceful's drain budget when the stop comes: it stops accepting, finishes
in-flight requests (responses carry ``Connection: close``), runs the ASGI
lifespan shutdown, and returns before graceful's hooks.
"""

from __future__ import annotations

from typing import Any

from ._common import TrackRequests, join, server_drain_timeout


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

    async def stopped() -> None:
        await run.stop_event.wait()
        config.graceful_timeout = server_drain_timeout(run)

    tracked: Any = TrackRequests(app, run)
    await hypercorn_serve(tracked, config, shutdown_trigger=stopped)
