"""Small web services on uvicorn, aiohttp and hypercorn, run the ways users run them.

``PORT`` is the port to serve. ``GET /ping`` answers at once; ``GET /slow?s=N``
prints "started" when it begins (the test's handshake: requests are in flight)
and answers 200 after N seconds. Lifespan/app shutdown and the hook are recorded
in ``$OUT/events``, so their order can be checked.
"""

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any

from _record import record

import graceful

PORT = int(os.environ.get("PORT", "0"))
HOST = "127.0.0.1"


@graceful.on_shutdown
def saved() -> None:
    record("hook saved")


# -- Starlette (ASGI), for uvicorn and hypercorn ---------------------------------------


def asgi_app() -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def ping(request: Request) -> PlainTextResponse:
        return PlainTextResponse("pong")

    async def slow(request: Request) -> PlainTextResponse:
        seconds = float(request.query_params.get("s", "1"))
        print("started", flush=True)
        await asyncio.sleep(seconds)
        return PlainTextResponse(f"slept {seconds}")

    async def stop(request: Request) -> PlainTextResponse:
        graceful.request_shutdown(reason="asked over HTTP")
        return PlainTextResponse("stopping")

    @contextlib.asynccontextmanager
    async def lifespan(app: object) -> AsyncIterator[None]:
        record("lifespan startup")
        yield
        record("lifespan shutdown")

    return Starlette(
        routes=[Route("/ping", ping), Route("/slow", slow), Route("/stop", stop)],
        lifespan=lifespan,
    )


async def uvicorn_integration() -> None:
    from graceful.integrations import uvicorn as graceful_uvicorn

    await graceful_uvicorn.serve(asgi_app(), host=HOST, port=PORT, log_level="warning")


async def uvicorn_plain() -> None:
    """The server run its own way inside main: uvicorn takes the signal handlers."""
    import uvicorn

    config = uvicorn.Config(asgi_app(), host=HOST, port=PORT, log_level="warning")
    await uvicorn.Server(config).serve()


async def hypercorn_integration() -> None:
    from graceful.integrations import hypercorn as graceful_hypercorn

    await graceful_hypercorn.serve(asgi_app(), bind=[f"{HOST}:{PORT}"])


async def hypercorn_plain() -> None:
    """hypercorn's serve() without a shutdown trigger: its own loop signal handlers."""
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"{HOST}:{PORT}"]
    await serve(asgi_app(), config)


# -- aiohttp -----------------------------------------------------------------------------


def aiohttp_app() -> Any:
    from aiohttp import web

    async def ping(request: web.Request) -> web.Response:
        return web.Response(text="pong")

    async def slow(request: web.Request) -> web.Response:
        seconds = float(request.query.get("s", "1"))
        print("started", flush=True)
        await asyncio.sleep(seconds)
        return web.Response(text=f"slept {seconds}")

    async def stop(request: web.Request) -> web.Response:
        graceful.request_shutdown(reason="asked over HTTP")
        return web.Response(text="stopping")

    async def on_shutdown(app: web.Application) -> None:
        record("lifespan shutdown")

    app = web.Application()
    app.router.add_get("/ping", ping)
    app.router.add_get("/slow", slow)
    app.router.add_get("/stop", stop)
    app.on_shutdown.append(on_shutdown)
    return app


async def aiohttp_integration() -> None:
    from graceful.integrations import aiohttp as graceful_aiohttp

    await graceful_aiohttp.serve(aiohttp_app(), host=HOST, port=PORT)


async def aiohttp_naive() -> None:
    """The AppRunner set up by hand, main waiting for the stop, clean-up in finally."""
    from aiohttp import web

    runner = web.AppRunner(aiohttp_app())
    await runner.setup()
    await web.TCPSite(runner, HOST, PORT).start()
    try:
        await graceful.wait_for_shutdown()
    finally:
        await runner.cleanup()


