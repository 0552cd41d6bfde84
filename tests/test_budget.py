"""The split of the window between the drain, the cancellation and the hooks (fast,
no process): the figures the README's stop sequence promises."""

from __future__ import annotations

import pytest

from graceful._core.budget import cancel_time, split

from .conftest import Launcher, stop


def test_with_no_hooks_nearly_the_whole_window_drains() -> None:
    budget = split(9.5, [])  # --grace 10
    assert budget.drain == pytest.approx(9.0)
    assert budget.cancel == pytest.approx(0.5)
    assert budget.hooks == 0


def test_the_hooks_keep_what_they_declare_and_a_hook_without_a_timeout_one_second() -> None:
    budget = split(9.5, [2.0, None])
    assert budget.hooks == pytest.approx(3.0)
    assert budget.drain == pytest.approx(6.0)
    assert not budget.short()


def test_the_readme_example_a_15_s_grace_and_one_hook_of_2_s() -> None:
    assert split(14.5, [2.0]).drain == pytest.approx(12.0)


def test_hooks_that_declare_more_than_the_window_leave_the_drain_its_minimum() -> None:
    budget = split(9.5, [30.0])
    assert budget.short()
    assert budget.drain == pytest.approx(9.5 * 0.2)
    assert budget.drain + budget.cancel + budget.hooks == pytest.approx(9.5)


def test_short_windows_keep_a_share_for_the_cancellation() -> None:
    budget = split(1.5, [None])  # --grace 2
    assert budget.cancel == pytest.approx(0.15)
    assert budget.drain == pytest.approx(0.35)
    assert split(0.0, [None]).drain == 0.0


def test_cancelled_tasks_never_take_the_hooks_reserve_nor_more_than_half() -> None:
    assert cancel_time(2.5, 2.0) == pytest.approx(0.5)  # the drain used its whole budget
    assert cancel_time(9.0, 2.0) == pytest.approx(4.5)  # it ended early: half at most
    assert cancel_time(1.0, 2.0) == pytest.approx(0.1)  # hooks over the window: own reserve


def test_a_server_keeps_a_tenth_of_its_drain_at_most_half_a_second_for_its_clean_up() -> None:
    from graceful.integrations._common import drain_timeout

    assert drain_timeout(12.0) == pytest.approx(11.5)
    assert drain_timeout(2.0) == pytest.approx(1.8)
    assert drain_timeout(0.0) == 0.0


def test_hooks_that_cannot_fit_are_named_at_start_up(launch: Launcher) -> None:
    app = launch.graceful("--grace", "2", "long_hook:main")
    app.expect("ready")
    warning = app.expect_log("shutdown hook(s) declare")
    assert "declare 30.0 s" in warning and "--grace 2 leaves them" in warning
    assert stop(app) == 0
    assert app.events() == ["flushed"]  # cut short if need be, but run
