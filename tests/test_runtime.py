"""Black-box tests of the shutdown sequence: real processes, real signals, both loops."""

from __future__ import annotations

import ctypes
import json
import platform
import signal
import time
from pathlib import Path

from .conftest import Launcher, gone, poll_until, stop

SYS_TGKILL = {"x86_64": 234, "aarch64": 131}[platform.machine()]


def test_sigterm_runs_waiters_then_unwinds_main_then_hooks_in_reverse(launch: Launcher) -> None:
    app = launch.graceful("--grace", "2", "idle:main")
    app.expect("ready")
    assert stop(app) == 0
    events = app.events()
    assert events[:4] == [
        "main started, shutting down=False",
        "waiter woke, shutting down=True",
        "main unwound",
        events[3],
    ]
    assert events[3].startswith("hook registered_second ")
    assert events[4:] == ["hook registered_first"]
    reason, sig, code, left, _deadline = json.loads(events[3].split(" ", 2)[2])
    assert (reason, sig, code) == ("SIGTERM", "SIGTERM", 0)
    assert 0 < left < 2
    assert app.stderr.count("SIGTERM received: shutting down") == 1
    assert "exit code 0" in app.stderr.splitlines()[-1]


def test_sigint_once_is_a_clean_shutdown(launch: Launcher) -> None:
    app = launch.graceful("--grace", "2", "idle:main")
    app.expect("ready")
    assert stop(app, signal.SIGINT) == 0
    assert "hook registered_first" in app.events()


def test_second_sigint_forces_exit_130(launch: Launcher) -> None:
    app = launch.graceful("--grace", "20", "sigint:main")
    app.expect("ready")
    app.send(signal.SIGINT)
    app.expect("hook started")
    app.send(signal.SIGINT)
    assert app.wait() == 130
    assert app.elapsed() < 5  # far from the 20 s the hook would otherwise get
    assert " graceful ERROR: second SIGINT: exiting now with code 130" in app.stderr


def test_the_forced_exit_kills_the_children_it_leaves(launch: Launcher) -> None:
    app = launch.graceful("--grace", "20", "sigint:with_a_stubborn_child")
    app.expect("ready")
    child = int(next(e for e in app.events() if e.startswith("child ")).split()[1])
    app.send(signal.SIGINT)
    app.expect("hook started")  # the child ignored phase 2's SIGTERM
    app.send(signal.SIGINT)
    assert app.wait() == 130
    assert "1 child process(es) killed" in app.stderr
    assert poll_until(lambda: gone(child), 10), f"child {child} outlived the forced exit"


def test_a_second_sigint_before_the_hooks_says_they_did_not_run(launch: Launcher) -> None:
    app = launch.graceful("--grace", "20", "--drain-delay", "5", "sigint:main")
    app.expect("ready")
    app.send(signal.SIGINT)
    app.expect_log("draining for 5 s")
    app.send(signal.SIGINT)
    assert app.wait() == 130
    line = app.expect_log("second SIGINT")
    assert " graceful ERROR: second SIGINT: exiting now with code 130" in line
    assert "the shutdown hooks ['slow_save'] did not run" in line


def test_signal_storm_starts_exactly_one_shutdown(launch: Launcher) -> None:
    app = launch.graceful("--grace", "2", "idle:main")
    app.expect("ready")
    first = time.monotonic()
    for _ in range(50):  # spread over 0.5 s: a deadline restarted by each would move
        app.send(signal.SIGTERM)
        time.sleep(0.01)
    assert app.wait() == 0  # none of them counted toward a forced exit
    hook = next(e for e in app.events() if e.startswith("hook registered_second"))
    deadline = json.loads(hook.split(" ", 2)[2])[4]  # the same monotonic clock as ours
    # Started by the first SIGTERM (grace 2 less the 0.5 s margin): a late handler can
    # only move it later, by far less than the 0.5 s the storm lasts.
    assert deadline < first + 1.5 + 0.25
    assert app.stderr.count("SIGTERM received: shutting down") == 1
    assert app.stderr.count("shutdown after SIGTERM took") == 1
    assert app.events().count("hook registered_first") == 1


def test_main_returning_none_exits_0_and_runs_hooks(launch: Launcher) -> None:
    app = launch.graceful("--grace", "2", "idle:returns_none")
    assert app.wait() == 0
    assert app.events()[0] == "main started"
    assert "hook registered_first" in app.events()
    assert "shutdown after main returned" in app.stderr


def test_main_returning_an_int_is_the_exit_code(launch: Launcher) -> None:
    app = launch.graceful("--grace", "2", "idle:returns_seven")
    assert app.wait() == 7
    assert "hook registered_first" in app.events()


def test_main_raising_exits_1_with_traceback_and_hooks(launch: Launcher) -> None:
    app = launch.graceful("--grace", "2", "idle:raises")
    assert app.wait() == 1
    assert "RuntimeError: boom from main" in app.stderr
    assert "Traceback" in app.stderr
    assert "hook registered_first" in app.events()


def test_request_shutdown_uses_its_exit_code_and_reason(launch: Launcher) -> None:
    app = launch.graceful("--grace", "2", "idle:requests")
    assert app.wait() == 3
    reason, sig, code, _left, _deadline = json.loads(
        next(e for e in app.events() if e.startswith("hook registered_second")).split(" ", 2)[2]
    )
    assert (reason, sig, code) == ("job finished", None, 3)


