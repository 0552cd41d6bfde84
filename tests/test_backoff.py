"""The restart policy on its own: delays, the failure count, the window."""

from __future__ import annotations

import random

from graceful._supervise.backoff import Backoff


def policy(max_restarts: int = 3, window: float = 60.0) -> Backoff:
    return Backoff(0.1, 1.0, max_restarts, window, rng=random.Random(7))


def test_delays_double_up_to_the_maximum_with_equal_jitter() -> None:
    b = policy(max_restarts=100)
    delays = [b.exited(float(t), counted=True, uptime=0.0) for t in range(8)]
    for k, delay in enumerate(delays):
        full = min(1.0, 0.1 * 2**k)
        assert delay is not None and full / 2 <= delay <= full, (k, delay)
    assert delays[-1] is not None and delays[-1] >= 0.5  # capped, not reset


def test_a_crash_after_running_still_waits() -> None:
    b = policy()
    b.started()
    delay = b.exited(0.0, counted=True, uptime=5.0)
    assert delay is not None and delay >= 0.05


def test_more_early_exits_than_max_restarts_fail() -> None:
    b = policy(max_restarts=3)
    assert [b.exited(float(t), counted=False, uptime=0.1) is None for t in range(4)] == [
        False,
        False,
        False,
        True,
    ]


def test_a_counted_start_resets_the_failure_count() -> None:
    b = policy(max_restarts=2)
    for t in range(2):
        assert b.exited(float(t), counted=False, uptime=0.1) is not None
    b.started()
    for t in range(2, 4):
        assert b.exited(float(t), counted=False, uptime=0.1) is not None
    assert b.exited(4.0, counted=False, uptime=0.1) is None


def test_exits_older_than_the_window_are_forgotten() -> None:
    b = policy(max_restarts=1, window=10.0)
    assert b.exited(0.0, counted=False, uptime=0.1) is not None
    assert b.exited(11.0, counted=False, uptime=0.1) is not None  # the first one left the window
    assert b.exited(12.0, counted=False, uptime=0.1) is None
    fresh = policy(max_restarts=100, window=10.0)
    for t in range(5):
        fresh.exited(float(t), counted=True, uptime=0.0)
    delay = fresh.exited(
        100.0, counted=True, uptime=0.0
    )  # all five long gone: back to the first delay
    assert delay is not None and delay <= 0.1


def test_a_run_longer_than_the_delay_before_it_starts_the_curve_again() -> None:
    b = policy(max_restarts=100)
    delays = [b.exited(float(t), counted=False, uptime=0.1) for t in range(5)]
    assert delays[-1] is not None and delays[-1] >= 0.5  # crashing at once: backed off
    short = b.exited(5.0, counted=True, uptime=0.4)  # up, but not for as long as it was down
    assert short is not None and short >= 0.5
    again = b.exited(6.0, counted=True, uptime=short + 0.01)  # up longer than down
    assert again is not None and again <= 0.1
    # A process that runs 2 s and crashes, over and over: the first delay each time.
    steady = [b.exited(7.0 + 3 * t, counted=True, uptime=2.0) for t in range(10)]
    assert all(d is not None and d <= 0.1 for d in steady)
