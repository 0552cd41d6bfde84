"""``python -m graceful --workers N``: N copies of the app on one port, one grace window,
rolling restarts on SIGHUP; also as a real PID 1."""

from __future__ import annotations

import os
import re
import signal
import socket
import time
from pathlib import Path

from .conftest import (
    App,
    Launcher,
    free_port,
    gone,
    poll_until,
    sigterm_train,
    stop,
)
from .test_init import init_pid, pid1, stop_pid1


def listening(app: App, count: int) -> list[int]:
    """Wait for ``count`` more workers to say they listen; their pids."""
    pids = []
    for _ in range(count):
        app.expect("listening", timeout=30)
        pids.append(int(app.stdout[-1].split()[1]))
    return pids


def next_pid(app: App, word: str) -> int:
    """Wait for the next stdout line ``WORD PID`` of a worker; its pid."""
    app.expect(word, timeout=30)
    return int(app.stdout[-1].split()[1])


def ask(port: int) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        return int(conn.makefile().readline())


def summary(stderr: str) -> str:
    """The parent's summary (each worker's own lines say which worker wrote them)."""
    lines = [
        line for line in stderr.splitlines() if re.search(r" graceful \w+: shutdown after", line)
    ]
    assert len(lines) == 1, stderr
    return lines[0]


def test_four_workers_serve_one_port_and_stop_inside_the_grace(launch: Launcher) -> None:
    port = free_port()
    app = launch.graceful(
        "--grace", "3", "--workers", "4", "worker_server:main", env={"PORT": str(port)}
    )
    pids = listening(app, 4)
    assert len(set(pids)) == 4
    answers = [ask(port) for _ in range(40)]
    assert set(answers) <= set(pids)
    assert len(set(answers)) >= 2  # the kernel spreads connections over the listeners
    assert stop(app) == 0, app.stderr
    assert app.elapsed() < 3
    assert "worker-0=0 worker-1=0 worker-2=0 worker-3=0; exit code 0" in summary(app.stderr)
    assert sorted(e for e in app.events() if e.startswith("down")) == sorted(
        f"down {pid}" for pid in pids
    )


def test_workers_have_their_own_hooks_and_the_parent_none_of_the_app(launch: Launcher) -> None:
    app = launch.graceful("--grace", "2", "--workers", "2", "pid1_app:main")
    app.expect("ready")
    app.expect("ready")
    assert stop(app) == 0, app.stderr
    events = app.events()
    assert events.count("hook saved") == 2  # each worker ran its own hook
    app_pids = [int(e.split()[2]) for e in events if e.startswith("app pid ")]
    assert len(app_pids) == 2 and app.proc.pid not in app_pids


def test_sighup_rolling_restart_keeps_all_but_one_running(launch: Launcher) -> None:
    n = 3
    port = free_port()
    app = launch.graceful(
        "--grace", "3", "--workers", str(n), "worker_server:main", env={"PORT": str(port)}
    )
    old = listening(app, n)
    app.send(signal.SIGHUP)
    new = listening(app, n)  # one at a time: each new one starts before an old one stops
    assert poll_until(lambda: "rolling restart done" in app.stderr, 30), app.stderr
    assert set(new).isdisjoint(old)
    assert ask(port) in new
    assert stop(app) == 0, app.stderr
    # One at a time, as graceful's log tells it: worker k's new process is started,
    # then (once it says it is ready) the old one is stopped and has exited, before
    # worker k+1's turn. The new processes are the ones that listened, and they ran
    # on until the final stop. (The workers' own "listening" lines are not used for
    # the order: on a busy machine one can lag its process's start by over a second.)
    log_order = re.findall(
        r"rolling restart: (?:process 'worker-(\d)' started again, pid (\d+)"
        r"|old 'worker-(\d)' \(pid (\d+)\) exited with 0)",
        app.stderr,
    )
    assert [(a or c, "new" if a else "old") for a, _, c, _ in log_order] == [
        (str(k), kind) for k in range(n) for kind in ("new", "old")
    ], app.stderr
    assert {int(p) for a, p, _, _ in log_order if a} == set(new)
    assert {int(p) for _, _, c, p in log_order if c} == set(old)
    for k, (_, pid, _, _) in enumerate(a for a in log_order if a[0]):
        # each old one was stopped once its replacement said it was ready (READY=1)
        started = app.stderr.index(f"process 'worker-{k}' started again, pid {pid}")
        ready = app.stderr.index(f"process 'worker-{k}' is ready (pid {pid})")
        exited = app.stderr.index(f"old 'worker-{k}' (pid")
        assert started < ready < exited
    assert "restart 1 in" not in app.stderr  # no worker died and came back
    assert f"worker-{n - 1}=0; exit code 0" in summary(app.stderr)


def test_a_worker_that_keeps_crashing_stops_the_app_with_exit_1(tmp_path: Path) -> None:
    # One loop only: the backoff before failing takes most of this test's time.
    launch = Launcher(tmp_path, "asyncio")
    try:
        app = launch.graceful("--grace", "2", "--workers", "2", "worker_server:crashes")
        assert app.wait(timeout=60) == 1
        assert re.search(r"essential process 'worker-\d' failed: stopping the app", app.stderr)
        assert "(failed)" in summary(app.stderr)
        assert "is ready" not in app.stderr  # it died in main's first step: never ready
    finally:
        for each in launch.apps:
            each.close()


