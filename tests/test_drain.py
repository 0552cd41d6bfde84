"""The cooperative drain, protect(), the drain delay, task errors, and the ways main
can end (black-box, both loops)."""

from __future__ import annotations

import signal

from .conftest import Launcher, stop


def summary(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if "shutdown after" in line]
    assert len(lines) == 1, stderr
    assert stderr.rstrip().splitlines()[-1] == lines[0], "the summary must be the last line"
    return lines[0]


def test_a_listening_main_finishes_its_work_inside_the_drain(launch: Launcher) -> None:
    app = launch.graceful("--grace", "3", "drain:listening_main", env={"WORK": "0.5"})
    app.expect("ready")
    assert stop(app) == 0
    assert app.events() == [
        "main told to stop, drain left > 0: True",
        "main finished its work",
        "hook saved (SIGTERM, main started True)",
    ]
    assert "cut 0" in summary(app.stderr)


def test_a_listening_main_that_overruns_is_cut_at_the_drain_budget(launch: Launcher) -> None:
    app = launch.graceful("--grace", "2", "drain:listening_main", env={"WORK": "30"})
    app.expect("ready")
    assert stop(app) == 1
    assert app.elapsed() < 2
    assert "main finished its work" not in app.events()
    assert app.events()[-1] == "hook saved (SIGTERM, main started True)"
    assert "cut 1 (tasks ['main (drain:listening_main)'])" in summary(app.stderr)
    assert "drain budget of" in app.stderr


def test_a_main_that_does_not_listen_is_cancelled_at_once(launch: Launcher) -> None:
    app = launch.graceful("--grace", "3", "drain:deaf_main")
    app.expect("ready")
    assert stop(app) == 0
    assert app.events() == ["main unwound", "hook saved (SIGTERM, main started True)"]
    assert "drain 0.00 s, cut 0" in summary(app.stderr)


def test_protected_work_outlives_the_cancelled_task_that_awaits_it(launch: Launcher) -> None:
    app = launch.graceful("--grace", "3", "drain:protected_work", env={"WORK": "0.5"})
    app.expect("protected work started")
    assert stop(app) == 0
    assert app.events() == [
        "protected work started",
        "awaiting task cancelled",
        "protected work finished",
        "hook saved (SIGTERM, main started True)",
    ]


def test_protected_work_that_overruns_is_cut(launch: Launcher) -> None:
    app = launch.graceful("--grace", "2", "drain:protected_work", env={"WORK": "30"})
    app.expect("protected work started")
    assert stop(app) == 1
    assert app.elapsed() < 2
    assert "protected work finished" not in app.events()
    assert "cut 1" in summary(app.stderr)


def test_work_protected_during_the_drain_is_drained_too(launch: Launcher) -> None:
    app = launch.graceful("--grace", "5", "drain:protects_while_unwinding", env={"WORK": "1"})
    app.expect("ready")
    assert stop(app) == 0
    assert app.events() == [
        "late work started",
        "late work finished",
        "hook saved (SIGTERM, main started True)",
    ]
    assert "drain 1." in summary(app.stderr)  # the drain waited for it, about 1 s


def test_work_cancelled_with_a_main_that_does_not_listen_is_reported(launch: Launcher) -> None:
    app = launch.graceful("--grace", "3", "drain:task_group_consumer")
    app.expect("ready")
    assert stop(app) == 0  # the app chose no drain: not a failure, but not called clean
    assert sorted(app.events()[:4]) == [f"item {n} started" for n in range(4)]
    assert app.events()[4:] == ["hook saved (SIGTERM, main started True)"]
    line = summary(app.stderr)
    assert " WARNING: " in line
    assert "drain 0.00 s, cut 0, not drained 4;" in line
    assert "tasks cancelled 5," in line  # main and its four items
    assert "await graceful.wait_for_shutdown() in main" in app.stderr


def test_tasks_started_while_others_unwind_are_cancelled_too(launch: Launcher) -> None:
    app = launch.graceful("--grace", "3", "drain:spawns_while_unwinding")
    app.expect("ready")
    assert stop(app) == 0
    assert app.events() == ["late task cancelled", "hook saved (SIGTERM, main started True)"]
    assert "tasks cancelled 2, stuck 0" in summary(app.stderr)


def test_a_stream_whose_consumer_is_cancelled_closes_its_source(launch: Launcher) -> None:
    app = launch.graceful("--grace", "2", "drain:stream_consumer_cancelled")
    assert app.wait() == 0, app.stderr  # main returned: no RuntimeError from the stream
    assert app.events()[:2] == ["source closed", "consumer cancelled"]


def test_the_drain_delay_keeps_main_running_then_stops_inside_the_grace(
    launch: Launcher,
) -> None:
    app = launch.graceful("--grace", "3", "--drain-delay", "1", "drain:drain_delay")
    app.expect("ready")
    assert stop(app) == 0
    assert app.elapsed() < 3
    ticks_while_draining = app.events().count("tick shutting_down=True")
    assert ticks_while_draining >= 3, app.events()  # main went on through the delay
    assert app.events()[-1] == "hook saved (SIGTERM, main started True)"
    assert "draining for 1 s" in app.stderr


def test_drain_delay_from_the_environment(launch: Launcher) -> None:
    app = launch.graceful("drain:drain_delay", env={"GRACEFUL_DRAIN_DELAY": "0.5"})
    app.expect("ready")
    assert stop(app) == 0
    assert "draining for 0.5 s" in app.stderr


