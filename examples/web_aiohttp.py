"""A stateless web service on aiohttp, stopped cleanly by graceful.

PORT=8080 python -m graceful --health-port 8081 --drain-delay 2 examples.web_aiohttp:main
"""

from __future__ import annotations

import asyncio
import os

from aiohttp import web

import graceful
from graceful.integrations import aiohttp as graceful_aiohttp

PORT = int(os.environ.get("PORT", "8080"))
HOST = os.environ.get("HOST", "0.0.0.0")


async def hello(request: web.Request) -> web.Response:
    await asyncio.sleep(float(request.query.get("delay", "0")))
    return web.Response(text=f"hello from {os.getpid()}\n")


async def on_cleanup(app: web.Application) -> None:
    print("app: cleanup (after the requests in flight)", flush=True)


def make_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/", hello)
    app.on_cleanup.append(on_cleanup)
    return app


@graceful.on_shutdown
def goodbye(ctx: graceful.ShutdownContext) -> None:
    print(f"hook: the server has drained ({ctx.reason})", flush=True)


async def main() -> None:
    await graceful_aiohttp.serve(make_app(), host=HOST, port=PORT, access_log=None)
