"""The examples: the counter's state survives a stop and a restart; the supervised
service and the workers serve and stop in order."""

from __future__ import annotations

import json
import random
import re
import signal
import socket
import sys
import time
from pathlib import Path

import pytest

from .conftest import Launcher, free_port, poll_until, stop
from .test_init import UNSHARE

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


def counter_env(state: Path, **extra: str) -> dict[str, str]:
    return {"COUNTER_STATE": str(state), "COUNTER_TICK": "0.01", "PYTHONPATH": str(ROOT), **extra}


def temporaries(state: Path) -> list[str]:
    return sorted(p.name for p in state.parent.iterdir() if p.name.startswith(f".{state.name}."))


@pytest.mark.parametrize("stop_at", ["import", "end", "main"])
@pytest.mark.parametrize("as_pid1", [False, True], ids=["app", "pid1"])
def test_a_stop_during_start_up_never_loses_the_saved_state(
    launch: Launcher, tmp_path: Path, stop_at: str, as_pid1: bool
) -> None:
    state = tmp_path / "counter.json"
    state.write_text(json.dumps({"jobs_done": 500}))
    env = counter_env(state, STOP_AT=stop_at, PID1="1" if as_pid1 else "0")
    argv = [sys.executable, "-m", "graceful", "--grace", "3", "counter_startup:main"]
    app = launch.command([*UNSHARE, *argv] if as_pid1 else argv, env=env)
    assert app.wait() == 0
    assert f"stopped at {stop_at}" in app.stdout_all()
    assert json.loads(state.read_text()) == {"jobs_done": 500}
    assert temporaries(state) == []
    if stop_at == "main":  # main started: the hook ran, and saved nothing unloaded
        assert "state not loaded yet" in app.stdout_all()
    else:  # main never started: the hook was skipped
        assert "hooks ['save_state'] were skipped" in app.stderr


def test_stale_temporaries_are_removed_at_start(launch: Launcher, tmp_path: Path) -> None:
    state = tmp_path / "counter.json"
    state.write_text(json.dumps({"jobs_done": 7}))
    for name in (".counter.json.a1b2c3", ".counter.json.zz9"):
        (tmp_path / name).write_text("{half a wri")
    argv = [sys.executable, "-m", "graceful", "--grace", "3", "examples.counter:main"]
    app = launch.command(argv, env=counter_env(state))
    app.expect("removed 2 unfinished temporary file(s)")
    app.expect("counter started at jobs_done=7")
    assert stop(app) == 0
    assert temporaries(state) == []
    assert json.loads(state.read_text())["jobs_done"] >= 7


def test_sigkill_at_any_moment_leaves_the_old_or_the_new_file(
    launch: Launcher, tmp_path: Path
) -> None:
    """Start/stop cycles with a SIGKILL at a random moment of the stop (often in the
    middle of the hook's write): the file is always whole and the count never goes back."""
    state = tmp_path / "counter.json"
    rng = random.Random(1234)
    argv = [sys.executable, "-m", "graceful", "--grace", "3", "examples.counter:main"]
    # A first run stopped cleanly writes the file, so every later cycle has an old file
    # to keep (whether a SIGKILL lands before, inside or after the write is up to the
    # machine's speed; what must hold is the same in every case).
    first = launch.command(argv, env=counter_env(state))
    first.expect("jobs_done=1")
    assert stop(first) == 0
    last = json.loads(state.read_text())["jobs_done"]
    assert last >= 1
    for _ in range(12):
        app = launch.command(argv, env=counter_env(state))
        app.expect(f"counter started at jobs_done={last}")
        app.expect("jobs_done=")  # one more job done
        app.send(signal.SIGTERM)
        delay_ms = rng.uniform(0, 15)
        end = time.monotonic() + delay_ms / 1000
        while time.monotonic() < end and app.proc.poll() is None:
            pass  # a busy wait: the SIGKILL lands at a random point of the stop
        app.proc.kill()
        app.wait()
        count = json.loads(state.read_text())["jobs_done"]  # there, whole, never torn
        assert count >= last
        last = count
    # The next start cleans up what the SIGKILLs cut short.
    app = launch.command(argv, env=counter_env(state))
    app.expect("counter started at jobs_done=")
    assert temporaries(state) == []
    assert stop(app) == 0


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
