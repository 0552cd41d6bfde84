"""Real web servers under graceful: uvicorn, aiohttp and hypercorn, real sockets,
real signals, both loops; the server run its own way too, and as PID 1."""

from __future__ import annotations

import asyncio
import collections
import http.client
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass

import pytest

from .conftest import App, Launcher, poll_until, stop
from .test_init import UNSHARE, stop_pid1

INTEGRATIONS = ["web:uvicorn_integration", "web:aiohttp_integration", "web:hypercorn_integration"]


@dataclass
class Reply:
    status: int | str
    connection: str | None = None
    body: bytes = b""


class Requests:
    """N requests sent from threads, each a fresh connection; results kept in order."""

    def __init__(self, port: int, path: str, count: int) -> None:
        self.replies: list[Reply | None] = [None] * count
        self.threads = [
            threading.Thread(target=self._one, args=(port, path, i), daemon=True)
            for i in range(count)
        ]
        for thread in self.threads:
            thread.start()

    def _one(self, port: int, path: str, i: int) -> None:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            conn.request("GET", path)
            response = conn.getresponse()
            self.replies[i] = Reply(
                response.status, response.getheader("connection"), response.read()
            )
            conn.close()
        except OSError as exc:
            self.replies[i] = Reply(type(exc).__name__)
        except http.client.HTTPException as exc:
            self.replies[i] = Reply(type(exc).__name__)

    def wait(self, timeout: float = 30) -> list[Reply]:
        for thread in self.threads:
            thread.join(timeout)
        assert all(r is not None for r in self.replies), self.replies
        return [r for r in self.replies if r is not None]


def get(port: int, path: str = "/ping") -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    finally:
        conn.close()


