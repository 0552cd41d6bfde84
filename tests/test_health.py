"""The health server: real processes, real sockets, both loops.

The port is 0 (any free one) and read from the app's log line, so parallel test runs
on one machine cannot collide.
"""

from __future__ import annotations

import http.client
import json
import os
import select
import signal
import socket
import sys
import threading
import time
from typing import Any

import pytest

from .conftest import App, Launcher, poll_until, stop

LISTENING = "health server listening on http://127.0.0.1:"


def start(
    launch: Launcher,
    target: str,
    *args: str,
    grace: float = 3.0,
    env: dict[str, str] | None = None,
) -> App:
    return launch.graceful(
        *("--grace", str(grace), "--health-port", "0", "--health-host", "127.0.0.1"),
        *args,
        target,
        env=env,
    )


def port_of(app: App) -> int:
    line = app.expect_log(LISTENING)
    return int(line.split(LISTENING, 1)[1].split()[0])


class Answer:
    def __init__(self, status: int, headers: dict[str, str], raw: bytes) -> None:
        self.status, self.headers, self.raw = status, headers, raw

    @property
    def body(self) -> Any:
        return json.loads(self.raw)


def get(port: int, path: str, method: str = "GET") -> Answer:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        raw = response.read()
        headers = {k.lower(): v for k, v in response.getheaders()}
        return Answer(response.status, headers, raw)
    finally:
        conn.close()


