"""``python -m graceful probe ready|live``: against real servers, absent ones and bad usage."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import pytest

from .conftest import APPS, Launcher, assert_usage_error, minimal_env
from .test_health import port_of, start


def probe(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "graceful", "probe", *args],
        cwd=APPS,
        env={**minimal_env(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_healthy_app_exits_0_with_one_line(launch: Launcher) -> None:
    app = start(launch, "health_app:main")
    port = port_of(app)
    app.expect("ready")
    result = probe("ready", "--port", str(port))
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == '/readyz answered 200 OK: {"status": "ready"}\n'
    # the port from the environment, as the app got it; the wildcard host means loopback
    env = {"GRACEFUL_HEALTH_PORT": str(port), "GRACEFUL_HEALTH_HOST": "0.0.0.0"}
    result = probe("live", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith('/livez answered 200 OK: {"status": "alive"')
    app.send(signal.SIGTERM)
    assert app.wait() == 0


def test_not_ready_exits_1_and_says_why(launch: Launcher) -> None:
    app = start(launch, "health_app:toggles", "--readiness", "manual")
    port = port_of(app)
    app.expect("ready")
    result = probe("ready", "--port", str(port))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        'graceful probe: /readyz answered 503 Service Unavailable: {"status": "not ready",'
        ' "reasons": ["waiting for set_ready() (--readiness manual)"]}\n'
    )
    assert probe("live", "--port", str(port)).returncode == 0
    app.send(signal.SIGTERM)
    assert app.wait() == 0


def test_stopping_app_is_not_ready_but_alive(launch: Launcher) -> None:
    app = start(launch, "health_app:main", env={"HOLD": "1"})
    port = port_of(app)
    app.expect("ready")
    app.send(signal.SIGTERM)
    app.expect("hook holding")
    result = probe("ready", "--port", str(port), "--host", "127.0.0.1")
    assert result.returncode == 1
    assert '"status": "stopping"' in result.stderr
    assert probe("live", f"--port={port}").returncode == 0
    app.send(signal.SIGUSR1)
    assert app.wait() == 0


def test_draining_app_is_not_ready_but_alive(launch: Launcher) -> None:
    app = start(launch, "health_app:serves", "--drain-delay", "5", grace=10)
    port = port_of(app)
    app.expect("serving ")
    assert probe("ready", "--port", str(port)).returncode == 0
    app.send(signal.SIGTERM)
    app.expect_log("draining for 5 s")
    result = probe("ready", "--port", str(port))
    assert result.returncode == 1
    assert '"status": "stopping"' in result.stderr
    assert probe("live", "--port", str(port)).returncode == 0
    app.send(signal.SIGUSR1)  # main returns, which ends the drain
    assert app.wait() == 0


def test_blocked_loop_is_not_live(launch: Launcher) -> None:
    app = start(launch, "health_app:blocks", "--liveness-max-lag", "0.3")
    port = port_of(app)
    app.expect_log("event loop blocked for")
    result = probe("live", "--port", str(port))
    assert result.returncode == 1
    assert "answered 503 Service Unavailable" in result.stderr
    assert '"status": "event loop blocked"' in result.stderr
    (app.out / "release").write_text("")
    app.expect("unblocked")
    app.send(signal.SIGTERM)
    assert app.wait() == 0


def test_nothing_listening_exits_1() -> None:
    with socket.socket() as bound:  # holds a port nobody listens on
        bound.bind(("127.0.0.1", 0))
        port = bound.getsockname()[1]
        result = probe("ready", "--port", str(port))
    assert result.returncode == 1
    assert result.stderr == (
        f"graceful probe: /readyz unreachable at 127.0.0.1:{port}: connection refused\n"
    )


def test_server_that_never_answers_is_cut_at_the_timeout() -> None:
    with socket.socket() as silent:  # accepts (through the backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        result = probe("live", "--port", str(port), "--timeout", "0.3")
    assert result.returncode == 1
    assert result.stderr == (
        f"graceful probe: /livez unreachable at 127.0.0.1:{port}: no answer within 0.3 s\n"
    )


def test_an_answer_that_is_not_http_exits_1() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]

        def answer_garbage() -> None:
            conn, _ = server.accept()
            with conn:
                conn.recv(1024)
                conn.sendall(b"SSH-2.0-OpenSSH\r\n")

        thread = threading.Thread(target=answer_garbage)
        thread.start()
        result = probe("live", "--port", str(port))
        thread.join(30)
    assert result.returncode == 1
    assert "the answer is not HTTP: SSH-2.0-OpenSSH\\r\\n" in result.stderr


class Server:
    """A one-shot server that answers the probe with ``reply`` (a callable given the
    connection), for answers no health server gives: trickled, cut, kept open."""

    def __init__(self, reply: Callable[[socket.socket], None]) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.done = threading.Event()

        def serve() -> None:
            conn, _ = self.sock.accept()
            with conn:
                conn.recv(1024)
                try:
                    reply(conn)
                except OSError:
                    pass
                self.done.wait(30)  # hold the connection until the test is over

        self.thread = threading.Thread(target=serve, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.done.set()
        self.thread.join(30)
        self.sock.close()


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("trickled", "incomplete answer within 0.5 s (HTTP/1.1"),
        ("truncated", "incomplete answer within 0.5 s (HTTP/1.1 200, 12 bytes)"),
    ],
)
def test_only_a_whole_answer_within_the_timeout_counts(name: str, message: str) -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n" + b"x" * 40

    def trickled(conn: socket.socket) -> None:
        for byte in answer:  # 0.05 s a byte: about 4 s in all, the timeout is 0.5 s
            conn.sendall(bytes([byte]))
            time.sleep(0.05)

    def truncated(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200")
        conn.shutdown(socket.SHUT_WR)

    server = Server(trickled if name == "trickled" else truncated)
    try:
        result = probe("ready", "--port", str(server.port), "--timeout", "0.5")
    finally:
        server.close()
    assert result.returncode == 1
    assert message in result.stderr, result.stderr


def test_a_whole_answer_on_a_kept_open_connection_is_read_to_its_length() -> None:
    server = Server(lambda conn: conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
    try:
        result = subprocess.run(  # the server keeps the connection: not waited for
            [sys.executable, "-m", "graceful", "probe", "ready", "--port", str(server.port),
             "--timeout", "60"],
            cwd=APPS, capture_output=True, text=True, timeout=20,
        )  # fmt: skip
    finally:
        server.close()
    assert result.returncode == 0, result.stderr
    assert result.stdout == "/readyz answered 200 OK: ok\n"


def test_what_the_server_says_is_shown_escaped() -> None:
    hostile = b"HTTP/1.1 503 \x1b]0;owned\x07\rOK\r\nContent-Length: 5\r\n\r\n\x1b[2Jx"
    server = Server(lambda conn: conn.sendall(hostile))
    try:
        result = probe("ready", "--port", str(server.port))
    finally:
        server.close()
    assert result.returncode == 1
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr
    assert "\\x1b]0;owned\\x07\\rOK: \\x1b[2Jx" in result.stderr


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        ([], {}, "probe takes ready or live, got nothing; e.g. python -m graceful probe ready"),
        (["alive"], {}, "probe takes ready or live, got alive"),
        (["ready", "live"], {}, "probe takes ready or live, got ready live"),
        (["ready"], {}, "probe needs the health server's port: pass --port PORT or set"),
        (["ready"], {"GRACEFUL_HEALTH_PORT": "http"}, "GRACEFUL_HEALTH_PORT must be a port"),
        (["ready", "--port", "abc"], {}, "--port must be a port number from 1 to 65535, got 'abc'"),
        (["ready", "--port", "70000"], {}, "--port must be a port number from 1 to 65535"),
        (["ready", "--port", "0"], {}, "probe cannot ask port 0 (any free port)"),
        (["ready", "--port"], {}, "--port needs a value"),
        (["ready", "--port", "1", "--timeout", "0"], {}, "--timeout must be more than 0 and at"),
        (["ready", "--port", "1", "--timeout", "soon"], {}, "got 'soon'; use e.g. --timeout 2"),
        (["ready", "--verbose"], {}, "unknown probe option '--verbose'"),
    ],
)
def test_bad_usage_exits_2_with_one_line(
    args: list[str], env: dict[str, str], message: str
) -> None:
    result = probe(*args, env=env)
    assert_usage_error(result, message)


def test_help() -> None:
    result = probe("--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage: python -m graceful probe ready|live")
    main_help = subprocess.run(
        [sys.executable, "-m", "graceful", "--help"], capture_output=True, text=True, timeout=30
    )
    assert "python -m graceful probe ready|live" in main_help.stdout


def test_a_long_page_from_another_server_is_cut_short() -> None:
    page = b"<html>" + b"x" * 5000 + b"</html>"
    head = b"HTTP/1.1 404 Not Found\r\nContent-Length: %d\r\n\r\n" % len(page)
    server = Server(lambda conn: conn.sendall(head + page))
    try:
        result = probe("ready", "--port", str(server.port))
    finally:
        server.close()
    assert result.returncode == 1
    assert result.stderr.rstrip().endswith("...") and len(result.stderr) < 400, result.stderr
