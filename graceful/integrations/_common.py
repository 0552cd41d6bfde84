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
    a request cut by the end of the drain budget answered with 503 and counted.

    While no stop has begun it adds one frame and nothing else (measured: a wrapper
    around ``send`` on every request cost uvicorn 3 % of its requests per second).
    Requests that began before the stop and answer after it are the server's to
    close (``close_keep_alive``); those that begin after it get the header here.
    ``track_tasks`` keeps the tasks of the requests in flight, for a server whose
    own shutdown cannot cut them (``cut_in_flight``).
    """

    def __init__(self, app: ASGIApp, run: Run, *, track_tasks: bool = False) -> None:
        self.app = app
        self.run = run
        self.tasks: set[asyncio.Task[Any]] | None = set() if track_tasks else None

    def cut_in_flight(self) -> None:
        """Cancel every request still being handled (each is answered 503 and counted)."""
        for task in list(self.tasks or ()):
            task.cancel()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        tasks = self.tasks
        if tasks is None and self.run.deadline is None:
            try:  # the common case, kept cheap
                await self.app(scope, receive, send)
            except asyncio.CancelledError:
                if self.run.deadline is None:
                    raise  # not ours: a client gone, a server's own timeout
                await self._answer_cut(send, started=None)
            return
        await self._call_stopping(scope, receive, send, tasks)

    async def _call_stopping(
        self, scope: Scope, receive: Receive, send: Send, tasks: set[asyncio.Task[Any]] | None
    ) -> None:
        started = [False]
        run = self.run

        async def send_wrapper(message: Message) -> None:
            if message.get("type") == "http.response.start":
                started[0] = True
                if run.deadline is not None:  # a stop has begun (drain delay included)
                    headers = [
                        (k, v) for k, v in message.get("headers", ()) if k.lower() != b"connection"
                    ]
                    headers.append((b"connection", b"close"))
                    message = {**message, "headers": headers}
            await send(message)

        current = asyncio.current_task() if tasks is not None else None
        if current is not None and tasks is not None:
            tasks.add(current)
        try:
            await self.app(scope, receive, send_wrapper)
        except asyncio.CancelledError:
            if run.deadline is None:
                raise
            await self._answer_cut(send, started=started[0])
        finally:
            if current is not None and tasks is not None:
                tasks.discard(current)

    async def _answer_cut(self, send: Send, started: bool | None) -> None:
        """A request cut at the end of the drain budget: counted, and answered 503 if
        its response has not started (``None``: not known, try)."""
        self.run.note(CUT, 1)
        task = asyncio.current_task()
        if task is not None and sys.version_info >= (3, 11):
            task.uncancel()  # handled here: the request is answered, the task ends
        if started:
            return
        try:
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
        except Exception:  # the response had started after all: the server closes it
            pass


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