def test_a_worker_that_exits_0_on_its_own_stops_the_app_with_exit_0(launch: Launcher) -> None:
    app = launch.graceful("--grace", "2", "--workers", "2", "worker_server:finishes")
    assert app.wait(timeout=30) == 0, app.stderr
    assert re.search(r"essential process 'worker-\d' exited: stopping the app", app.stderr)
    assert len([e for e in app.events() if e.startswith("finished ")]) >= 1
    assert "(failed)" not in summary(app.stderr) and "(killed)" not in summary(app.stderr)


# -- as PID 1 ---------------------------------------------------------------------------


def test_workers_under_the_init_as_pid1(launch: Launcher) -> None:
    port = free_port()
    app = pid1(
        launch, "--grace", "3", "--workers", "2", "worker_server:main", env={"PORT": str(port)}
    )
    old = listening(app, 2)
    os.kill(init_pid(app), signal.SIGHUP)  # forwarded by the init to the parent
    listening(app, 2)
    assert poll_until(lambda: "rolling restart done" in app.stderr, 30), app.stderr
    assert stop_pid1(app) == 0, app.stderr
    assert app.elapsed() < 3
    assert "worker-0=0 worker-1=0; exit code 0" in summary(app.stderr)
    assert all(f"down {pid}" in app.events() for pid in old)


def test_exit_codes_stay_exact_under_the_init_as_pid1(launch: Launcher) -> None:
    app = pid1(launch, "--grace", "2", "supervised:exit_codes")
    assert app.wait() == 0, app.stderr
    assert "processes p0=0 p1=1 p2=2 p7=7 p255=255 usr1=SIGUSR1;" in app.stderr


def test_a_stubborn_supervised_process_cannot_hold_the_container(launch: Launcher) -> None:
    app = pid1(launch, "--grace", "2", "supervised:stubborn")
    app.expect("ready")
    started = time.monotonic()
    assert stop_pid1(app) == 1
    assert time.monotonic() - started < 2
    assert "timed=SIGKILL(killed) untimed=SIGKILL(killed)" in app.stderr


def test_a_train_of_sigterms_leaves_the_parents_clean_exit_code(launch: Launcher) -> None:
    app = launch.graceful(
        "--grace", "3", "--workers", "2", "worker_server:main", env={"PORT": str(free_port())}
    )
    listening(app, 2)
    assert sigterm_train(app, app.proc.pid) == 0, app.stderr
    assert summary(app.stderr).endswith("exit code 0")


def test_workers_that_cannot_load_the_app_are_not_restarted(launch: Launcher) -> None:
    wrong = launch.graceful("--workers", "2", "nosuchmod:main")
    assert wrong.wait() == 2  # the workers' own code for a wrong MODULE:ATTR
    assert "could not load nosuchmod:main (exit code 2): stopping instead of restarting" in (
        wrong.stderr
    )
    assert "restarting" not in wrong.stderr.replace("instead of restarting", "")
    broken = launch.graceful("--workers", "2", "broken_import:main")
    assert broken.wait() == 1
    assert "could not load broken_import:main (exit code 1)" in broken.stderr
    assert broken.stderr.count("ERROR: the app failed to start") <= 2  # no restarts
    assert broken.stderr.count("could not load broken_import:main") == 1  # said once


def test_ready_when_every_worker_is_and_nothing_outlives_a_killed_parent(launch: Launcher) -> None:
    from .test_health import get, port_of

    app = launch.graceful(
        "--grace", "3", "--workers", "2", "--readiness", "manual",
        "--health-port", "0", "--health-host", "127.0.0.1", "worker_server:slow",
    )  # fmt: skip
    health = port_of(app)
    waiting = [next_pid(app, "waiting") for _ in range(2)]
    answer = get(health, "/readyz?verbose")  # both workers run, neither is ready
    assert answer.status == 503 and "workers: 0 of 2 ready" in answer.raw.decode(), answer.raw
    go = launch.tmp_path / "go"
    go.touch()
    pids = listening(app, 2)
    assert sorted(pids) == sorted(waiting)
    assert poll_until(lambda: get(health, "/readyz").status == 200, 10), app.stderr
    # A worker that dies takes the app out of rotation until its replacement is ready.
    go.unlink()
    os.kill(pids[0], signal.SIGKILL)
    app.expect_log("exited with SIGKILL")
    answer = get(health, "/readyz?verbose")
    assert answer.status == 503 and "workers: 1 of 2 ready" in answer.raw.decode(), answer.raw
    replacement = next_pid(app, "waiting")
    go.touch()
    listening(app, 1)
    assert poll_until(lambda: get(health, "/readyz").status == 200, 10), app.stderr
    # SIGKILL of the parent: no stop sequence there; the kernel sends each worker
    # SIGTERM (its parent-death signal) and each stops on its own, inside its grace;
    # each worker's own lines name it, with its pid.
    workers = [pids[1], replacement]
    app.proc.kill()
    assert app.wait() == -signal.SIGKILL
    assert poll_until(lambda: all(gone(pid) for pid in workers), 10), workers
    for pid in workers:
        assert re.search(rf"graceful worker-\d\[{pid}\] INFO: SIGTERM received", app.stderr)
        assert re.search(rf"worker-\d\[{pid}\] INFO: shutdown after .*exit code 0", app.stderr)