def test_a_dead_background_task_is_logged_at_once_and_the_service_runs_on(
    launch: Launcher,
) -> None:
    app = launch.graceful("--grace", "2", "drain:background_crash")
    app.expect("ready")
    app.expect_stderr("task 'poller' died of ValueError and nothing took its result")
    app.expect_stderr("ValueError: poller broke")  # the traceback, in the same record
    assert app.events() == []  # still running: no hook yet
    assert stop(app) == 0
    assert app.stderr.count("ValueError: poller broke") == 1  # once, not again at collection


def test_task_errors_shutdown_stops_the_app_with_exit_1(launch: Launcher) -> None:
    app = launch.graceful("--grace", "2", "--task-errors", "shutdown", "drain:background_crash")
    assert app.wait() == 1
    assert app.events() == ["hook saved (task 'poller' raised ValueError, main started True)"]
    assert "starting the shutdown (--task-errors shutdown)" in app.stderr


def test_task_errors_policy_from_the_environment(launch: Launcher) -> None:
    app = launch.graceful(
        "--grace", "2", "drain:background_crash", env={"GRACEFUL_TASK_ERRORS": "shutdown"}
    )
    assert app.wait() == 1


def test_an_error_the_app_takes_itself_is_not_a_dead_task(launch: Launcher) -> None:
    app = launch.graceful("--grace", "2", "--task-errors", "shutdown", "drain:awaited_crash")
    app.expect("ready")
    assert stop(app) == 0
    assert app.events()[0] == "main took the error"
    assert "died of" not in app.stderr


def test_sys_exit_in_a_task_runs_the_sequence_with_its_code(launch: Launcher) -> None:
    app = launch.graceful("--grace", "2", "drain:exit_in_task")
    assert app.wait() == 3
    assert app.events() == [
        "main unwound",
        "hook saved (SystemExit(3) in a task, main started True)",
    ]
    assert "Task was destroyed" not in app.stderr
    assert "exit code 3" in summary(app.stderr)


def test_keyboard_interrupt_in_a_task_runs_the_sequence_with_130(launch: Launcher) -> None:
    app = launch.graceful("--grace", "2", "drain:interrupt_in_task")
    assert app.wait() == 130
    assert app.events() == ["hook saved (KeyboardInterrupt in a task, main started True)"]


def test_main_returning_text_follows_sys_exit(launch: Launcher) -> None:
    app = launch.graceful("--grace", "2", "drain:returns_text")
    assert app.wait() == 1
    assert "hello from main" in app.stderr
    app = launch.graceful("--grace", "2", "drain:exits_with_text")
    assert app.wait() == 1
    assert "bye from main" in app.stderr
    assert "main called sys.exit('bye from main')" in app.stderr


def test_a_sync_main_runs_with_a_warning(launch: Launcher) -> None:
    app = launch.graceful("--grace", "2", "drain:sync_main")
    assert app.wait() == 0
    assert app.events()[0] == "sync main ran"
    assert "main drain:sync_main is not async" in app.stderr


def test_a_main_that_swallows_cancellation_is_named_at_its_own_line(launch: Launcher) -> None:
    app = launch.graceful("--grace", "1.5", "drain:swallows_cancel")
    app.expect("ready")
    assert stop(app) == 1
    assert app.elapsed() < 1.5
    assert "task 'main (drain:swallows_cancel)' did not finish after being cancelled" in app.stderr
    assert "await asyncio.sleep(1000)  # the line the report must name" in app.stderr
    assert "Task was destroyed but it is pending" not in app.stderr
    assert "stuck 1" in summary(app.stderr)


def test_a_library_that_takes_the_handler_is_called_and_waited_for(launch: Launcher) -> None:
    app = launch.graceful("--grace", "3", "drain:foreign_handler", env={"WORK": "0.3"})
    app.expect("ready")
    assert stop(app) == 0
    assert app.events() == [
        "library handler called with SIGTERM",
        "library drained",
        "hook saved (SIGTERM, main started True)",
    ]
    assert (
        "drain.foreign_handler.<locals>.library_handler took graceful's SIGTERM/SIGINT handler"
        in app.stderr
    )


def test_a_library_drain_that_overruns_still_ends_inside_the_grace(launch: Launcher) -> None:
    app = launch.graceful("--grace", "2", "drain:foreign_handler", env={"WORK": "30"})
    app.expect("ready")
    assert stop(app) == 1
    assert app.elapsed() < 2
    assert app.events()[-1] == "hook saved (SIGTERM, main started True)"


def test_request_shutdown_calls_the_library_handler_as_sigterm_would(launch: Launcher) -> None:
    app = launch.graceful(
        "--grace", "3", "drain:foreign_handler", env={"WORK": "0.1", "REQUEST": "1"}
    )
    app.expect("ready")
    app.write("stop\n")
    assert app.wait() == 0
    assert app.events()[:2] == ["library handler called with SIGTERM", "library drained"]


def test_second_sigint_still_forces_during_the_drain_delay(launch: Launcher) -> None:
    app = launch.graceful("--grace", "10", "--drain-delay", "5", "drain:drain_delay")
    app.expect("ready")
    app.send(signal.SIGINT)
    app.expect_stderr("draining for 5 s")
    app.send(signal.SIGINT)
    assert app.wait() == 130
    assert app.elapsed() < 5
