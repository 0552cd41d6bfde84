"""The hard guarantee: exit within --grace of the first signal, whatever the app does."""

from __future__ import annotations

import pytest

from .conftest import Launcher, stop

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
    # cancelled once, abandoned after half the time left; the hook got the other half
    assert app.events().count("task refused cancellation") == 1
    assert app.events()[-1] == "hook saved"