def refused(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return False
    except ConnectionRefusedError:
        return True
    except TimeoutError:  # the SYN dropped while the listener closes: ask again
        return False


def up(port: int, app: App, timeout: float = 30) -> None:
    def answers() -> bool:
        assert app.proc.poll() is None, app.stderr
        try:
            return get(port) == 200
        except OSError:
            return False

    assert poll_until(answers, timeout), f"server not up on {port}:\n{app.stderr}"


def start(launch: Launcher, target: str, port: int, *args: str, pid1: bool = False) -> App:
    env = {"PORT": str(port)}
    if pid1:
        app = launch.command([*UNSHARE, sys.executable, "-m", "graceful", *args, target], env=env)
    else:
        app = launch.graceful(*args, target, env=env)
    up(port, app)
    return app


def in_flight(app: App, port: int, seconds: float, count: int = 5) -> Requests:
    requests = Requests(port, f"/slow?s={seconds}", count)
    for _ in range(count):
        app.expect("started")  # the handshake: every request is inside the handler
    return requests


@pytest.mark.parametrize("target", INTEGRATIONS)
def test_in_flight_requests_finish_and_new_connections_are_refused(
    launch: Launcher, port: int, target: str
) -> None:
    app = start(launch, target, port, "--grace", "8")
    requests = in_flight(app, port, 2.0)
    app.send(signal.SIGTERM)
    assert poll_until(lambda: refused(port), 10), "the listener stayed open after the stop"
    assert app.proc.poll() is None  # refused while the requests are still being served
    assert app.wait() == 0
    replies = requests.wait()
    assert [r.status for r in replies] == [200] * 5
    assert all(r.connection == "close" for r in replies)  # keep-alive clients move on
    assert app.events()[-2:] == ["lifespan shutdown", "hook saved"]


@pytest.mark.parametrize("target", INTEGRATIONS)
def test_requests_that_outlive_the_window_are_cut_and_the_hooks_still_run(
    launch: Launcher, port: int, target: str
) -> None:
    app = start(launch, target, port, "--grace", "2")
    requests = in_flight(app, port, 30)
    assert stop(app) == 1
    assert app.elapsed() < 2
    replies = requests.wait()
    assert [r.status for r in replies] == [503] * 5
    assert app.events()[-2:] == ["lifespan shutdown", "hook saved"]  # lifespan before hooks
    last = app.stderr.rstrip().splitlines()[-1]
    assert "cut 5 (requests 5)" in last and "exit code 1" in last
    assert "Traceback" not in app.stderr  # the servers' own cancellation noise is kept out


@pytest.mark.parametrize("target", INTEGRATIONS)
def test_request_shutdown_drains_a_server_as_sigterm_does(
    launch: Launcher, port: int, target: str
) -> None:
    app = start(launch, target, port, "--grace", "5")
    requests = in_flight(app, port, 1.0)
    assert get(port, "/stop") == 200
    assert app.wait() == 0
    assert [r.status for r in requests.wait()] == [200] * 5
    assert app.events()[-2:] == ["lifespan shutdown", "hook saved"]
    assert "shutdown after asked over HTTP" in app.stderr


def test_uvicorn_run_its_own_way_keeps_the_guarantee_and_says_so(
    launch: Launcher, port: int
) -> None:
    app = start(launch, "web:uvicorn_plain", port, "--grace", "2")
    requests = in_flight(app, port, 30)
    assert stop(app) == 1  # its drain was cut at graceful's budget
    assert app.elapsed() < 2
    requests.wait()
    assert app.events()[-1] == "hook saved"
    line = next(x for x in app.stderr.splitlines() if "took graceful's" in x)
    assert "uvicorn.server.Server.handle_exit took graceful's SIGTERM/SIGINT handler" in line
    assert len(line) < 300  # one readable line


def test_uvicorn_run_its_own_way_drains_short_requests(launch: Launcher, port: int) -> None:
    app = start(launch, "web:uvicorn_plain", port, "--grace", "5")
    requests = in_flight(app, port, 1.0)
    assert stop(app) == 0
    assert [r.status for r in requests.wait()] == [200] * 5
    assert app.events()[-2:] == ["lifespan shutdown", "hook saved"]


def test_uvicorn_run_its_own_way_as_pid1_keeps_the_guarantee(launch: Launcher, port: int) -> None:
    app = start(launch, "web:uvicorn_plain", port, "--grace", "2", pid1=True)
    requests = in_flight(app, port, 30)
    assert stop_pid1(app) == 1
    assert app.elapsed() < 2
    requests.wait()
    assert app.events()[-1] == "hook saved"  # the init did not have to SIGKILL the app


def test_hypercorn_run_its_own_way_is_waited_for(launch: Launcher, port: int) -> None:
    app = start(launch, "web:hypercorn_plain", port, "--grace", "5")
    requests = in_flight(app, port, 1.0)
    assert stop(app) == 0
    assert [r.status for r in requests.wait()] == [200] * 5
    assert app.events()[-2:] == ["lifespan shutdown", "hook saved"]


@pytest.mark.parametrize("target", ["web:uvicorn_integration", "web:uvicorn_plain"])
def test_port_in_use_exits_with_uvicorns_code_after_the_sequence(
    launch: Launcher, target: str
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        app = launch.graceful("--grace", "2", target, env={"PORT": str(taken.getsockname()[1])})
        assert app.wait() == 3
    assert app.events()[-1] == "hook saved"
    assert "Task was destroyed" not in app.stderr
    assert "exit code 3" in app.stderr.rstrip().splitlines()[-1]


async def _flood(
    port: int, stop_after: float, results: dict[str, int], loaded: asyncio.Event
) -> None:
    """One client: new connection, one request, again, until refused or time is up."""
    end = time.monotonic() + stop_after
    while time.monotonic() < end:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except ConnectionRefusedError:
            results["refused"] += 1
            return
        except OSError:
            results["connect failed"] += 1
            return
        try:
            writer.write(b"GET /ping HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
            await writer.drain()
            data = await reader.read()
            key = "ok" if data.startswith(b"HTTP/1.1 200") else "no answer" if not data else "other"
            results[key] += 1
            if results["ok"] >= 200:
                loaded.set()
        except ConnectionResetError:
            results["reset after connect"] += 1
        finally:
            writer.close()


@pytest.mark.parametrize("target", ["web:uvicorn_integration", "web:aiohttp_integration"])
def test_connections_already_accepted_by_the_kernel_are_served_not_reset(
    launch: Launcher, port: int, target: str
) -> None:
    """New connections keep coming while the listener closes: each gets an answer or a
    refusal, never a reset after connect (the kernel's queue is taken before the close,
    and connections that have not sent their request yet are given time to send it)."""
    app = start(launch, target, port, "--grace", "5")
    results: collections.Counter[str] = collections.Counter()

    async def scenario() -> None:
        loaded = asyncio.Event()
        clients = [asyncio.ensure_future(_flood(port, 15, results, loaded)) for _ in range(32)]
        await asyncio.wait_for(loaded.wait(), 20)  # the load is on
        app.send(signal.SIGTERM)
        await asyncio.wait_for(asyncio.gather(*clients), 30)

    asyncio.run(scenario())
    assert app.wait() == 0
    assert results["reset after connect"] == 0, results
    assert results["no answer"] == 0, results
    assert results["refused"] > 0  # every client ended on a refusal once the listener closed


@pytest.mark.parametrize("target", INTEGRATIONS)
def test_a_port_in_use_is_one_line_and_exit_3_on_every_server(
    launch: Launcher, port: int, target: str
) -> None:
    # The app's port is graceful's own --health-port: the health server has it first.
    app = launch.graceful("--health-port", str(port), target, env={"PORT": str(port)})
    assert app.wait() == 3
    line = app.expect_log("cannot listen on")
    assert f"cannot listen on 127.0.0.1:{port}:" in line
    assert f"{port} is graceful's own --health-port: give the app and the health" in line
    assert "Traceback" not in app.stderr
