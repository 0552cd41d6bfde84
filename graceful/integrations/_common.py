"""What the server integrations share: joining the run, the drain budget, the count
of cut requests, and an ASGI wrapper for the two ASGI servers."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, NoReturn

from .._core.runtime import Run, current_run, listen

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("graceful")

CLEANUP_SHARE = 0.1
CLEANUP_MAX = 0.5
"""Of the drain budget, this share (at most ``CLEANUP_MAX`` seconds) is kept for the
server's own clean-up after its drain (the ASGI lifespan shutdown, aiohttp's
on_cleanup), so it runs before the budget ends."""

CUT = "requests cut"
BACKGROUND_CUT = "background work cut"
"""Work still running after its response was sent (Starlette's ``BackgroundTasks``)."""

CLOSE_CODE = 1012
CLOSE_REASON = "service restart"
"""How every integration closes the WebSockets open at the stop: 1012 ("service
restart", the IANA registry) tells the client to reconnect, which is what a stop in a
container is (a rolling update, a reschedule); uvicorn sends it by itself, so an app
that moves onto graceful sees no change. 1001 ("going away") reads as "this endpoint
is gone" and is what aiohttp's documentation uses in an app's own on_shutdown, which
still runs first and may close with it."""


EXIT_CANNOT_LISTEN = 3
"""The exit code when the server cannot listen (a port in use): uvicorn's own."""


def cannot_listen(run: Run, server: str, host: object, port: object, error: OSError) -> NoReturn:
    """One line for a server that cannot bind, the same on every server, and exit 3."""
    hint = ""
    if port and port == run.config.health_port:
        hint = (
            f"; {port} is graceful's own {run.config.spelling('health_port')}:"
            " give the app and the health server different ports"
        )
    log.error(
        "%s cannot listen on %s:%s: %s%s",
        server,
        host or "0.0.0.0",
        port,
        error.strerror or error,
        hint,
    )
    raise SystemExit(EXIT_CANNOT_LISTEN)


def join() -> Run:
    """The running app; the calling task (main) will finish on its own after a stop."""
    run = current_run()
    task = asyncio.current_task()
    if task is not None:
        listen(run, task)
    return run


def server_drain_timeout(run: Run) -> float:
    """How long the server may wait for in-flight requests, from now."""
    return drain_timeout(run.context().drain_time_left())


def drain_timeout(left: float) -> float:
    """Of ``left`` seconds of drain, what the server's own drain may use."""
    return max(0.0, left - min(CLEANUP_MAX, left * CLEANUP_SHARE))


async def wait_for_stop(run: Run, serving: asyncio.Future[Any]) -> bool:
    """Wait until the sequence starts (True) or the server ends by itself (False)."""
    stop = asyncio.ensure_future(run.sequence_started.wait())
    try:
        await asyncio.wait({serving, stop}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.cancel()
    return not serving.done()


def tell_stream_libraries() -> None:
    """Tell the streaming libraries that watch for a server's stop that it began, as
    their documentation asks a server they do not know to do (sse-starlette watches
    uvicorn only: under hypercorn and aiohttp its streams would wait for the cut).
    Nothing is imported: a library the app did not load is not there to tell."""
    sse = sys.modules.get("sse_starlette.sse")
    status = getattr(sse, "AppStatus", None)
    if status is not None and getattr(status, "enable_automatic_graceful_drain", True):
        status.should_exit = True


_SHUTTING_DOWN_BODY = b"service is shutting down\n"


class WebSocketClosed(OSError):
    """Raised by ``send()`` on a WebSocket that graceful closed at the stop (Starlette
    turns it into ``WebSocketDisconnect``, as it does a client that went away)."""


class _Socket:
    """One WebSocket in progress: the server's ``send``, and whether it is closed."""

    __slots__ = ("send", "closed", "app_closed")

    def __init__(self, send: Send, closed: asyncio.Future[None]) -> None:
        self.send = send
        self.closed = closed  # done once graceful has closed it
        self.app_closed = False


def response_state(send: Send) -> tuple[bool | None, bool]:
    """(started, complete) of the response that ``send`` belongs to, where the server
    shows it (uvicorn's request cycle does); ``(None, False)`` when it is not known."""
    cycle = getattr(send, "__self__", None)
    return getattr(cycle, "response_started", None), bool(
        getattr(cycle, "response_complete", False)
    )


class TrackRequests:
    """ASGI middleware: ``Connection: close`` on responses once a stop has begun, a
    request cut by the end of the drain budget answered with 503 and counted, and the
    WebSockets open at phase 1 closed with 1012 (``close_websockets``).

    While no stop has begun it adds one frame and nothing else to an HTTP request
    (measured: a wrapper around ``send`` on every request cost uvicorn 3 % of its
    requests per second). Requests that began before the stop and answer after it are
    the server's to close (``close_keep_alive``); those that begin after it get the
    header here. ``track_tasks`` keeps the tasks of the requests in flight, for a
    server whose own shutdown cannot cut them (``cut_in_flight``).

    The rule for what is cut, the same on every server: a request whose response has
    not started is answered 503; one whose response has started (a stream, an SSE
    feed) is never given a second status line: the server closes its connection, so
    the client sees the body end early; work that runs after the response was sent
    is counted as background work, not as a request.
    """

    def __init__(self, app: ASGIApp, run: Run, *, track_tasks: bool = False) -> None:
        self.app = app
        self.run = run
        self.tasks: set[asyncio.Task[Any]] | None = set() if track_tasks else None
        self.websockets: set[_Socket] = set()

    def cut_in_flight(self) -> None:
        """Cancel every request still being handled (each is answered 503 and counted)."""
        for task in list(self.tasks or ()):
            task.cancel()

    async def close_websockets(self) -> None:
        """Phase 1 for long-lived connections: close every WebSocket in progress with
        1012 (the app's ``receive()`` returns ``websocket.disconnect`` at once, its later
        sends raise ``WebSocketClosed``) and tell the streaming libraries. Returns once
        every close frame is handed to the server."""
        tell_stream_libraries()
        closing = []
        for sock in self.websockets:
            if not sock.closed.done():
                sock.closed.set_result(None)
                if not sock.app_closed:
                    closing.append(_close(sock.send))
        if closing:
            await asyncio.gather(*closing)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope.get("type")
        if kind != "http":
            if kind == "websocket":
                await self._websocket(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        tasks = self.tasks
        run = self.run
        run.requests_in_flight += 1
        try:
            if tasks is None and run.deadline is None:
                try:  # the common case, kept cheap
                    await self.app(scope, receive, send)
                except asyncio.CancelledError:
                    if run.deadline is None:
                        raise  # not ours: a client gone, a server's own timeout
                    await self._answer_cut(send, *response_state(send))
                return
            await self._call_stopping(scope, receive, send, tasks)
        finally:
            run.requests_in_flight -= 1

    async def _call_stopping(
        self, scope: Scope, receive: Receive, send: Send, tasks: set[asyncio.Task[Any]] | None
    ) -> None:
        state = [False, False]  # the response has started, is complete
        run = self.run

        async def send_wrapper(message: Message) -> None:
            kind = message.get("type")
            if kind == "http.response.start":
                state[0] = True
                if run.deadline is not None:  # a stop has begun (drain delay included)
                    headers = [
                        (k, v) for k, v in message.get("headers", ()) if k.lower() != b"connection"
                    ]
                    headers.append((b"connection", b"close"))
                    message = {**message, "headers": headers}
            elif kind == "http.response.body" and not message.get("more_body", False):
                state[1] = True
            await send(message)

        current = asyncio.current_task() if tasks is not None else None
        if current is not None and tasks is not None:
            tasks.add(current)
        try:
            await self.app(scope, receive, send_wrapper)
        except asyncio.CancelledError:
            if run.deadline is None:
                raise
            await self._answer_cut(send, state[0], state[1])
        finally:
            if current is not None and tasks is not None:
                tasks.discard(current)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        run = self.run
        sock = _Socket(send, asyncio.get_running_loop().create_future())
        if run.sequence_started.is_set():  # the sequence has begun: refuse the handshake
            await _close(send)
            return
        disconnect = {"type": "websocket.disconnect", "code": CLOSE_CODE, "reason": CLOSE_REASON}

        async def receive_until_closed() -> Message:
            if sock.closed.done():
                return dict(disconnect)
            message = asyncio.ensure_future(receive())
            either: set[asyncio.Future[Any]] = {message, sock.closed}
            try:
                await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
            except asyncio.CancelledError:  # the handler is cancelled: so is its receive
                message.cancel()
                raise
            if message.done():
                return message.result()
            message.cancel()
            return dict(disconnect)

        async def send_until_closed(message: Message) -> None:
            if sock.closed.done():
                raise WebSocketClosed("the WebSocket was closed: the service is stopping")
            if message.get("type") == "websocket.close":
                sock.app_closed = True
            await send(message)

        tasks = self.tasks
        current = asyncio.current_task() if tasks is not None else None
        if current is not None and tasks is not None:
            tasks.add(current)
        self.websockets.add(sock)
        try:
            await self.app(scope, receive_until_closed, send_until_closed)
        except asyncio.CancelledError:
            if run.deadline is None:
                raise
            run.note(CUT, 1)  # still running at the end of the drain: the server drops it
            raise
        finally:
            self.websockets.discard(sock)
            if current is not None and tasks is not None:
                tasks.discard(current)

    async def _answer_cut(self, send: Send, started: bool | None, complete: bool) -> None:
        """A request cut at the end of the drain budget: counted, and answered 503 if
        its response has not started (``None``: not known, try)."""
        self.run.note(BACKGROUND_CUT if complete else CUT, 1)
        task = asyncio.current_task()
        if task is not None and sys.version_info >= (3, 11):
            task.uncancel()  # handled here: the request is answered, the task ends
        if started or complete:
            return  # never a second response: the server closes the unfinished one
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


async def _close(send: Send) -> None:
    try:
        await send({"type": "websocket.close", "code": CLOSE_CODE, "reason": CLOSE_REASON})
    except Exception:  # the client is gone, or the server closed it already
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