# -- long-lived connections: WebSockets, streams, SSE, background work --------------------
# ``/ws`` echoes and records its close code; ``/stream`` ticks until the stop
# (graceful.until_shutdown); ``/endless`` ticks for ever, ignoring the stop; ``/sse`` is
# sse-starlette's EventSourceResponse; ``/background`` answers at once and leaves a
# Starlette background task running. Each prints a line once it is open.


async def ticks() -> AsyncIterator[str]:
    n = 0
    while True:
        yield f"tick {n}\n"
        n += 1
        await asyncio.sleep(0.05)


def opened(what: str) -> None:
    print(f"{what} open", flush=True)


def fastapi_app() -> Any:
    from fastapi import BackgroundTasks, FastAPI, WebSocket, WebSocketDisconnect
    from fastapi.responses import PlainTextResponse, StreamingResponse
    from sse_starlette import EventSourceResponse

    @contextlib.asynccontextmanager
    async def lifespan(app: object) -> AsyncIterator[None]:
        yield
        record("lifespan shutdown")

    app = FastAPI(lifespan=lifespan)

    @app.get("/ping")
    async def ping() -> PlainTextResponse:
        return PlainTextResponse("pong")

    @app.get("/slow")
    async def slow(s: float = 1.0) -> PlainTextResponse:
        print("started", flush=True)
        await asyncio.sleep(s)
        return PlainTextResponse(f"slept {s}")

    @app.websocket("/ws")
    async def ws(socket: WebSocket) -> None:
        await socket.accept()
        opened("ws")
        try:
            while True:
                await socket.send_text(await socket.receive_text())
        except WebSocketDisconnect as exc:
            record(f"ws closed {exc.code}")

    async def announced(what: str, source: AsyncIterator[str]) -> AsyncIterator[str]:
        opened(what)
        async for item in source:
            yield item

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        return StreamingResponse(announced("stream", graceful.until_shutdown(ticks())))

    @app.get("/endless")
    async def endless() -> StreamingResponse:
        return StreamingResponse(announced("endless", ticks()))

    @app.get("/sse")
    async def sse() -> EventSourceResponse:
        return EventSourceResponse(announced("sse", ticks()))

    @app.get("/background")
    async def background(tasks: BackgroundTasks) -> PlainTextResponse:
        async def work() -> None:
            opened("background")
            await asyncio.sleep(3600)

        tasks.add_task(work)
        return PlainTextResponse("accepted")

    return app


async def fastapi_uvicorn() -> None:
    from graceful.integrations import uvicorn as graceful_uvicorn

    await graceful_uvicorn.serve(fastapi_app(), host=HOST, port=PORT, log_level="warning")


async def fastapi_hypercorn() -> None:
    from graceful.integrations import hypercorn as graceful_hypercorn

    await graceful_hypercorn.serve(fastapi_app(), bind=[f"{HOST}:{PORT}"])


def aiohttp_streaming_app() -> Any:
    from aiohttp import WSMsgType, web

    app = aiohttp_app()

    async def ws(request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        opened("ws")
        async for message in socket:
            if message.type == WSMsgType.TEXT:
                await socket.send_str(message.data)
        record(f"ws closed {socket.close_code}")
        return socket

    async def streamed(request: web.Request, what: str, source: Any) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        opened(what)
        async for item in source:
            await response.write(item.encode())
        await response.write_eof()
        return response

    async def stream(request: web.Request) -> web.StreamResponse:
        return await streamed(request, "stream", graceful.until_shutdown(ticks()))

    async def endless(request: web.Request) -> web.StreamResponse:
        return await streamed(request, "endless", ticks())

    app.router.add_get("/ws", ws)
    app.router.add_get("/stream", stream)
    app.router.add_get("/endless", endless)
    return app


async def aiohttp_streaming() -> None:
    from graceful.integrations import aiohttp as graceful_aiohttp

    await graceful_aiohttp.serve(aiohttp_streaming_app(), host=HOST, port=PORT)
