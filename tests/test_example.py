"""The examples: the counter's state survives a stop and a restart; the supervised
service and the workers serve and stop in order."""

from __future__ import annotations

import json
import re
import signal
import socket
import sys
from pathlib import Path

from .conftest import Launcher, poll_until, stop
from .test_workers import free_port

ROOT = Path(__file__).parent.parent


def test_counter_saves_on_sigterm_and_resumes(launch: Launcher, tmp_path: Path) -> None:
    state = tmp_path / "counter.json"
    env = {"COUNTER_STATE": str(state), "COUNTER_TICK": "0.01", "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "graceful", "--grace", "3", "examples.counter:main"]
    first = launch.command(argv, env=env)
    first.expect("jobs_done=3")
    assert stop(first) == 0
    first.expect("saved jobs_done=")  # printed by the hook, read after the exit
    saved = json.loads(state.read_text())["jobs_done"]
    assert saved >= 3
    assert first.stdout[-1].startswith(f"saved jobs_done={saved} to {state} (SIGTERM)")
    second = launch.command(argv, env=env)
    second.expect(f"counter started at jobs_done={saved}")
    assert stop(second, signal.SIGINT) == 0
    assert json.loads(state.read_text())["jobs_done"] >= saved
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".counter")] == []


def http_get(port: int) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
        return conn.makefile(encoding="utf-8").read()


def test_service_with_a_helper_and_two_workers_stops_in_order(launch: Launcher) -> None:
    port = free_port()
    env = {"PORT": str(port), "PYTHONPATH": str(ROOT)}
    app = launch.command(
        [sys.executable, "-m", "graceful", "--grace", "10", "examples.service:main"], env=env
    )
    assert poll_until(lambda: app.stderr.count(") serving") == 2, 30), app.stderr
    assert "hello from worker" in http_get(port)
    assert stop(app) == 0, app.stderr
    err = app.stderr
    assert "processes feed=0 web-0=0 web-1=0; exit code 0" in err
    # the workers (dependants) ran their hooks and exited before the feed got SIGTERM
    stopped = [re.search(rf"worker {i} \(pid \d+\) stopped after SIGTERM", err) for i in (0, 1)]
    assert all(stopped), err
    assert max(m.start() for m in stopped if m) < err.index("feed closing")


def test_workers_example_shares_one_port(launch: Launcher) -> None:
    port = free_port()
    env = {"PORT": str(port), "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "graceful", "--grace", "5", "--workers", "2"]
    app = launch.command([*argv, "examples.workers:main"], env=env)
    app.expect("serving")
    app.expect("serving")
    assert "hello from worker" in http_get(port)
    assert stop(app) == 0, app.stderr
    assert "worker-0=0 worker-1=0; exit code 0" in app.stderr
