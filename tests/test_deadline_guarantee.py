"""The hard guarantee: exit within --grace of the first signal, whatever the app does."""

from __future__ import annotations

import re
import signal

import pytest

from .conftest import LOG_STAMP_RESOLUTION, Launcher, logged_at, poll_until, stop

GRACE = 1.5


@pytest.mark.parametrize(
    ("target", "marker"),
    [
        ("stubborn:task_refuses", "task 'refuser' did not finish after being cancelled"),
        ("stubborn:busy_executor", "still running at the deadline; exiting without them"),
        ("stubborn:busy_thread", "threads ['sleeper'] still running at the deadline"),
        ("stubborn:blocks_loop", "deadline of 1.5 s after SIGTERM reached"),
    ],
)
def test_misbehaving_app_still_exits_within_grace(
    launch: Launcher, target: str, marker: str
) -> None:
    app = launch.graceful("--grace", str(GRACE), target)
    app.expect("ready")
    assert stop(app) == 1
    assert app.elapsed() < GRACE
    assert marker in app.stderr
    if target != "stubborn:blocks_loop":  # a blocked loop cannot run hooks; the rest do
        assert "hook saved" in app.events()
        summary = next(line for line in app.stderr.splitlines() if "shutdown after" in line)
        assert summary.endswith("exit code 1")  # the summary says what the exit is


def test_hook_hanging_without_timeout_is_abandoned_at_the_deadline(launch: Launcher) -> None:
    app = launch.graceful("--grace", str(GRACE), "stubborn:idle", env={"HOOK_HANGS": "1"})
    app.expect("ready")
    assert stop(app) == 1
    assert app.elapsed() < GRACE
    assert "hook 'hangs_without_timeout' still running" in app.stderr
    assert "its share of the window" in app.stderr
    assert "Give it a timeout, make it faster, or raise --grace." in app.stderr
    assert app.events() == ["hook hangs_without_timeout started", "hook saved"]


def test_refusing_task_leaves_time_for_the_hooks(launch: Launcher) -> None:
    app = launch.graceful("--grace", "3", "stubborn:task_refuses")
    app.expect("ready")
    assert stop(app) == 1
    # Cancelled once, and abandoned once all the time not kept for the hooks was used
    # (the sequence has 2.5 s; phase 1 says what the hooks keep); the hooks still ran.
    assert app.events().count("task refused cancellation") == 1
    assert app.events()[-1] == "hook saved"
    hooks = float(re.search(r"then cancellation [\d.]+ s, hooks ([\d.]+) s", app.stderr).group(1))  # type: ignore[union-attr]
    abandoned = logged_at(app.stderr, "task 'refuser' did not finish after being cancelled")
    waited = abandoned - logged_at(app.stderr, "SIGTERM received")
    assert waited >= 2.5 - hooks - 2 * LOG_STAMP_RESOLUTION  # load can only make it later


def test_signals_repeated_during_the_sequence_neither_force_nor_extend_it(
    launch: Launcher,
) -> None:
    app = launch.graceful("--grace", str(GRACE), "stubborn:idle", env={"HOOK_HANGS": "1"})
    app.expect("ready")
    app.send(signal.SIGTERM)
    assert poll_until(lambda: "hook hangs_without_timeout started" in app.events(), 10)
    for _ in range(20):  # while the hook hangs: none may count toward a forced exit...
        app.send(signal.SIGTERM)
    assert app.wait() == 1  # the hook timed out: 1, not a forced 130
    assert app.elapsed() < GRACE  # ...nor start the deadline again
    assert "timed out 1 ['hangs_without_timeout']" in app.stderr
