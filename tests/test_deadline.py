"""The deadline, with an injected clock, and the watchdog that enforces it."""

from __future__ import annotations

import threading

import pytest

from graceful._core.deadline import Deadline, Watchdog, safety_margin


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_deadline_keeps_a_safety_margin_inside_the_grace() -> None:
    clock = FakeClock()
    deadline = Deadline(10.0, clock=clock)
    assert safety_margin(10.0) == 0.5
    assert deadline.at == 109.5 and deadline.hard_at == 109.75
    assert deadline.time_left() == 9.5
    clock.now = 105.0
    assert deadline.time_left() == 4.5 and deadline.elapsed() == 5.0
    clock.now = 200.0
    assert deadline.time_left() == 0.0 and deadline.expired()


def test_small_graces_keep_a_proportional_margin() -> None:
    assert safety_margin(1.0) == 0.25
    deadline = Deadline(1.0, clock=FakeClock())
    assert deadline.at - deadline.started == pytest.approx(0.75)


def test_watchdog_fires_once_armed_and_past_the_hard_deadline() -> None:
    fired = threading.Event()
    clock = FakeClock()
    dog = Watchdog(fired.set)
    deadline = Deadline(0.2, clock=clock)
    clock.now = deadline.hard_at  # already due: fires without waiting
    dog.arm(deadline)
    assert fired.wait(10)
    dog.close()


def test_closed_watchdog_never_fires() -> None:
    fired = threading.Event()
    dog = Watchdog(fired.set)
    dog.arm(Deadline(60.0))
    dog.close()
    assert not fired.is_set()
    assert dog._done.locked()  # close() got it back: the thread released it as it ended