def raw_exchange(port: int, data: bytes) -> bytes:
    """Send ``data`` as is; everything the server sends back until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        try:
            sock.sendall(data)
        except OSError:  # the server may close before it has read everything
            pass
        return read_all(sock)


def read_all(sock: socket.socket) -> bytes:
    answer = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return answer
        if not chunk:
            return answer
        answer += chunk


# -- readiness and liveness through the life of the app ----------------------------------


def test_readyz_is_503_while_the_app_imports_then_200_once_main_runs(launch: Launcher) -> None:
    app = start(launch, "health_import:main")
    port = port_of(app)
    app.expect("importing")  # the import waits for a line on stdin: main has not started
    answer = get(port, "/readyz?verbose")
    assert (answer.status, answer.body) == (
        503,
        {"status": "not ready", "reasons": ["main is not running"]},
    )
    assert get(port, "/livez").status == 200  # starting is not dead
    app.write("go\n")
    app.expect("ready")
    assert app.wait() == 0  # this main returns at once


def test_ready_while_main_runs_and_503_through_the_whole_stop(launch: Launcher) -> None:
    app = start(launch, "health_app:main", env={"HOLD": "1"})
    port = port_of(app)
    app.expect("ready")
    answer = get(port, "/readyz?verbose")
    assert (answer.status, answer.body) == (200, {"status": "ready"})
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["connection"] == "close"
    live = get(port, "/livez")
    assert live.status == 200 and live.body["status"] == "alive"
    assert 0 <= live.body["loop_lag_s"] < 3

    app.send(signal.SIGTERM)
    app.expect("hook holding")  # phase 4: the shutdown is under way and held here
    answer = get(port, "/readyz?verbose")
    assert (answer.status, answer.body) == (
        503,
        {"status": "stopping", "reasons": ["shutting down"]},
    )
    assert get(port, "/livez").status == 200  # a stopping app is alive: no restart
    app.send(signal.SIGUSR1)
    assert app.wait() == 0
    assert app.elapsed() < 3
    with pytest.raises(ConnectionRefusedError):  # closed in phase 6, with the process
        get(port, "/livez")


def test_readiness_drops_at_the_signal_even_while_the_loop_is_blocked(launch: Launcher) -> None:
    """The stop is recorded by the signal handler, before the loop runs anything."""
    app = start(launch, "health_app:blocks", "--liveness-max-lag", "60")
    port = port_of(app)
    app.expect("ready")  # main now blocks the loop thread in time.sleep
    assert get(port, "/readyz?verbose").status == 200  # blocked, but not for 60 s: still ready
    app.send(signal.SIGTERM)
    # The loop thread cannot run a phase before $OUT/release exists, so a 503 now comes
    # from the signal handler alone. Only /readyz shows when the handler has run: poll it.
    assert poll_until(lambda: get(port, "/readyz?verbose").status == 503, 20)
    assert get(port, "/readyz?verbose").body["status"] == "stopping"
    assert get(port, "/livez").status == 200
    (app.out / "release").write_text("")
    assert app.wait() == 0
    assert app.events() == ["unblocked"]


def test_manual_readiness_and_set_ready_false(launch: Launcher) -> None:
    app = start(launch, "health_app:toggles", "--readiness", "manual")
    port = port_of(app)
    app.expect("ready")
    answer = get(port, "/readyz?verbose")
    assert answer.status == 503
    assert answer.body["reasons"] == ["waiting for set_ready() (--readiness manual)"]
    app.send(signal.SIGUSR1)
    app.expect("set_ready(True)")
    assert get(port, "/readyz?verbose").status == 200
    app.send(signal.SIGUSR2)
    app.expect("set_ready(False)")
    answer = get(port, "/readyz?verbose")
    assert (answer.status, answer.body["reasons"]) == (503, ["set_ready(False) was called"])
    app.send(signal.SIGUSR1)
    app.expect("set_ready(True)")
    assert get(port, "/readyz?verbose").status == 200
    assert stop(app) == 0


def test_the_apps_switch_interval_is_its_own_again_after_the_probes(launch: Launcher) -> None:
    # While the server has work, its helper thread lowers the interpreter's switch
    # interval so that a busy loop hands it the GIL soon (see _health/gil.py); the app's
    # own value must come back once the probes are answered.
    app = start(launch, "health_app:own_switch_interval")
    port = port_of(app)
    app.expect("ready")
    for _ in range(20):
        assert get(port, "/readyz").status == 200
    app.write("check\n")
    assert app.wait() == 0, app.stderr
    assert app.events() == ["interval 0.01"]


def test_set_ready_false_in_auto_mode(launch: Launcher) -> None:
    app = start(launch, "health_app:toggles")
    port = port_of(app)
    app.expect("ready")
    assert get(port, "/readyz?verbose").status == 200
    app.send(signal.SIGUSR2)
    app.expect("set_ready(False)")
    assert get(port, "/readyz?verbose").status == 503
    assert stop(app) == 0


def test_a_flood_of_idle_connections_never_drops_a_probe_being_answered(
    launch: Launcher,
) -> None:
    app = start(launch, "health_checks:main")
    port = port_of(app)
    app.expect("ready")
    (app.out / "database").write_text("slow")  # 0.4 s: the probe waits for it
    with socket.create_connection(("127.0.0.1", port), timeout=10) as probe:
        probe.sendall(b"GET /readyz HTTP/1.1\r\nHost: test\r\n\r\n")
        # Accepted first (it connected first) and read with its connection: the checks
        # run for it while three tables' worth of idle connections arrive.
        flood = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(200)]
        try:
            answer = read_all(probe)
        finally:
            for each in flood:
                each.close()
    assert answer.startswith(b"HTTP/1.1 200 "), answer
    assert stop(app) == 0


def test_set_ready_during_a_stop_does_not_make_the_app_ready_again(launch: Launcher) -> None:
    app = start(launch, "health_app:toggles", "--drain-delay", "3", grace=8)
    port = port_of(app)
    app.expect("ready")
    app.send(signal.SIGTERM)
    app.expect_log("draining for 3 s")  # main still runs: its handlers too
    app.send(signal.SIGUSR1)
    app.expect("set_ready(True)")
    answer = get(port, "/readyz?verbose")
    assert (answer.status, answer.body["status"]) == (503, "stopping")
    assert app.wait() == 0


def test_the_oldest_idle_connection_is_dropped_for_a_new_one_past_64(launch: Launcher) -> None:
    app = start(launch, "health_app:main")
    port = port_of(app)
    app.expect("ready")
    first = socket.create_connection(("127.0.0.1", port), timeout=10)
    others = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(70)]
    try:
        # Dropped without a word when the 65th came, not answered 408 after 3 s.
        assert read_all(first) == b""
        assert get(port, "/livez").status == 200  # and the server still answers
    finally:
        for each in (first, *others):
            each.close()
    assert stop(app) == 0


def test_readiness_checks_by_name(launch: Launcher) -> None:
    app = start(launch, "health_checks:main")
    port = port_of(app)
    app.expect("ready")
    database = app.out / "database"
    answer = get(port, "/readyz?verbose")
    assert (answer.status, answer.body) == (
        200,
        {"status": "ready", "checks": {"database": "ok", "cache": "ok"}},
    )

    database.write_text("fail")
    answer = get(port, "/readyz?verbose")
    assert answer.status == 503
    assert answer.body == {
        "status": "not ready",
        "reasons": ["check 'database' failed: ConnectionRefusedError"],
        "checks": {"database": "failed: ConnectionRefusedError", "cache": "ok"},
    }
    assert b"hunter2" not in answer.raw and b"Traceback" not in answer.raw
    assert get(port, "/readyz").body == {"status": "not ready"}  # details only if asked
    app.expect_log("readiness check 'database' failed: ConnectionRefusedError")
    app.expect_log("ConnectionRefusedError: database down")  # the traceback: in the log only

    database.write_text("false")
    assert get(port, "/readyz?verbose").body["checks"]["database"] == "failed: returned False"
    database.write_text("hang")
    answer = get(port, "/readyz?verbose")
    assert answer.status == 503
    assert answer.body["checks"] == {"database": "timed out after 0.5 s", "cache": "ok"}

    database.write_text("ok")
    assert get(port, "/readyz?verbose").status == 200
    app.expect_log("readiness check 'database' passes again")
    assert app.stderr.count("readiness check 'database' failed") == 1  # once per failing stretch
    assert stop(app) == 0


def test_metrics_follow_readiness_a_crash_loop_and_a_blocked_loop(launch: Launcher) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    app = start(launch, "health_app:measured", "--metrics", "on")
    port = port_of(app)
    app.expect("ready")

    def scrape() -> dict[str, float]:
        answer = get(port, "/metrics")
        assert answer.status == 200 and answer.headers["content-type"].startswith("text/plain")
        values = {}
        for family in text_string_to_metric_families(answer.raw.decode()):
            for sample in family.samples:
                labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                values[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
        return values

    first = scrape()
    assert first["graceful_stopping"] == 0 and first["process_open_fds"] > 0
    assert first["process_resident_memory_bytes"] > 1e6 and first["process_max_fds"] > 0
    # A readiness flip: the check fails (counted once per failed run), then passes.
    (app.out / "down").touch()
    assert get(port, "/readyz").status == 503
    assert scrape()["graceful_readiness_check_failures_total{check=db}"] == 1
    (app.out / "down").unlink()
    assert get(port, "/readyz").status == 200
    # The crash loop: restarts counted, and never up.
    assert poll_until(lambda: scrape()["graceful_supervised_restarts_total{name=crashy}"] >= 3, 20)
    assert scrape()["graceful_supervised_up{name=crashy}"] == 0
    # A blocked loop: the lag grows while it is blocked, and its worst stays after.
    app.write("block\n")
    app.expect("blocking")
    assert poll_until(lambda: scrape()["graceful_loop_lag_seconds"] > 0.5, 20)
    (app.out / "release").touch()
    app.expect("unblocked")
    after = scrape()
    assert after["graceful_loop_lag_max_seconds"] > 0.5
    assert after["graceful_ready"] == 1 and after["graceful_requests_in_flight"] == 0
    assert stop(app) == 0, app.stderr


# -- the drain delay ----------------------------------------------------------------------


def test_drain_delay_keeps_main_serving_while_readyz_fails(launch: Launcher) -> None:
    grace = 10.0
    app = start(launch, "health_app:serves", "--drain-delay", "5", grace=grace)
    port = port_of(app)
    app.expect("serving ")
    app_port = int(app.stdout[-1].split()[1])
    assert get(port, "/readyz?verbose").status == 200
    assert ask(app_port) == "served, sequence not started"

    app.send(signal.SIGTERM)
    app.expect_log("draining for 5 s")
    answer = get(port, "/readyz?verbose")
    assert (answer.status, answer.body["status"]) == (503, "stopping")
    assert get(port, "/livez").status == 200
    assert ask(app_port) == "served, sequence not started"  # main still serves

    app.send(signal.SIGUSR1)  # main returns: the sequence need not wait for the delay
    assert app.wait() == 0
    assert app.elapsed() < grace
    assert "main finished during the drain delay; starting the sequence now" in app.stderr
    assert app.events() == ["main returned"]


def test_drain_delay_runs_out_and_the_stop_ends_inside_the_grace(launch: Launcher) -> None:
    grace = 2.0
    app = start(launch, "health_app:main", "--drain-delay", "0.5", grace=grace, env={"HOLD": "1"})
    port = port_of(app)
    app.expect("ready")
    app.send(signal.SIGTERM)
    app.expect_log("draining for 0.5 s")
    assert get(port, "/readyz?verbose").status == 503
    app.expect("hook holding")  # the delay ran out, the sequence reached phase 4
    assert get(port, "/readyz?verbose").status == 503  # still answered, still failing
    app.send(signal.SIGUSR1)
    assert app.wait() == 0
    assert 0.5 <= app.elapsed() < grace
    err = app.stderr
    assert err.index("draining for 0.5 s") < err.index("phase 1/6")


def ask(port: int) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        return read_all(sock).decode().strip()


# -- HTTP ----------------------------------------------------------------------------------


def test_head_query_strings_wrong_paths_and_methods(launch: Launcher) -> None:
    app = start(launch, "health_app:main")
    port = port_of(app)
    app.expect("ready")
    full = get(port, "/readyz?verbose")
    head = get(port, "/readyz", "HEAD")
    assert (head.status, head.raw) == (200, b"")
    assert head.headers["content-length"] == full.headers["content-length"]
    assert get(port, "/livez?verbose=1").status == 200
    missing = get(port, "/healthz")
    assert (missing.status, missing.body["error"]) == (
        404,
        "not found; the paths are /livez and /readyz",
    )
    assert get(port, "/", "HEAD").status == 404
    for method in ("POST", "DELETE", "OPTIONS"):
        answer = get(port, "/livez", method)
        assert answer.status == 405
        assert answer.headers["allow"] == "GET, HEAD"
    assert stop(app) == 0


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", b"400"),  # TLS hello
        (b"GET /livez HTTP/1.1\r\n\r\n", b"400"),  # no Host
        (b"GET /livez\r\nHost: x\r\n\r\n", b"400"),  # HTTP/0.9 form
        (
            b"GET /livez HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"400",
        ),
        (b"GET /livez HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", b"400"),
        (b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\n", b"431"),
        (b"GET /livez HTTP/1.1\r\nHost: x\r\n" + b"X: y\r\n" * 2000 + b"\r\n", b"431"),
    ],
)
def test_malformed_requests_get_4xx_and_the_server_goes_on(
    launch: Launcher, request_bytes: bytes, status: bytes
) -> None:
    app = start(launch, "health_app:main")
    port = port_of(app)
    app.expect("ready")
    answer = raw_exchange(port, request_bytes)
    assert answer.startswith(b"HTTP/1.1 " + status + b" "), answer
    assert b"Traceback" not in answer
    assert get(port, "/livez").status == 200
    assert stop(app) == 0


def test_a_request_body_is_ignored_and_the_answer_arrives(launch: Launcher) -> None:
    app = start(launch, "health_app:main")
    port = port_of(app)
    app.expect("ready")
    body = b"x" * 50_000  # unread input when the server closes: needs the lingering close
    request = b"GET /livez HTTP/1.1\r\nHost: x\r\nContent-Length: 50000\r\n\r\n" + body
    assert raw_exchange(port, request).startswith(b"HTTP/1.1 200 OK\r\n")
    assert stop(app) == 0


# -- the loop-lag watchdog --------------------------------------------------------------------


def test_blocked_loop_fails_livez_and_the_log_names_the_coroutine(launch: Launcher) -> None:
    app = start(launch, "health_app:blocks", "--liveness-max-lag", "0.3")
    port = port_of(app)
    app.expect("ready")
    warning = app.expect_log("event loop blocked for")
    assert "WARNING" in warning
    assert "more than --liveness-max-lag 0.3 s" in warning
    assert "coroutine stuck_in_sleep (" in warning
    app.expect_log("health_app.py")  # the stack of the loop thread follows
    answer = get(port, "/livez")  # still blocked: nothing has released it yet
    assert answer.status == 503
    assert answer.body["status"] == "event loop blocked"
    assert answer.body["loop_lag_s"] > 0.3
    assert answer.body["max_lag_s"] == 0.3
    assert b"stuck_in_sleep" not in answer.raw  # stacks go to the log only
    ready = get(port, "/readyz?verbose")
    assert ready.status == 503 and ready.body["reasons"][0].startswith("event loop blocked for")

    (app.out / "release").write_text("")
    app.expect("unblocked")
    recovered = app.expect_log("event loop responsive again; it was blocked for")
    assert "INFO" in recovered
    assert get(port, "/livez").status == 200
    assert get(port, "/readyz?verbose").status == 200
    assert stop(app) == 0
    assert app.stderr.count("event loop blocked for") == 1  # one WARNING per episode
    stack = app.stderr.split("Stack of the loop thread:\n", 1)[1].split(" graceful INFO")[0]
    assert "health_app.py" in stack.splitlines()[0]  # from the app's first frame...
    assert "runpy" not in stack and "graceful/_" not in stack  # ...not runpy's, not ours


def test_blocked_in_a_plain_function_names_it_and_its_coroutine(launch: Launcher) -> None:
    app = start(launch, "health_app:blocks_in_helper", "--liveness-max-lag", "0.3")
    port = port_of(app)
    warning = app.expect_log("event loop blocked for")
    assert "in wait_for_release (" in warning
    assert "called from coroutine blocks_in_helper (" in warning
    assert get(port, "/livez").status == 503
    (app.out / "release").write_text("")
    app.expect("unblocked")
    app.expect_log("event loop responsive again")
    assert stop(app) == 0


# -- abuse -----------------------------------------------------------------------------------


def ticks(app: App) -> int:
    """How often the app's 10 ms timer has fired (asked through SIGUSR2)."""
    app.send(signal.SIGUSR2)
    before = len(app.stdout)
    app.expect("ticks ")
    return int(app.stdout[before:][-1].split()[1])