def test_sys_exit_in_main_is_an_exit_code(launch: Launcher) -> None:
    app = launch.graceful("--grace", "2", "idle:calls_exit")
    assert app.wait() == 4
    assert "Traceback" not in app.stderr


def test_sync_main_returning_int(launch: Launcher) -> None:
    app = launch.graceful("--grace", "2", "idle:not_async")
    assert app.wait() == 5


def test_app_sees_target_and_its_args_in_argv(launch: Launcher) -> None:
    app = launch.graceful("--grace", "2", "idle:shows_argv", "--port", "80", "x")
    assert app.wait() == 0
    assert json.loads(app.events()[0]) == ["idle:shows_argv", "--port", "80", "x"]


def test_hook_failures_are_named_and_the_rest_still_run(launch: Launcher) -> None:
    app = launch.graceful("--grace", "3", "misbehaving_hooks:main")
    app.expect("ready")
    assert stop(app) == 1
    events = app.events()
    # Cancelled at its bound (it swallows that), which may be recorded after the next
    # hook started: the order of the others is the promise.
    assert "hook swallows_cancellation was cancelled" in events
    events.remove("hook swallows_cancellation was cancelled")
    assert events == [
        "hook swallows_cancellation started",
        "hook blocks_in_sleep started",
        "hook runs_last",
    ]
    err = app.stderr
    assert "hook 'raises' raised ValueError" in err
    assert "hook 'swallows_cancellation' still running after its timeout of 0.30 s" in err
    assert "hook 'blocks_in_sleep' still running after its timeout of 0.30 s" in err
    assert "time.sleep(1000)" in err  # the stack of the hung sync hook
    assert "timed out 2 ['swallows_cancellation', 'blocks_in_sleep']" in err
    assert app.elapsed() < 3


def test_signal_during_import_is_honoured_after_it(launch: Launcher) -> None:
    app = launch.graceful("--grace", "2", "slow_import:main")
    app.expect("importing")
    app.send(signal.SIGTERM)
    assert app.wait() == 0
    # main never started: only the hook registered with always=True runs
    assert app.events() == ["import finished", "hook cleanup (always)"]
    assert "main never started, so hooks ['saved'] were skipped" in app.stderr
    assert app.elapsed() < 2


def test_import_hung_past_the_deadline_is_ended_by_the_watchdog(launch: Launcher) -> None:
    app = launch.graceful("--grace", "1.5", "slow_import:main", env={"HANG": "1"})
    app.expect("importing")
    assert stop(app) == 1
    assert app.elapsed() < 1.5
    assert "deadline of 1.5 s after SIGTERM reached" in app.stderr


def test_import_error_of_the_app_exits_1_with_traceback_and_skips_hooks(
    launch: Launcher,
) -> None:
    app = launch.graceful("--grace", "2", "broken_import:main")
    assert app.wait() == 1
    assert "RuntimeError: broken at import" in app.stderr
    assert "Traceback" in app.stderr
    assert app.events() == ["hook cleanup (always)"]  # main never started
    assert "main never started, so hooks ['saved'] were skipped" in app.stderr


def test_missing_dependency_of_the_app_is_the_apps_error(launch: Launcher) -> None:
    app = launch.graceful("--grace", "2", "missing_dependency:main")
    assert app.wait() == 1
    assert "No module named 'graceful_test_no_such_dependency'" in app.stderr
    assert "Traceback" in app.stderr


def test_a_child_killed_at_the_deadline_leaves_the_summary_last(launch: Launcher) -> None:
    app = launch.graceful("--grace", "1.5", "children:awaits_stubborn_child")
    app.expect("ready")
    assert stop(app) == 1
    assert app.elapsed() < 1.5
    last = app.stderr.rstrip().splitlines()[-1]
    assert "shutdown after SIGTERM" in last and "killed 1" in last, app.stderr


def test_a_handler_the_loop_installs_is_seen_at_once_without_polling(launch: Launcher) -> None:
    # uvloop binds signal.signal at import and calls it from compiled code; graceful
    # imports it with its own in place, so the app's handler is adopted as it is set,
    # and an idle app has nothing to poll.
    app = launch.graceful("--grace", "2", "late_handler:main")
    app.expect("ready")
    assert stop(app) == 0, app.stderr
    events = app.events()
    assert events[0] == "polling False", events
    assert "app handler called" in events and "hook ran" in events, app.stderr
    assert "took graceful's SIGTERM/SIGINT handler" in app.stderr


def test_a_sigterm_the_kernel_gives_to_another_thread_still_wakes_the_idle_loop(
    launch: Launcher,
) -> None:
    # The kernel hands a process-directed signal to any thread that does not block it
    # (the main thread only by preference). CPython runs the handler in the main
    # thread, but only once that thread wakes up: an idle loop asleep in epoll with no
    # timeout slept on. tgkill(2) picks the thread the way the kernel may.
    app = launch.graceful("--grace", "2", "idle:with_a_thread")
    app.expect("ready")
    thread = int(app.stdout[-1].split()[1])
    # The handshake: the main thread asleep in epoll, so that nothing else would run
    # the handler (right after "ready" it may still be loading the stop path).
    wchan = Path(f"/proc/{app.proc.pid}/wchan")
    assert poll_until(lambda: wchan.read_text() == "do_epoll_wait", 10), wchan.read_text()
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.syscall(SYS_TGKILL, app.proc.pid, thread, signal.SIGTERM) == 0
    assert app.wait(10) == 0, app.stderr
    assert "SIGTERM received" in app.stderr
