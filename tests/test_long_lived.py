"""Long-lived connections at a stop, on uvicorn, hypercorn and aiohttp under graceful:
WebSockets closed with 1012 at phase 1, streams ended with their terminator,
sse-starlette's streams ended as under uvicorn alone, and what has to be cut cut the
same way on every server (never a second status line, background work counted apart).
Real servers, real clients (websockets, raw sockets for the wire bytes), both loops."""

from __future__ import annotations

import importlib.metadata
import socket
import threading
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from .conftest import App, Launcher, free_port, poll_until, stop
from .test_servers import in_flight, refused, start

SERVERS = ["web:fastapi_uvicorn", "web:fastapi_hypercorn", "web:aiohttp_streaming"]
# sse-starlette before 3.7 (the last for Python 3.10 is 3.5.1) ends its streams at a stop
# without the closing chunk, under the server alone too; it still ends them, in time.
SSE_STARLETTE_ENDS_CLEANLY = tuple(
    int(part) for part in importlib.metadata.version("sse-starlette").split(".")[:2]
) >= (3, 7)
ASGI = {"web:fastapi_uvicorn", "web:fastapi_hypercorn"}


class WebSocketClient:
    """A client that says hello, gets its echo, then waits idle for the server's close."""

    def __init__(self, port: int) -> None:
        self.code: int | None = None
        self.reason = ""
        self.error: BaseException | None = None
        self.echoed = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(port,), daemon=True)
        self.thread.start()
        assert self.echoed.wait(20), self.error

    def _run(self, port: int) -> None:
        try:
            with connect(f"ws://127.0.0.1:{port}/ws", open_timeout=20) as ws:
                ws.send("hello")
                assert ws.recv(timeout=20) == "hello"
                self.echoed.set()
                ws.recv(timeout=60)
        except ConnectionClosed as closed:
            if closed.rcvd is not None:
                self.code, self.reason = closed.rcvd.code, closed.rcvd.reason
        except BaseException as exc:
            self.error = exc
            self.echoed.set()

    def closed(self, timeout: float = 30) -> tuple[int | None, str]:
        self.thread.join(timeout)
        assert not self.thread.is_alive() and self.error is None, self.error
        return self.code, self.reason


class RawGet:
    """A GET on a raw socket: every byte the server writes, until it closes."""

    def __init__(self, port: int, path: str) -> None:
        self.data = b""
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            while chunk := self.sock.recv(65536):
                self.data += chunk
        except OSError:
            pass
        finally:
            self.sock.close()

    def all(self, timeout: float = 30) -> bytes:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the server never closed the response"
        return self.data


def opened(app: App, what: str, count: int = 1) -> None:
    for _ in range(count):
        app.expect(f"{what} open")


def summary(app: App) -> str:
    return app.stderr.rstrip().splitlines()[-1]


@pytest.mark.parametrize("target", SERVERS)
def test_websockets_and_streams_end_cleanly_at_the_stop(
    launch: Launcher, port: int, target: str
) -> None:
    app = start(launch, target, port, "--grace", "5")
    sockets = [WebSocketClient(port) for _ in range(3)]
    opened(app, "ws", 3)
    streams = [RawGet(port, "/stream")]
    opened(app, "stream")
    if target in ASGI:  # sse-starlette ends its streams when the server stops
        streams.append(RawGet(port, "/sse"))
        opened(app, "sse")
    requests = in_flight(app, port, 0.5, count=2)
    assert stop(app) == 0, app.stderr
    assert [s.closed() for s in sockets] == [(1012, "service restart")] * 3
    # The handlers ended (an ASGI app is told 1012; aiohttp shows the client's reply).
    assert sum(e.startswith("ws closed") for e in app.events()) == 3
    if target in ASGI:
        assert app.events().count("ws closed 1012") == 3
    for each in streams:
        data = each.all()
        assert data.count(b"HTTP/1.1 ") == 1, data[:300]
        if each is streams[0] or SSE_STARLETTE_ENDS_CLEANLY:
            assert data.endswith(b"\r\n0\r\n\r\n"), data[-200:]  # the chunked terminator
    assert [r.status for r in requests.wait()] == [200, 200]
    assert "drain " in summary(app) and ", cut 0;" in summary(app), app.stderr


@pytest.mark.parametrize("target", SERVERS)
def test_a_started_response_that_is_cut_gets_no_second_status_line(
    launch: Launcher, port: int, target: str
) -> None:
    app = start(launch, target, port, "--grace", "2")
    endless = RawGet(port, "/endless")
    opened(app, "endless")
    expected = "cut 1 (requests 1)"
    if target in ASGI:  # the client has its answer; the work goes on after it
        background = RawGet(port, "/background")
        opened(app, "background")
        expected = "cut 2 (background work 1, requests 1)"
    assert stop(app) == 1
    data = endless.all()
    assert data.count(b"HTTP/1.1 ") == 1 and b" 503 " not in data, data[:300]
    assert not data.endswith(b"\r\n0\r\n\r\n")  # closed unfinished, not passed off as whole
    if target in ASGI:
        assert background.all().startswith(b"HTTP/1.1 200 ")
    assert expected in summary(app), app.stderr


def test_a_request_that_fits_the_window_is_served_and_one_that_does_not_is_cut(
    launch: Launcher, port: int
) -> None:
    # One hook (no timeout: 1 s kept for it). --grace 5: the drain may run 3.05 s and
    # a 2 s request finishes (a fixed 60 % share cut it at 2.0 s); --grace 3: 1.25 s.
    app = start(launch, "web:fastapi_uvicorn", port, "--grace", "5")
    requests = in_flight(app, port, 2.0, count=1)
    assert stop(app) == 0
    assert [r.status for r in requests.wait()] == [200]
    assert "drain budget 3.05 s, then cancellation 0.45 s, hooks 1.00 s (1)" in app.stderr

    port = free_port()
    app = start(launch, "web:fastapi_uvicorn", port, "--grace", "3")
    requests = in_flight(app, port, 2.0, count=1)
    assert stop(app) == 1
    assert [r.status for r in requests.wait()] == [503]
    assert app.events()[-1] == "hook saved"


@pytest.mark.parametrize("main", ["uvicorn_main", "hypercorn_main", "aiohttp_main"])
def test_the_streams_example_stops_cleanly_on_each_server(
    launch: Launcher, port: int, main: str
) -> None:
    root = str(Path(__file__).parent.parent)
    app = launch.graceful(
        f"examples.web_streams:{main}",
        env={"PORT": str(port), "HOST": "127.0.0.1", "PYTHONPATH": root},
    )
    assert poll_until(lambda: not refused(port), 30), app.stderr
    client = WebSocketClient(port)
    clock = RawGet(port, "/clock")
    assert poll_until(lambda: b"data: " in clock.data, 30), clock.data
    assert stop(app) == 0, app.stderr
    assert client.closed() == (1012, "service restart")
    assert clock.all().endswith(b"\r\n0\r\n\r\n")
    assert ", cut 0;" in summary(app)