def open_idle(port: int, count: int) -> list[socket.socket]:
    return [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(count)]


def partial_request(port: int) -> list[socket.socket]:
    """Slowloris: a request head begun and never finished, the connection held open."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    return [sock]


def huge_request_line(port: int) -> list[socket.socket]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        sock.sendall(b"GET /" + b"a" * 1_000_000)
    except OSError:  # closed by the server after 8 KiB: expected
        pass
    return [sock]


def garbage(port: int) -> list[socket.socket]:
    socks = []
    for seed in range(20):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        try:
            sock.sendall(bytes((seed * 31 + i * 7) % 256 for i in range(3000)))
        except OSError:
            pass
        socks.append(sock)
    return socks


def reset_mid_request(port: int) -> list[socket.socket]:
    for _ in range(20):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(b"GET /readyz HTTP/1.1\r\nHo")
        # SO_LINGER 0: close() sends a RST instead of a FIN
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()
    return []


ABUSE = {
    "500 idle connections": lambda port: open_idle(port, 500),
    "partial request held open": partial_request,
    "1 MB request line": huge_request_line,
    "garbage": garbage,
    "reset mid-request": reset_mid_request,
}


@pytest.mark.parametrize("abuse", ABUSE)
def test_abuse_cannot_stall_the_loop_or_the_stop(launch: Launcher, abuse: str) -> None:
    grace = 5.0  # the stop takes milliseconds; the margin is for a loaded test machine
    app = launch.graceful(
        "--grace", str(grace), "--health-port", "0", "--health-host", "127.0.0.1",
        "health_app:ticker",
    )  # fmt: skip
    port = port_of(app)
    app.expect("ready")
    before = ticks(app)
    held = ABUSE[abuse](port)
    try:
        assert get(port, "/livez").status == 200  # the kubelet still gets through
        assert get(port, "/readyz?verbose").status == 200
        assert poll_until(lambda: ticks(app) > before, 20)  # its timer kept firing
        assert stop(app) == 0, app.stderr  # with the abusive connections still open
        assert app.elapsed() < grace, app.stderr
    finally:
        for sock in held:
            sock.close()


def test_one_byte_at_a_time_is_cut_at_the_header_timeout(launch: Launcher) -> None:
    app = start(launch, "health_app:ticker")
    port = port_of(app)
    app.expect("ready")
    before = ticks(app)
    request = b"GET /livez HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: y\r\n" * 1000
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sent = 0
        end = time.monotonic() + 20
        # One byte per 0.2 s until the server answers (it must, at HEADER_TIMEOUT = 3 s).
        while not select.select([sock], [], [], 0.2)[0]:
            assert time.monotonic() < end, "the server never cut the slow request"
            sock.sendall(request[sent : sent + 1])
            sent += 1
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert 1 < sent < len(request)
    assert poll_until(lambda: ticks(app) > before, 20)
    assert stop(app) == 0


# -- bad options ------------------------------------------------------------------------------


def test_port_in_use_is_a_usage_error_before_the_app_is_imported(launch: Launcher) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        app = launch.graceful(
            "--health-port", str(port), "--health-host", "127.0.0.1", "health_app:modules"
        )
        assert app.wait() == 2
    assert app.stderr.splitlines() == [
        f"graceful: error: --health-port {port}: the port is already in use on 127.0.0.1;"
        " stop what listens there or choose another port"
    ]
    assert app.events() == []  # the app was never imported


def test_address_not_of_this_machine_is_a_usage_error(launch: Launcher) -> None:
    app = launch.graceful(
        "--health-port", "0", "--health-host", "192.0.2.1", "health_app:modules"
    )  # 192.0.2.0/24: reserved for documentation, never assigned
    assert app.wait() == 2
    lines = app.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("graceful: error: --health-host 192.0.2.1: not an address")


def test_env_variables_configure_the_server(launch: Launcher) -> None:
    app = launch.graceful(
        "health_app:main",
        env={"GRACEFUL_HEALTH_PORT": "0", "GRACEFUL_HEALTH_HOST": "127.0.0.1"},
    )
    port = port_of(app)
    app.expect("ready")
    assert get(port, "/readyz?verbose").status == 200
    assert stop(app) == 0


def test_health_server_off_costs_no_import(launch: Launcher) -> None:
    app = launch.graceful("health_app:modules")
    assert app.wait() == 0
    assert app.events() == ["[]"]
    app = start(launch, "health_app:modules")
    assert app.wait() == 0
    assert json.loads(app.events()[1]) == [
        "h11",
        "graceful._health.server",
        "graceful._health.lag",
        "graceful._health.checks",
        "graceful._health.gil",
    ]


def test_in_process_run_releases_the_port_and_its_threads() -> None:
    import graceful
    from graceful._core import runtime as _runtime

    names = {"graceful-health", "graceful-health-gil", "graceful-loop-lag"}
    seen: list[int] = []
    ours: list[threading.Thread] = []

    async def main() -> None:
        run = _runtime.current()
        assert run is not None and run.health is not None
        port = run.health.address[1]
        seen.append(port)
        ours.extend(t for t in threading.enumerate() if t.name in names)
        import asyncio

        await asyncio.sleep(0)  # ready (auto) once main has reached an await
        answer = await asyncio.to_thread(get, port, "/readyz")
        seen.append(answer.status)

    assert graceful.run(main, grace=2, loop="asyncio", health_port=0, health_host="127.0.0.1") == 0
    port, status = seen
    assert status == 200
    assert {t.name for t in ours} == names  # all running while main ran
    for thread in ours:  # told to stop in phase 6; on a busy machine it may take a moment
        thread.join(10)
    assert not [t.name for t in ours if t.is_alive()]
    with pytest.raises(ConnectionRefusedError):
        get(port, "/livez")


def test_probe_module_imports_no_asyncio() -> None:
    import subprocess

    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "graceful", "probe", "live", "--port", "1"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1  # nothing listens on port 1
    imported = {
        line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if "|" in line
    }
    assert "graceful._probe" in imported
    assert not imported & {"asyncio", "json", "http.client", "urllib.request", "h11"}


# -- as PID 1 ---------------------------------------------------------------------------------


def test_stop_as_pid1_serves_503_until_the_exit(launch: Launcher) -> None:
    from .test_init import UNSHARE, init_pid

    app = launch.command(
        [*UNSHARE, sys.executable, "-m", "graceful", "--grace", "3", "--health-port", "0"]
        + ["--health-host", "127.0.0.1", "health_app:main"],
        env={"HOLD": "1"},
    )
    port = port_of(app)  # the namespace has its own pids, not its own network
    app.expect("ready")
    assert get(port, "/readyz?verbose").status == 200
    init = init_pid(app)
    os.kill(init, signal.SIGTERM)
    app.signalled_at = time.monotonic()
    app.expect("hook holding")
    answer = get(port, "/readyz?verbose")
    assert (answer.status, answer.body["status"]) == (503, "stopping")
    assert get(port, "/livez").status == 200
    os.kill(init, signal.SIGUSR1)  # forwarded by the init: the hook lets the stop finish
    assert app.wait() == 0
    assert app.elapsed() < 3
    assert app.events() == ["hook released"]
