"""What the server integrations share: joining the run, the drain budget, the count
of cut requests, and an ASGI wrapper for the two ASGI servers."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .._runtime import Run, current_run, listen

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CLEANUP_RESERVE = 0.2
"""Share of the drain budget kept for the server's own clean-up after its drain
(the ASGI lifespan shutdown, aiohttp's on_cleanup), so it runs before the budget ends."""

CUT = "requests cut"


def join() -> Run:
    """The running app; the calling task (main) will finish on its own after a stop."""
    run = current_run()
    task = asyncio.current_task()
    if task is not None:
        listen(run, task)
    return run


def server_drain_timeout(run: Run) -> float:
    """How long the server may wait for in-flight requests, from now."""
    left = run.context().drain_time_left()
    return max(0.0, left * (1 - CLEANUP_RESERVE))


async def wait_for_stop(run: Run, serving: asyncio.Future[Any]) -> bool:
    """Wait until the sequence starts (True) or the server ends by itself (False)."""
    stop = asyncio.ensure_future(run.stop_event.wait())
    try:
        await asyncio.wait({serving, stop}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.cancel()
    return not serving.done()


_SHUTTING_DOWN_BODY = b"service is shutting down\n"


class TrackRequests:
    """ASGI middleware: ``Connection: close`` on responses once a stop has begun, and
    a request cut by the end of the drain budget answered with 503 and counted."""

    def __init__(self, app: ASGIApp, run: Run) -> None:
        self.app = app
        self.run = run
        self.in_flight = 0
        self.tasks: set[asyncio.Task[Any]] = set()

    def cut_in_flight(self) -> None:
        """Cancel every request still being handled (each is answered 503 and counted)."""
        for task in list(self.tasks):
            task.cancel()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        started = False
        run = self.run

        async def send_wrapper(message: Message) -> None:
            nonlocal started
            if message.get("type") == "http.response.start":
                started = True
                if run.deadline is not None:  # a stop has begun (drain delay included)
                    headers = [
                        (k, v) for k, v in message.get("headers", ()) if k.lower() != b"connection"
                    ]
                    headers.append((b"connection", b"close"))
                    message = {**message, "headers": headers}
            await send(message)

        self.in_flight += 1
        current = asyncio.current_task()
        if current is not None:
            self.tasks.add(current)
        try:
            await self.app(scope, receive, send_wrapper)
        except asyncio.CancelledError:
            if run.deadline is None:
                raise  # not ours: a client gone, a server's own timeout
            run.note(CUT, 1)
            task = asyncio.current_task()
            if task is not None and sys.version_info >= (3, 11):
                task.uncancel()  # handled here: the request is answered, the task ends
            if not started:  # a clean 503 instead of the server's 500 and traceback
                await send(
                    {
                        "type": "http.response.start",
                        "status": 503,
                        "headers": [
                            (b"content-type", b"text/plain"),
                            (b"content-length", str(len(_SHUTTING_DOWN_BODY)).encode()),
                            (b"connection", b"close"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": _SHUTTING_DOWN_BODY})
        finally:
            self.in_flight -= 1
            if current is not None:
                self.tasks.discard(current)


FRESH_WAIT = 1.0
"""At most this long (and at most a quarter of the drain budget), connections that were
accepted but have not sent their first request yet are given to send it, before the
server closes the connections it thinks idle."""


async def let_fresh_connections_speak(
    run: Run,
    taken: list[asyncio.Task[None]],
    connections: Callable[[], list[Any]],
    fresh: Callable[[Any], bool],
) -> None:
    """Wait until no connection is fresh (accepted, no request yet), within a bound.

    A server's graceful shutdown closes every connection without a request in
    progress. One accepted a moment ago, whose client is about to send its request,
    is among them: the client gets a reset for a request that was never refused.
    """
    loop = asyncio.get_running_loop()
    bound = min(FRESH_WAIT, server_drain_timeout(run) / 4)
    end = loop.time() + bound
    # The connections taken from the backlog join the server first, and so do those
    # asyncio's own accept took just before: it makes their transport in a task of its
    # own (uvloop does it at once), and a connection the server does not know of yet
    # would be reset by its shutdown instead of closed after a response.
    joining = set(taken) | {t for t in asyncio.all_tasks() if _is_accepting(t)}
    if joining:
        await asyncio.wait(joining, timeout=bound)
    await asyncio.sleep(0)
    # No event tells that a request arrived on a connection: look every 5 ms.
    while any(fresh(c) for c in connections()) and loop.time() < end:  # noqa: ASYNC110
        await asyncio.sleep(0.005)


def _is_accepting(task: asyncio.Task[Any]) -> bool:
    """A task of asyncio's selector loop that is turning an accepted socket into a
    connection (``BaseSelectorEventLoop._accept_connection2``)."""
    coro = task.get_coro()
    return not task.done() and getattr(coro, "__qualname__", "").endswith("_accept_connection2")
