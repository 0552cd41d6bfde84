"""The small ASGI (Starlette) app the uvicorn and hypercorn examples serve."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route


async def hello(request: Request) -> PlainTextResponse:
    delay = float(request.query_params.get("delay", "0"))  # to watch a drain at work
    await asyncio.sleep(delay)
    return PlainTextResponse(f"hello from {os.getpid()}\n")


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    print("lifespan: startup", flush=True)
    yield
    print("lifespan: shutdown (after the requests in flight)", flush=True)


app = Starlette(routes=[Route("/", hello)], lifespan=lifespan)
