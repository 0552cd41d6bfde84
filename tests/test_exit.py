"""After the sequence: the interpreter's exit stays inside the window, a late signal
does not change the exit code, and graceful's log survives the app's logging set-up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from .conftest import APPS, Launcher, sigterm_train, stop
from .test_init import UNSHARE, init_pid


def test_dictconfig_does_not_silence_graceful(launch: Launcher) -> None:
    app = launch.graceful("--grace", "2", "exits:dict_config")
    app.expect("ready")
    assert stop(app) == 1
    assert "disabled the 'graceful' logger" in app.stderr
    assert "SIGTERM received: shutting down within 2 s" in app.stderr  # the first line too
    assert "hook 'dict_config.<locals>.fails' raised RuntimeError" in app.stderr
    assert "exit code 1" in app.stderr.rstrip().splitlines()[-1]


def test_a_blocking_atexit_handler_cannot_overrun_the_window(launch: Launcher) -> None:
    app = launch.graceful("--grace", "1.5", "exits:blocking_atexit")
    app.expect("ready")
    assert stop(app) == 1
    assert app.elapsed() < 1.5
    assert "while the interpreter exited" in app.stderr


def test_sigterm_after_the_summary_keeps_the_logged_exit_code(launch: Launcher) -> None:
    app = launch.graceful("--grace", "5", "exits:waits_in_atexit")
    app.expect("ready")
    app.send(signal.SIGTERM)
    app.expect("in atexit")  # the summary (exit code 0) is logged; the interpreter exits
    app.send(signal.SIGTERM)
    app.write("go\n")
    assert app.wait() == 0
    assert app.events() == ["atexit done"]
    assert "exit code 0" in app.stderr


def test_run_as_pid1_warns_that_no_init_runs(launch: Launcher) -> None:
    app = launch.command([*UNSHARE, sys.executable, str(APPS / "programmatic.py"), launch.loop])
    app.expect("ready")
    app.expect_stderr("graceful.run() is PID 1 but runs no init")  # stderr is another pipe
    app.proc.send_signal(signal.SIGKILL)  # unshare --kill-child takes the namespace down
    app.wait()


@pytest.mark.parametrize("pid1", [False, True], ids=["plain", "pid1"])
def test_a_train_of_sigterms_leaves_the_clean_exit_code(launch: Launcher, pid1: bool) -> None:
    args = ["-m", "graceful", "--grace", "5", "idle:main"]
    app = launch.command([*UNSHARE, sys.executable, *args] if pid1 else [sys.executable, *args])
    app.expect("ready")
    code = sigterm_train(app, init_pid(app) if pid1 else app.proc.pid)
    assert code == 0, app.stderr
    # The summary gives that code (the train's "received again" lines may follow it).
    summaries = [line for line in app.stderr.splitlines() if "shutdown after" in line]
    assert len(summaries) == 1 and summaries[0].endswith("exit code 0"), app.stderr


def test_a_file_the_app_never_closed_is_flushed_at_exit(launch: Launcher) -> None:
    # graceful freezes the collector's view of what it and the standard library made
    # before the app's import (a faster exit); the app's own objects, those in
    # reference cycles included, are still collected and finalized at exit.
    app = launch.graceful("--grace", "3", "exits:unflushed_file")
    app.expect("ready")
    assert stop(app) == 0
    assert (launch.tmp_path / "unflushed").read_text() == "written before the stop\n"
    assert (launch.tmp_path / "in_a_cycle").read_text() == "held in a cycle\n"
    assert "object in a cycle finalized" in app.stderr
    assert app.events() == ["collector on: True"]  # off for graceful's start only


@pytest.mark.parametrize("how", ["plain", "health", "pid1"])
def test_out_of_descriptors_the_sequence_and_its_hooks_still_run(
    launch: Launcher, port: int, how: str
) -> None:
    args = ["-m", "graceful", "--grace", "3", "leaky:main"]
    if how == "health":
        args[2:2] = ["--health-port", str(port)]
    limit = ["prlimit", "--nofile=128"]
    pid1 = how == "pid1"
    app = launch.command(
        [*limit, *UNSHARE, sys.executable, *args] if pid1 else [*limit, sys.executable, *args]
    )
    app.expect("out of descriptors: Too many open files")
    app.expect("ready")
    if how == "health":  # the server cannot accept this probe: it says so once, not 10/s
        probe = [sys.executable, "-m", "graceful", "probe", "live", "--port", str(port)]
        result = subprocess.run([*probe, "--timeout", "0.6"], capture_output=True, timeout=30)
        assert result.returncode == 1
        app.expect_log("health server: cannot accept (Too many open files")
    if pid1:
        os.kill(init_pid(app), signal.SIGTERM)
        code = app.wait()
    else:
        code = stop(app)
    assert code == 0, app.stderr
    assert app.events() == ["hook saved"]
    assert "hooks ok 1 ['save_state']" in app.stderr
    assert app.stderr.count("cannot accept") <= 1


def test_out_of_descriptors_with_the_loop_blocked_the_watchdog_still_ends_it(
    launch: Launcher,
) -> None:
    # The stop path never loaded (no descriptor for its import) and the loop never
    # runs again to free the spare: the watchdog must still end the process.
    app = launch.command(
        [
            "prlimit",
            "--nofile=128",
            sys.executable,
            "-m",
            "graceful",
            "--grace",
            "1",
            "leaky:blocks",
        ]
    )
    app.expect("ready")
    assert stop(app) == 1, app.stderr
    assert "the main thread at the deadline" in app.stderr and "time.sleep" in app.stderr
    assert "with the shutdown still running" in app.stderr
    assert "did not run" in app.stderr  # the hook that never ran is named


def test_an_exit_code_above_255_is_mapped_and_the_summary_says_so(launch: Launcher) -> None:
    app = launch.graceful("exits:returns_300")
    assert app.wait() == 44
    assert "exit code 300 is not an exit status (0 to 255): the process exits with 44" in app.stderr
    last = app.stderr.rstrip().splitlines()[-1]
    assert last.endswith("exit code 44") and " ERROR: shutdown after" in last  # level: the code


@pytest.mark.parametrize("pid1", [False, True], ids=["plain", "pid1"])
def test_a_stop_signal_of_the_users_choice_runs_the_same_sequence(
    launch: Launcher, pid1: bool
) -> None:
    # A container whose STOPSIGNAL is SIGQUIT: given as a flag and in the environment.
    args = ["-m", "graceful", "--stop-signal", "SIGQUIT", "--grace", "3", "idle:main"]
    env = {"GRACEFUL_STOP_SIGNAL": "SIGUSR2"}
    argv = [*UNSHARE, sys.executable, *args] if pid1 else [sys.executable, *args]
    app = launch.command(argv, env=env)
    app.expect("ready")
    os.kill(init_pid(app) if pid1 else app.proc.pid, signal.SIGQUIT)
    assert app.wait() == 0, app.stderr
    assert "SIGQUIT received: shutting down within 3 s" in app.stderr
    assert "hook registered_first" in app.events()
    other = launch.graceful("idle:main", env=env)  # only the environment: SIGUSR2
    other.expect("ready")
    assert stop(other, signal.SIGUSR2) == 0
    assert "SIGUSR2 received" in other.stderr
