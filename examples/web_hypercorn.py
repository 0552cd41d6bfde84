"""A stateless web service on hypercorn (Starlette), stopped cleanly by graceful.

PORT=8000 python -m graceful --health-port 8081 --drain-delay 2 examples.web_hypercorn:main
"""

from __future__ import annotations

import os

import graceful
from graceful.integrations import hypercorn as graceful_hypercorn

from .hello_asgi import app

PORT = int(os.environ.get("PORT", "8000"))
HOST = os.environ.get("HOST", "0.0.0.0")


@graceful.on_shutdown
def goodbye(ctx: graceful.ShutdownContext) -> None:
    print(f"hook: the server has drained ({ctx.reason})", flush=True)


async def main() -> None:
    await graceful_hypercorn.serve(app, bind=[f"{HOST}:{PORT}"], accesslog=None)
