"""A WebSocket echo and a Server-Sent Events clock, on each of the three servers.

    PORT=8000 python -m graceful examples.web_streams:uvicorn_main
    PORT=8000 python -m graceful examples.web_streams:hypercorn_main
    PORT=8000 python -m graceful examples.web_streams:aiohttp_main

Try ``websocat ws://127.0.0.1:8000/ws`` and ``curl -N 127.0.0.1:8000/clock``, then
stop the service: at the start of graceful's sequence every WebSocket is closed
with 1012 ("service restart", so clients reconnect elsewhere) and the clock's
stream ends with its terminator, because it runs under ``graceful.until_shutdown``.
Nothing is cut, and the exit code is 0.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import graceful

PORT = int(os.environ.get("PORT", "8000"))
HOST = os.environ.get("HOST", "0.0.0.0")


async def clock() -> AsyncIterator[str]:
    """One Server-Sent Event a second, until the stop."""
    async for _ in graceful.until_shutdown(_seconds()):
        yield f"data: {time.strftime('%H:%M:%S')}\n\n"


async def _seconds() -> AsyncIterator[None]:
    while True:
        yield None
        await asyncio.sleep(1)


# -- ASGI (Starlette): uvicorn and hypercorn -----------------------------------------------


def asgi_app() -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import StreamingResponse
    from starlette.routing import Route, WebSocketRoute
    from starlette.websockets import WebSocket, WebSocketDisconnect

    async def echo(socket: WebSocket) -> None:
        await socket.accept()
        try:
            while True:
                await socket.send_text(await socket.receive_text())
        except WebSocketDisconnect:
            pass  # the client left, or graceful closed it at the stop (code 1012)

    async def events(request: Request) -> StreamingResponse:
        return StreamingResponse(clock(), media_type="text/event-stream")

    return Starlette(routes=[WebSocketRoute("/ws", echo), Route("/clock", events)])


async def uvicorn_main() -> None:
    from graceful.integrations import uvicorn as graceful_uvicorn

    await graceful_uvicorn.serve(asgi_app(), host=HOST, port=PORT, log_level="warning")


async def hypercorn_main() -> None:
    from graceful.integrations import hypercorn as graceful_hypercorn

    await graceful_hypercorn.serve(asgi_app(), bind=[f"{HOST}:{PORT}"])


# -- aiohttp ---------------------------------------------------------------------------------


def aiohttp_app() -> Any:
    from aiohttp import WSMsgType, web

    async def echo(request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        async for message in socket:  # ends when graceful closes it at the stop
            if message.type == WSMsgType.TEXT:
                await socket.send_str(message.data)
        return socket

    async def events(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        async for event in clock():
            await response.write(event.encode())
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/ws", echo)
    app.router.add_get("/clock", events)
    return app


async def aiohttp_main() -> None:
    from graceful.integrations import aiohttp as graceful_aiohttp

    await graceful_aiohttp.serve(aiohttp_app(), host=HOST, port=PORT)
