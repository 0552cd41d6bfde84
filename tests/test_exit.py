"""After the sequence: the interpreter's exit stays inside the window, a late signal
does not change the exit code, and graceful's log survives the app's logging set-up."""

from __future__ import annotations

import signal
import sys

from .conftest import APPS, Launcher, stop
from .test_init import UNSHARE


def test_dictconfig_does_not_silence_graceful(launch: Launcher) -> None:
    app = launch.graceful("--grace", "2", "exits:dict_config")
    app.expect("ready")
    assert stop(app) == 1
    assert "disabled the 'graceful' logger" in app.stderr
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
