"""A stateless web service on uvicorn (Starlette), stopped cleanly by graceful.

    PORT=8000 python -m graceful --health-port 8081 --drain-delay 2 examples.web_uvicorn:main

On SIGTERM: /readyz fails at once, the app keeps serving for the drain delay
(responses say ``Connection: close``), then uvicorn stops accepting, finishes the
requests in flight within graceful's drain budget, runs the lifespan shutdown,
and graceful runs its hooks.
"""

from __future__ import annotations

import os

import graceful
from graceful.integrations import uvicorn as graceful_uvicorn

from .hello_asgi import app

PORT = int(os.environ.get("PORT", "8000"))
HOST = os.environ.get("HOST", "0.0.0.0")


@graceful.on_shutdown
def goodbye(ctx: graceful.ShutdownContext) -> None:
    print(f"hook: the server has drained ({ctx.reason})", flush=True)


async def main() -> None:
    await graceful_uvicorn.serve(app, host=HOST, port=PORT, log_level="warning")
